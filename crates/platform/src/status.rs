//! How a service's own failures reach callers: logged in full with an error id,
//! shown to the caller as that id only, so no internals leak.

use tonic::{Code, Status};

/// Logs `error` and returns a status carrying only an error id. `Unavailable`
/// tells the caller a retry may help.
pub fn opaque(code: Code, error: &dyn std::fmt::Display) -> Status {
    let id = uuid::Uuid::new_v4();
    tracing::error!(error_id = %id, error = %error, "request failed");
    let msg = if code == Code::Unavailable {
        format!("the service's database is unavailable; retry later (error id {id})")
    } else {
        format!("internal error (error id {id})")
    };
    Status::new(code, msg)
}

/// Whether a database error means "unreachable" (retry) rather than a bug.
pub fn is_unavailable(e: &sqlx::Error) -> bool {
    matches!(
        e,
        sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed
    )
}
