//! One cancellation token for the whole process, cancelled by SIGTERM or SIGINT.

use tokio_util::sync::CancellationToken;

/// Cancels `token` when the process receives SIGTERM or SIGINT (Ctrl-C).
pub fn cancel_on_signal(token: CancellationToken) {
    tokio::spawn(async move {
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
    });
}
