//! The in-memory set of revoked sessions that `ValidateToken` consults instead of
//! the database. Each replica polls the database for sessions revoked since its last
//! look, so that a logout on one replica is seen by all within the poll interval.
//! Entries are forgotten once every token of that session has expired.

use crate::storage::{AuthStore, StoreError};
use chrono::{DateTime, Duration, Utc};
use std::collections::HashMap;
use std::sync::RwLock;
use uuid::Uuid;

/// How far back each poll looks again, to catch revocations written by a replica
/// whose clock runs behind or whose transaction committed late.
const OVERLAP: Duration = Duration::seconds(10);

/// Revoked sessions that may still have unexpired access tokens.
#[derive(Debug)]
pub struct RevocationSet {
    revoked: RwLock<HashMap<Uuid, DateTime<Utc>>>,
    /// The newest revocation time seen in the database.
    cursor: RwLock<Option<DateTime<Utc>>>,
    /// How long an entry matters: the access-token lifetime plus leeway.
    horizon: Duration,
}

impl RevocationSet {
    /// An empty set whose entries matter for `horizon`.
    pub fn new(horizon: Duration) -> Self {
        Self {
            revoked: RwLock::default(),
            cursor: RwLock::default(),
            horizon,
        }
    }

    /// Whether tokens of `session_id` must be refused.
    pub fn is_revoked(&self, session_id: &Uuid) -> bool {
        self.revoked
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(session_id)
    }

    /// Records a revocation made by this replica, effective at once.
    pub fn insert(&self, session_id: Uuid, at: DateTime<Utc>) {
        self.revoked
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(session_id, at);
    }

    /// Loads the revocations written since the last poll and forgets expired ones.
    pub async fn poll(&self, store: &dyn AuthStore, now: DateTime<Utc>) -> Result<(), StoreError> {
        let cursor = *self
            .cursor
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let since = cursor.map_or(now - self.horizon, |c| c - OVERLAP);
        let rows = store.revoked_sessions_since(since).await?;
        let newest = rows.iter().map(|(_, at)| *at).max();
        {
            let mut set = self
                .revoked
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            set.extend(rows);
            let horizon = now - self.horizon;
            set.retain(|_, at| *at >= horizon);
        }
        if let Some(newest) = newest.filter(|n| cursor.is_none_or(|c| *n > c)) {
            *self
                .cursor
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(newest);
        } else if cursor.is_none() {
            *self
                .cursor
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(since);
        }
        Ok(())
    }

    /// How many sessions are held (a metric).
    pub fn len(&self) -> usize {
        self.revoked
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
