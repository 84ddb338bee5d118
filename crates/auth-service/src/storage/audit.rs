//! The audit log: who did what to whom, from where, newest first.

use super::{Sql, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::sql::{SqlType, Timestamp};
use sqlx::types::Json;
use std::collections::BTreeMap;
use uuid::Uuid;

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuditRecord {
    pub id: Uuid,
    #[sqlx(try_from = "Timestamp")]
    pub at: DateTime<Utc>,
    pub kind: String,
    pub actor_id: Option<String>,
    pub subject: Option<String>,
    pub client_address: Option<String>,
    #[sqlx(json)]
    pub details: BTreeMap<String, String>,
}

/// Which audit events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub kind: Option<String>,
    /// Events whose actor or subject is this.
    pub involving: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Strictly older than this (time, id): the page cursor.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// The audit log.
#[async_trait]
pub trait AuditStore: Send + Sync + std::fmt::Debug {
    async fn insert_audit(&self, event: &AuditRecord) -> Result<(), StoreError>;
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;
}

platform::generic_store! {
    types(Json<BTreeMap<String, String>>);
    #[async_trait]
    impl<DB> AuditStore for Sql<DB> {
        async fn insert_audit(&self, e: &AuditRecord) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO audit_events (id, at, kind, actor_id, subject, client_address, details)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(e.id)
            .bind(Timestamp(e.at))
            .bind(&e.kind)
            .bind(&e.actor_id)
            .bind(&e.subject)
            .bind(&e.client_address)
            .bind(Json(e.details.clone()))
            .execute(&self.pool)
            .await?;
            Ok(())
        }

        async fn list_audit(&self, q: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError> {
            let (before_at, before_id) = q
                .before
                .map_or((None, None), |(t, id)| (Some(Timestamp(t)), Some(id)));
            let sql = format!(
                "SELECT * FROM audit_events
                 WHERE ({} IS NULL OR kind = $1)
                   AND ({} IS NULL OR actor_id = $2 OR subject = $2)
                   AND ({} IS NULL OR at >= $3)
                   AND ({} IS NULL OR (at, id) < ($4, $5))
                 ORDER BY at DESC, id DESC LIMIT $6",
                DB::typed(1, SqlType::Text),
                DB::typed(2, SqlType::Text),
                DB::typed(3, SqlType::Timestamp),
                DB::typed(4, SqlType::Timestamp),
            );
            Ok(sqlx::query_as(&sql)
                .bind(&q.kind)
                .bind(&q.involving)
                .bind(q.since.map(Timestamp))
                .bind(before_at)
                .bind(before_id)
                .bind(q.limit)
                .fetch_all(&self.pool)
                .await?)
        }
    }
}
