//! One cancellation token for the whole process, cancelled by SIGTERM or SIGINT.

use std::future::Future;
use tokio_util::sync::CancellationToken;

/// Runs `serve` with a shutdown token that SIGTERM or SIGINT (Ctrl-C) cancels.
/// The signal listener is awaited beside `serve`, not spawned, so nothing of
/// it outlives the service.
pub async fn run_until_signal<F, Fut, T>(serve: F) -> T
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = T>,
{
    let shutdown = CancellationToken::new();
    let serving = async {
        let outcome = serve(shutdown.clone()).await;
        // A service that stopped on its own (it failed to start, say) must
        // not leave the listener waiting for a signal that never comes.
        shutdown.cancel();
        outcome
    };
    let (outcome, ()) = tokio::join!(serving, cancel_on_signal(&shutdown));
    outcome
}

/// Cancels `token` on SIGTERM or SIGINT; returns early if it is cancelled first.
async fn cancel_on_signal(token: &CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received, shutting down"),
        () = term => tracing::info!("SIGTERM received, shutting down"),
        () = token.cancelled() => return,
    }
    token.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_service_that_stops_by_itself_ends_the_wait_for_a_signal() {
        let outcome = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            run_until_signal(|_shutdown| async { "failed to start" }),
        )
        .await;
        assert_eq!(outcome, Ok("failed to start"));
    }
}
