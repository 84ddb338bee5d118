//! The outbox table on SQLite (times in microseconds since the epoch).

use super::{OutboxEvent, OutboxStore};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqlitePool, SqliteRow};
use uuid::Uuid;

/// The `outbox` table of an SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteOutbox {
    pool: SqlitePool,
}

impl SqliteOutbox {
    /// The outbox in `pool`'s database.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }

    /// Records `event` inside the caller's transaction.
    pub async fn insert(
        conn: &mut SqliteConnection,
        event: &OutboxEvent,
    ) -> Result<(), sqlx::Error> {
        sqlx::query(
            "INSERT INTO outbox (id, topic, aggregate_id, payload, created_at, next_attempt_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )
        .bind(event.id)
        .bind(&event.topic)
        .bind(event.aggregate_id)
        .bind(&event.payload)
        .bind(event.created_at.timestamp_micros())
        .execute(conn)
        .await?;
        Ok(())
    }
}

fn event(r: &SqliteRow) -> Result<OutboxEvent, sqlx::Error> {
    Ok(OutboxEvent {
        id: r.try_get("id")?,
        topic: r.try_get("topic")?,
        aggregate_id: r.try_get("aggregate_id")?,
        payload: r.try_get("payload")?,
        created_at: crate::db::sqlite_time(r, "created_at")?,
        attempts: r.try_get("attempts")?,
    })
}

impl OutboxStore for SqliteOutbox {
    fn claim_due(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: i64,
    ) -> BoxFuture<'_, Result<Vec<OutboxEvent>, sqlx::Error>> {
        Box::pin(async move {
            // SQLite has one writer at a time, so the UPDATE alone is the lease.
            let rows = sqlx::query(
                "UPDATE outbox SET locked_until = ?2 WHERE id IN (
                     SELECT id FROM outbox
                     WHERE delivered_at IS NULL AND next_attempt_at <= ?1
                       AND (locked_until IS NULL OR locked_until <= ?1)
                     ORDER BY created_at LIMIT ?3)
                 RETURNING id, topic, aggregate_id, payload, created_at, attempts",
            )
            .bind(now.timestamp_micros())
            .bind(lease_until.timestamp_micros())
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
            let mut events = rows.iter().map(event).collect::<Result<Vec<_>, _>>()?;
            events.sort_by_key(|e| e.created_at);
            Ok(events)
        })
    }

    fn mark_delivered(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        Box::pin(async move {
            sqlx::query("UPDATE outbox SET delivered_at = ?2, locked_until = NULL WHERE id = ?1")
                .bind(id)
                .bind(now.timestamp_micros())
                .execute(&self.pool)
                .await?;
            Ok(())
        })
    }

    fn mark_failed(
        &self,
        id: Uuid,
        next_attempt_at: DateTime<Utc>,
        error: &str,
    ) -> BoxFuture<'_, Result<(), sqlx::Error>> {
        let error: String = error.chars().take(500).collect();
        Box::pin(async move {
            sqlx::query(
                "UPDATE outbox SET attempts = attempts + 1, next_attempt_at = ?2, last_error = ?3,
                 locked_until = NULL WHERE id = ?1",
            )
            .bind(id)
            .bind(next_attempt_at.timestamp_micros())
            .bind(error)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn backlog(&self) -> BoxFuture<'_, Result<i64, sqlx::Error>> {
        Box::pin(async move {
            sqlx::query_scalar("SELECT count(*) FROM outbox WHERE delivered_at IS NULL")
                .fetch_one(&self.pool)
                .await
        })
    }
}
