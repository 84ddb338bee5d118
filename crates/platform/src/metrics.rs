//! Prometheus metrics: requests, errors and latency per gRPC method, recorded by a
//! tower layer around the gRPC server, plus whatever gauges a service registers.

use futures::future::BoxFuture;
use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder};
use std::collections::HashSet;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::time::Instant;

/// The registry and the per-RPC instruments of one service.
#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    latency: HistogramVec,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Metrics {
    /// Creates the instruments; `service` becomes the `service` label of every series.
    pub fn new(service: &str) -> anyhow::Result<Self> {
        let registry = Registry::new_custom(
            None,
            Some(std::iter::once(("service".to_owned(), service.to_owned())).collect()),
        )?;
        let requests = IntCounterVec::new(
            Opts::new(
                "grpc_server_handled_total",
                "gRPC requests handled, by method and status code",
            ),
            &["grpc_method", "grpc_code"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "grpc_server_handling_seconds",
                "gRPC request latency, by method",
            )
            .buckets(vec![
                0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                1.0, 2.5, 5.0,
            ]),
            &["grpc_method"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        Ok(Self {
            registry,
            requests,
            latency,
        })
    }

    /// The registry, for a service's own instruments.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The text exposition format of every series.
    pub fn render(&self) -> String {
        TextEncoder::new()
            .encode_to_string(&self.registry.gather())
            .unwrap_or_else(|e| format!("# metrics encoding failed: {e}\n"))
    }

    fn observe(&self, method: &str, code: &str, started: Instant) {
        self.requests.with_label_values(&[method, code]).inc();
        self.latency
            .with_label_values(&[method])
            .observe(started.elapsed().as_secs_f64());
    }
}

/// The label of every request whose path is not a served method: a caller
/// choosing paths must not be able to mint series.
pub const UNKNOWN_METHOD: &str = "unknown";

/// The gRPC methods (`/package.Service/Method`) that encoded descriptor sets declare.
pub fn methods_of(sets: &[&[u8]]) -> Result<HashSet<String>, prost::DecodeError> {
    use prost::Message as _;
    let mut methods = HashSet::new();
    for set in sets {
        for file in prost_types::FileDescriptorSet::decode(*set)?.file {
            let package = file.package();
            for service in &file.service {
                for method in &service.method {
                    let qualified = if package.is_empty() {
                        service.name().to_owned()
                    } else {
                        format!("{package}.{}", service.name())
                    };
                    methods.insert(format!("/{qualified}/{}", method.name()));
                }
            }
        }
    }
    Ok(methods)
}

/// A tower layer recording every gRPC call in [`Metrics`].
#[derive(Clone, Debug)]
pub struct GrpcMetricsLayer {
    metrics: Metrics,
    known: Arc<HashSet<String>>,
}

impl GrpcMetricsLayer {
    /// Records into `metrics`, labelling methods outside `known` as [`UNKNOWN_METHOD`].
    pub fn new(metrics: Metrics, known: HashSet<String>) -> Self {
        Self {
            metrics,
            known: Arc::new(known),
        }
    }
}

impl<S> tower::Layer<S> for GrpcMetricsLayer {
    type Service = GrpcMetricsService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        GrpcMetricsService {
            inner,
            metrics: self.metrics.clone(),
            known: self.known.clone(),
        }
    }
}

/// The service [`GrpcMetricsLayer`] wraps around the gRPC router.
#[derive(Clone, Debug)]
pub struct GrpcMetricsService<S> {
    inner: S,
    metrics: Metrics,
    known: Arc<HashSet<String>>,
}

impl<S, B, RB> tower::Service<http::Request<B>> for GrpcMetricsService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        // The ready service goes to this call; its clone stays for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let metrics = self.metrics.clone();
        let path = req.uri().path();
        let method = if self.known.contains(path) {
            path.to_owned()
        } else {
            UNKNOWN_METHOD.to_owned()
        };
        let started = crate::clock::monotonic_now();
        Box::pin(async move {
            let result = inner.call(req).await;
            // Unary errors travel as trailers-only responses, so the status is a
            // header; a response without one is an OK whose status is in the trailers.
            let code = match &result {
                Ok(resp) => resp
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .map_or_else(|| "0".to_owned(), str::to_owned),
                Err(_) => "transport".to_owned(),
            };
            metrics.observe(&method, &code, started);
            result
        })
    }
}
