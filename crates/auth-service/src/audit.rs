//! The audit log: every security event, with who did it, to whom, from where and
//! when. Details never hold a password, token or secret.

use crate::storage::{AuditRecord, AuditStore};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

/// Where a request came from, as far as the service can trust it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientInfo {
    /// The end client's address: the peer's, or the one a trusted proxy reported.
    pub address: Option<String>,
    /// The end client's user agent, when a trusted proxy reported it.
    pub user_agent: Option<String>,
}

/// An event being described.
#[derive(Debug, Clone)]
pub struct Event {
    record: AuditRecord,
}

impl Event {
    /// An event of `kind` (e.g. `login.failed`) at `at`.
    pub fn new(kind: &str, at: DateTime<Utc>, client: &ClientInfo) -> Self {
        Self {
            record: AuditRecord {
                id: Uuid::now_v7(),
                at,
                kind: kind.to_owned(),
                actor_id: None,
                subject: None,
                client_address: client.address.clone(),
                details: BTreeMap::new(),
            },
        }
    }

    /// Who did it.
    pub fn actor(mut self, id: impl ToString) -> Self {
        self.record.actor_id = Some(id.to_string());
        self
    }

    /// Whom or what it concerned.
    pub fn subject(mut self, subject: impl ToString) -> Self {
        self.record.subject = Some(subject.to_string());
        self
    }

    /// A detail (never a secret).
    pub fn detail(mut self, key: &str, value: impl ToString) -> Self {
        self.record
            .details
            .insert(key.to_owned(), value.to_string());
        self
    }

    /// Writes the event. A failure is logged, not returned: the action it
    /// describes has already happened.
    pub async fn record(self, store: &dyn AuditStore) {
        if let Err(e) = store.insert_audit(&self.record).await {
            tracing::error!(kind = %self.record.kind, error = %e, "audit event not recorded");
        }
    }
}
