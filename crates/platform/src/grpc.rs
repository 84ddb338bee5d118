//! The gRPC server every service runs: its own services plus `grpc.health.v1`
//! and server reflection, request metrics, bounded message sizes, and a graceful
//! stop (health turns NOT_SERVING, in-flight calls finish) on shutdown.

use crate::metrics::{GrpcMetricsLayer, Metrics};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tonic_health::ServingStatus;

/// Largest gRPC request accepted by every service; real ones are a few KiB.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// How often a quiet connection is pinged (HTTP/2 and TCP).
const KEEPALIVE: std::time::Duration = std::time::Duration::from_secs(30);
/// How long a ping may go unanswered before the connection is closed.
const KEEPALIVE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(20);

/// Serves `routes` on `listener` until `shutdown`. `health_name` is the fully
/// qualified service name reported SERVING by the health service; `descriptors`
/// are the encoded descriptor sets reflection serves; `other_methods` are
/// served methods they do not describe (labelled in metrics all the same).
#[allow(clippy::too_many_arguments)]
pub async fn serve(
    listener: TcpListener,
    routes: Routes,
    health_name: &'static str,
    descriptors: &[&'static [u8]],
    other_methods: &[&str],
    tls: Option<tonic::transport::ServerTlsConfig>,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let (health, health_service) = tonic_health::server::health_reporter();
    health
        .set_service_status(health_name, ServingStatus::Serving)
        .await;
    let sets: Vec<&'static [u8]> = [
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ]
    .into_iter()
    .chain(descriptors.iter().copied())
    .collect();
    let reflection = || {
        descriptors.iter().fold(
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET),
            |b, d| b.register_encoded_file_descriptor_set(d),
        )
    };
    // v1alpha too: grpcurl before 1.9 and many other tools only speak it.
    let routes = routes
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?);
    let mut known = crate::metrics::methods_of(&sets)?;
    known.extend(other_methods.iter().map(|m| (*m).to_owned()));
    // A peer gone without a word (a partition, a sleeping laptop) is found by
    // pings within a minute, and its calls (a stream holding a slot, an
    // import holding a permit) end, instead of lasting until a restart.
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(KEEPALIVE))
        .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT));
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    builder
        .layer(GrpcMetricsLayer::new(metrics, known))
        .add_routes(routes)
        .serve_with_incoming_shutdown(
            // Without TCP_NODELAY a response's trailers can wait for the peer's
            // delayed ACK (40 ms) behind Nagle's algorithm.
            tonic::transport::server::TcpIncoming::from(listener)
                .with_nodelay(Some(true))
                .with_keepalive(Some(KEEPALIVE)),
            async move {
                shutdown.cancelled().await;
                health
                    .set_service_status(health_name, ServingStatus::NotServing)
                    .await;
                health
                    .set_service_status("", ServingStatus::NotServing)
                    .await;
            },
        )
        .await?;
    Ok(())
}

/// A time as a `google.protobuf.Timestamp`.
pub fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}
