//! The auxiliary HTTP port every service has: `/healthz` (the process is alive),
//! `/readyz` (its dependencies answer), `/metrics` (Prometheus text), plus routes a
//! service adds (the Auth Service's JWKS).

use crate::metrics::Metrics;
use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use futures::future::BoxFuture;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Answers whether the service can do its work (its database answers, ...).
pub trait Readiness: Send + Sync + 'static {
    /// `Ok` when ready; `Err` says what is not.
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

#[derive(Clone)]
struct AuxState {
    readiness: Arc<dyn Readiness>,
    metrics: Metrics,
    shutdown: CancellationToken,
}

/// The health, readiness and metrics routes; merge a service's own routes into it.
pub fn router(
    readiness: Arc<dyn Readiness>,
    metrics: Metrics,
    shutdown: CancellationToken,
) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(AuxState {
            readiness,
            metrics,
            shutdown,
        })
}

async fn readyz(State(state): State<AuxState>) -> impl IntoResponse {
    if state.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "shutting down\n".to_owned(),
        );
    }
    let check = tokio::time::timeout(std::time::Duration::from_secs(2), state.readiness.check());
    match check.await {
        Ok(Ok(())) => (StatusCode::OK, "ready\n".to_owned()),
        Ok(Err(why)) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {why}\n"),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: check timed out\n".to_owned(),
        ),
    }
}

async fn metrics_text(State(state): State<AuxState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// Serves `router` on `listener` until `shutdown` is cancelled.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    // The peer's address reaches handlers (`ConnectInfo`): a service throttles
    // by client address on this port too.
    let service = router.into_make_service_with_connect_info::<std::net::SocketAddr>();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}
