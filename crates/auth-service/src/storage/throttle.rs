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
    /// Counts one more attempt under each `(key, window)` in one transaction,
    /// starting a new window where the current one is older than `window`;
    /// returns the counters after the increment, in order.
    async fn reserve(
        &self,
        keys: &[(&str, Duration)],
        now: DateTime<Utc>,
    ) -> Result<Vec<Counter>, StoreError>;
    /// Gives back a reservation that turned out a success: `clear` is deleted,
    /// `decrement` counts one less.
    async fn release(&self, clear: Option<&str>, decrement: Option<&str>)
    -> Result<(), StoreError>;
    async fn counter(&self, key: &str) -> Result<Option<Counter>, StoreError>;
}

platform::generic_store! {
    #[async_trait]
    impl<DB> ThrottleStore for Sql<DB> {
        async fn reserve(
            &self,
            keys: &[(&str, Duration)],
            now: DateTime<Utc>,
        ) -> Result<Vec<Counter>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let mut counters = Vec::with_capacity(keys.len());
            for (key, window) in keys {
                // One statement per key: concurrent reservations are serialised by
                // the row, so each sees a distinct count.
                let counter = sqlx::query_as(
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
                .bind(*key)
                .bind(Timestamp(now))
                .bind(Timestamp(now - *window))
                .fetch_one(&mut *tx)
                .await?;
                counters.push(counter);
            }
            tx.commit().await?;
            Ok(counters)
        }

        async fn release(
            &self,
            clear: Option<&str>,
            decrement: Option<&str>,
        ) -> Result<(), StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            if let Some(key) = clear {
                sqlx::query("DELETE FROM throttle_counters WHERE key = $1")
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(key) = decrement {
                sqlx::query(
                    "UPDATE throttle_counters SET count = count - 1 WHERE key = $1 AND count > 0",
                )
                .bind(key)
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(())
        }

        async fn counter(&self, key: &str) -> Result<Option<Counter>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT count, window_start, updated_at FROM throttle_counters WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(&self.pool)
            .await?)
        }
    }
}
