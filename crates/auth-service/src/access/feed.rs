//! Following a table's changes by the time they were stamped with, as every
//! replica does for revoked sessions and role changes. Each poll reads from a
//! little before the newest change it has seen, because a replica whose clock
//! runs behind, or whose transaction commits late, may stamp a change with an
//! earlier time than one already read; readers dedupe what they see twice.

use chrono::{DateTime, Duration, Utc};
use parking_lot::RwLock;

/// How far back each poll looks again.
const OVERLAP: Duration = Duration::seconds(10);

/// Where a replica is in a stream of time-stamped changes.
#[derive(Debug)]
pub struct ChangeCursor {
    newest: RwLock<Option<DateTime<Utc>>>,
    /// How long a change matters (the longest token lifetime plus leeway); the
    /// first poll reads that far back.
    horizon: Duration,
}

impl ChangeCursor {
    /// A cursor that has seen nothing yet.
    pub fn new(horizon: Duration) -> Self {
        Self {
            newest: RwLock::default(),
            horizon,
        }
    }

    /// Changes older than this no longer matter.
    pub fn oldest_relevant(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.horizon
    }

    /// The time to read changes from.
    pub fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let newest = *self.newest.read();
        newest.map_or(self.oldest_relevant(now), |n| n - OVERLAP)
    }

    /// Records a read from `since` whose newest change was `newest`.
    pub fn advance(&self, since: DateTime<Utc>, newest: Option<DateTime<Utc>>) {
        let mut current = self.newest.write();
        *current = match (*current, newest) {
            (Some(c), Some(n)) => Some(c.max(n)),
            (None, n) => Some(n.unwrap_or(since).max(since)),
            (c, None) => c,
        };
    }
}
