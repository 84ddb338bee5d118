//! Throttling counters shared by every replica: failures per key in a window.

use super::model::*;
use crate::storage::StoreError;
use chrono::{DateTime, Duration, Utc};
use platform::sql::Timestamp;

/// Throttling counters.
pub struct ThrottleSql<DB>(std::marker::PhantomData<DB>);

platform::generic_store! {
    impl<DB> ThrottleSql<DB> {
        /// Counts one more attempt under each `(key, window)` in one transaction,
        /// starting a new window where the current one is older than `window`;
        /// returns the counters after the increment, in order.
        pub async fn reserve(
            c: &mut DB::Connection,
            keys: &[(&str, Duration)],
            now: DateTime<Utc>,
        ) -> Result<Vec<Counter>, StoreError> {
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
                .fetch_one(&mut *c)
                .await?;
                counters.push(counter);
            }
            Ok(counters)
        }

        /// Gives back a reservation that turned out a success: `clear` is deleted,
        /// `decrement` counts one less.
        pub async fn release(
            c: &mut DB::Connection,
            clear: Option<&str>,
            decrement: Option<&str>,
        ) -> Result<(), StoreError> {
            if let Some(key) = clear {
                sqlx::query("DELETE FROM throttle_counters WHERE key = $1")
                    .bind(key)
                    .execute(&mut *c)
                    .await?;
            }
            if let Some(key) = decrement {
                sqlx::query(
                    "UPDATE throttle_counters SET count = count - 1 WHERE key = $1 AND count > 0",
                )
                .bind(key)
                .execute(&mut *c)
                .await?;
            }
            Ok(())
        }

        pub async fn counter(
            c: &mut DB::Connection,
            key: &str,
        ) -> Result<Option<Counter>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT count, window_start, updated_at FROM throttle_counters WHERE key = $1",
            )
            .bind(key)
            .fetch_optional(&mut *c)
            .await?)
        }
    }
}
