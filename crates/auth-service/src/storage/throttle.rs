//! Throttling counters shared by every replica: failures per key in a window.

use super::{Sql, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
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

/// Throttling counters.
#[async_trait]
pub trait ThrottleStore: Send + Sync + std::fmt::Debug {
    /// Counts one more event under `key`, starting a new window when the current
    /// one is older than `window`; returns the counter after the increment.
    async fn bump_counter(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<Counter, StoreError>;
    async fn counter(&self, key: &str) -> Result<Option<Counter>, StoreError>;
    async fn clear_counter(&self, key: &str) -> Result<(), StoreError>;
}

platform::generic_store! {
    #[async_trait]
    impl<DB> ThrottleStore for Sql<DB> {
        async fn bump_counter(
            &self,
            key: &str,
            now: DateTime<Utc>,
            window: Duration,
        ) -> Result<Counter, StoreError> {
            Ok(sqlx::query_as(
                "INSERT INTO throttle_counters (key, count, window_start, updated_at)
                 VALUES ($1, 1, $2, $2)
                 ON CONFLICT (key) DO UPDATE SET
                     count = CASE WHEN throttle_counters.window_start <= $3 THEN 1
                                  ELSE throttle_counters.count + 1 END,
                     window_start = CASE WHEN throttle_counters.window_start <= $3 THEN $2
                                         ELSE throttle_counters.window_start END,
                     updated_at = $2
                 RETURNING count, window_start, updated_at",
            )
            .bind(key)
            .bind(Timestamp(now))
            .bind(Timestamp(now - window))
            .fetch_one(&self.pool)
            .await?)
        }

        async fn counter(&self, key: &str) -> Result<Option<Counter>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT count, window_start, updated_at FROM throttle_counters WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
        }

        async fn clear_counter(&self, key: &str) -> Result<(), StoreError> {
            sqlx::query("DELETE FROM throttle_counters WHERE key = $1")
                .bind(key)
                .execute(&self.pool)
                .await?;
            Ok(())
        }
    }
}
