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

    /// Records a read from `since`, at `now`, whose newest change was
    /// `newest`. A change stamped ahead of `now` (by a replica whose clock ran
    /// ahead) counts as `now`: taken as it is, every later read would start
    /// past the changes the other replicas stamp meanwhile, until real time
    /// caught up with it.
    pub fn advance(&self, since: DateTime<Utc>, newest: Option<DateTime<Utc>>, now: DateTime<Utc>) {
        let newest = newest.map(|n| n.min(now));
        let mut current = self.newest.write();
        *current = match (*current, newest) {
            (Some(c), Some(n)) => Some(c.max(n)),
            (None, n) => Some(n.unwrap_or(since).max(since)),
            (c, None) => c,
        };
    }
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn a_change_stamped_ahead_does_not_carry_the_cursor_past_now() {
        let cursor = ChangeCursor::new(Duration::minutes(16));
        let now = Utc::now();
        let first = cursor.since(now);
        assert_eq!(first, now - Duration::minutes(16));
        cursor.advance(first, Some(now + Duration::hours(2)), now);
        assert_eq!(cursor.since(now), now - OVERLAP);
        cursor.advance(now - OVERLAP, Some(now - Duration::seconds(1)), now);
        assert_eq!(cursor.since(now), now - OVERLAP, "never moves back");
    }
}
