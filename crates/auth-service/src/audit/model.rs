//! The types of audit as the use cases and the SQL share them.

use chrono::{DateTime, Utc};
use platform::sql::Timestamp;
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
