//! The `outbox` table, one SQL body for both backends.

use super::OutboxEvent;
use crate::sql::{Expired, Timestamp, rows};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// The most undelivered events the backlog gauge counts; it reads this
/// value when there are at least as many.
pub const BACKLOG_CAP: i64 = 10_000;

/// Delivered events, by delivery time.
const DELIVERED: Expired = Expired {
    table: "outbox",
    key: "id",
    column: "delivered_at",
};

const COLUMNS: &str = "id, topic, aggregate_id, payload, created_at, attempts";

/// The `outbox` table: events written in the transaction of the change they
/// announce, and the relay's queue (called through [`crate::sql!`]).
#[derive(Debug)]
pub struct SqlOutbox<DB>(std::marker::PhantomData<DB>);

crate::generic_store! {
    impl<DB> SqlOutbox<DB> {
        /// Records `event` inside the caller's transaction.
        pub async fn insert(
            conn: &mut DB::Connection,
            event: &OutboxEvent,
        ) -> Result<(), sqlx::Error> {
            sqlx::query(
                "INSERT INTO outbox (id, topic, aggregate_id, payload, created_at, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(event.id)
            .bind(&event.topic)
            .bind(event.aggregate_id)
            .bind(&event.payload)
            .bind(Timestamp(event.created_at))
            .execute(conn)
            .await?;
            Ok(())
        }

        /// Records every one of `events` inside the caller's transaction, in
        /// as few statements as the parameter limit allows (a bulk import
        /// writes hundreds at once).
        pub async fn insert_all(
            conn: &mut DB::Connection,
            events: &[OutboxEvent],
        ) -> Result<(), sqlx::Error> {
            const PER_ROW: usize = 5;
            for chunk in events.chunks(rows::rows_per_statement(PER_ROW, 0)) {
                let values = rows::values(chunk.len(), PER_ROW, 1, |n| {
                    format!("({}, ${})", rows::params(n, PER_ROW), n + 4)
                });
                let sql = format!(
                    "INSERT INTO outbox (id, topic, aggregate_id, payload, created_at, next_attempt_at)
                     VALUES {values}"
                );
                let query = chunk.iter().fold(sqlx::query(&sql), |q, event| {
                    q.bind(event.id)
                        .bind(&event.topic)
                        .bind(event.aggregate_id)
                        .bind(&event.payload)
                        .bind(Timestamp(event.created_at))
                });
                query.execute(&mut *conn).await?;
            }
            Ok(())
        }
    }
}

crate::generic_store! {
    impl<DB> SqlOutbox<DB> {
        /// Leases up to `limit` due events until `lease_until`, the longest due
        /// first: read in the pending index's order, so a claim after a bulk
        /// import takes its page off the index instead of sorting the backlog.
        pub async fn claim_due(
            c: &mut DB::Connection,
            now: DateTime<Utc>,
            lease_until: DateTime<Utc>,
            limit: i64,
        ) -> Result<Vec<OutboxEvent>, sqlx::Error> {
            let due = format!(
                "SELECT id FROM outbox
                 WHERE delivered_at IS NULL AND next_attempt_at <= $1
                   AND (locked_until IS NULL OR locked_until <= $1)
                 ORDER BY next_attempt_at LIMIT $3{}",
                DB::SKIP_LOCKED
            );
            let sql = format!(
                "UPDATE outbox SET locked_until = $2 WHERE {} RETURNING {COLUMNS}",
                DB::in_rows("id", &due)
            );
            let mut events: Vec<OutboxEvent> = sqlx::query_as(&sql)
                .bind(Timestamp(now))
                .bind(Timestamp(lease_until))
                .bind(limit)
                .fetch_all(&mut *c)
                .await?;
            events.sort_by_key(|e| e.created_at);
            Ok(events)
        }

        /// Marks an event delivered.
        pub async fn mark_delivered(
            c: &mut DB::Connection,
            id: Uuid,
            now: DateTime<Utc>,
        ) -> Result<(), sqlx::Error> {
            // A delivered notification's one-time token has no business staying.
            sqlx::query(
                "UPDATE outbox SET delivered_at = $2, locked_until = NULL,
                     payload = CASE WHEN topic LIKE $3 THEN '{}' ELSE payload END
                 WHERE id = $1",
            )
            .bind(id)
            .bind(Timestamp(now))
            .bind(format!("{}%", super::SECRET_TOPICS))
            .execute(&mut *c)
            .await?;
            Ok(())
        }

        /// Records a failed attempt and when to try again.
        pub async fn mark_failed(
            c: &mut DB::Connection,
            id: Uuid,
            next_attempt_at: DateTime<Utc>,
            error: &str,
        ) -> Result<(), sqlx::Error> {
            let error: String = error.chars().take(500).collect();
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = $2, last_error = $3,
                 locked_until = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(Timestamp(next_attempt_at))
            .bind(error)
            .execute(&mut *c)
            .await?;
            Ok(())
        }

        /// Undelivered events, counted up to [`BACKLOG_CAP`]: the relay asks on
        /// every pass, and after a bulk import a full count would read a
        /// million index entries each time.
        pub async fn backlog(c: &mut DB::Connection) -> Result<i64, sqlx::Error> {
            sqlx::query_scalar(
                "SELECT count(*) FROM (
                     SELECT 1 FROM outbox WHERE delivered_at IS NULL LIMIT $1) AS pending",
            )
            .bind(BACKLOG_CAP)
            .fetch_one(&mut *c)
            .await
        }

        /// Deletes up to `limit` events delivered before `before`; how many went.
        pub async fn prune_delivered(
            c: &mut DB::Connection,
            before: DateTime<Utc>,
            limit: i64,
        ) -> Result<u64, sqlx::Error> {
            DELIVERED.delete(c, before, limit).await
        }
    }
}
