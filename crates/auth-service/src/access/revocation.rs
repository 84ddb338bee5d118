//! The in-memory set of revoked sessions that `ValidateToken` consults instead of
//! the database. Each replica polls the database for sessions revoked since its last
//! look, so that a logout on one replica is seen by all within the poll interval.
//! Entries are forgotten once every token of that session has expired.

use crate::access::feed::ChangeCursor;
use crate::sessions::SessionSql;
use crate::storage::StoreError;
use chrono::{DateTime, Duration, Utc};
use parking_lot::RwLock;
use platform::db::Database;
use platform::ids::SessionId;
use std::collections::HashMap;

/// Revoked sessions that may still have unexpired access tokens.
#[derive(Debug)]
pub struct RevocationSet {
    revoked: RwLock<HashMap<SessionId, DateTime<Utc>>>,
    /// Where this replica is in the stream of revocations; an entry matters for
    /// the access-token lifetime plus leeway.
    cursor: ChangeCursor,
}

impl RevocationSet {
    /// An empty set whose entries matter for `horizon`.
    pub fn new(horizon: Duration) -> Self {
        Self {
            revoked: RwLock::default(),
            cursor: ChangeCursor::new(horizon),
        }
    }

    /// Whether tokens of `session_id` must be refused.
    pub fn is_revoked(&self, session_id: &SessionId) -> bool {
        self.revoked.read().contains_key(session_id)
    }

    /// Records a revocation made by this replica, effective at once.
    pub fn insert(&self, session_id: SessionId, at: DateTime<Utc>) {
        self.revoked.write().insert(session_id, at);
    }

    /// Loads the revocations written since the last poll and forgets expired ones.
    pub async fn poll(&self, db: &Database, now: DateTime<Utc>) -> Result<(), StoreError> {
        let since = self.cursor.since(now);
        let rows = platform::sql!(read(db), SessionSql::revoked_sessions_since(since))?;
        let newest = rows.iter().map(|(_, at)| *at).max();
        {
            let mut set = self.revoked.write();
            set.extend(rows);
            let oldest = self.cursor.oldest_relevant(now);
            set.retain(|_, at| *at >= oldest);
        }
        self.cursor.advance(since, newest, now);
        Ok(())
    }

    /// How many sessions are held (a metric).
    pub fn len(&self) -> usize {
        self.revoked.read().len()
    }

    /// Whether none are.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
