//! The types of throttle as the use cases and the SQL share them.

use chrono::{DateTime, Utc};
use platform::sql::Timestamp;

/// A throttling counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct Counter {
    pub count: i64,
    #[sqlx(try_from = "Timestamp")]
    pub window_start: DateTime<Utc>,
    #[sqlx(try_from = "Timestamp")]
    pub updated_at: DateTime<Utc>,
}
