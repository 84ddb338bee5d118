//! How a service's own failures reach callers: logged in full with an error id,
//! shown to the caller as that id only, so no internals leak.

use tonic::{Code, Status};

/// Logs `error` and returns a status carrying only an error id, and for a
/// retryable code, that a retry may help.
pub fn opaque(code: Code, error: &dyn std::fmt::Display) -> Status {
    let id = uuid::Uuid::new_v4();
    tracing::error!(error_id = %id, error = %error, "request failed");
    let msg = match code {
        Code::Unavailable => {
            format!("the service's database is unavailable; retry later (error id {id})")
        }
        Code::Aborted => format!("a concurrent change conflicted; retry (error id {id})"),
        _ => format!("internal error (error id {id})"),
    };
    Status::new(code, msg)
}

/// The status a database error deserves when a retry may cure it: UNAVAILABLE
/// for a database that is unreachable, shutting down, starting, overloaded or
/// read-only; ABORTED for a serialization conflict or a deadlock. `None` means
/// a bug (INTERNAL).
pub fn retryable(e: &sqlx::Error) -> Option<Code> {
    match e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => Some(Code::Unavailable),
        sqlx::Error::Database(db) => db.code().and_then(|c| database_code(&c)),
        _ => None,
    }
}

/// PostgreSQL SQLSTATEs and SQLite result codes (extended, as sqlx reports them).
fn database_code(code: &str) -> Option<Code> {
    match code {
        // PostgreSQL: serialization failure, deadlock.
        "40001" | "40P01" => Some(Code::Aborted),
        // Connection exceptions (class 08); admin, crash shutdown, cannot connect
        // now; too many connections; read-only transaction (a standby or a
        // failover in progress); lock not available.
        c if c.starts_with("08") => Some(Code::Unavailable),
        "57P01" | "57P02" | "57P03" | "53300" | "25006" | "55P03" => Some(Code::Unavailable),
        // SQLite: BUSY_SNAPSHOT is a conflict with a newer snapshot.
        "517" => Some(Code::Aborted),
        // SQLite: BUSY (and its recovery/timeout forms), LOCKED, READONLY.
        "5" | "261" | "773" | "6" | "262" | "8" => Some(Code::Unavailable),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_database_codes() {
        assert_eq!(database_code("57P01"), Some(Code::Unavailable));
        assert_eq!(database_code("08006"), Some(Code::Unavailable));
        assert_eq!(database_code("40001"), Some(Code::Aborted));
        assert_eq!(database_code("40P01"), Some(Code::Aborted));
        assert_eq!(database_code("5"), Some(Code::Unavailable));
        assert_eq!(
            database_code("23505"),
            None,
            "a unique violation is not retryable"
        );
        assert_eq!(
            retryable(&sqlx::Error::PoolTimedOut),
            Some(Code::Unavailable)
        );
        assert_eq!(retryable(&sqlx::Error::RowNotFound), None);
    }
}
