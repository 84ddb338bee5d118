//! This replica's view of the feed: its newest settled position, and since
//! when the feed is known complete. On PostgreSQL an event is served only once
//! every transaction that could still write one before it has ended, so a
//! write transaction left open anywhere on the cluster holds the feed back.
//! Then no heartbeat may claim "nothing else happened": subscribers must see
//! the silence and fail closed, not be told they are current.

use super::{Position, SignalSql};
use crate::storage::StoreError;
use parking_lot::Mutex;
use platform::clock::monotonic_now;
use platform::db::Database;
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Snapshots remembered while waiting for the oldest to settle (at one poll
/// every 50 ms, a minute's worth; older ones are dropped, which only delays
/// "settled" further: fail closed).
const PENDING: usize = 1200;

/// The feed's settings and this replica's view of it.
#[derive(Debug)]
pub struct Feed {
    /// A subscriber hears at least this often while the feed is complete.
    pub heartbeat: Duration,
    /// How far back the feed serves.
    pub keep: chrono::Duration,
    /// How long an RFC 8936 poll with nothing to deliver waits for an event.
    pub long_poll: Duration,
    /// The newest settled position, polled; subscribers wait on it.
    head: watch::Sender<Option<Position>>,
    settling: Mutex<Settling>,
    /// Subscriptions this replica serves at once.
    slots: Arc<Semaphore>,
    /// Ends every subscription at shutdown (a stream would otherwise hold the
    /// server open).
    pub stop: CancellationToken,
}

/// The snapshots taken by the polls, until they settle.
#[derive(Debug, Default)]
struct Settling {
    /// (xmax, when) of each poll's snapshot, oldest first.
    pending: VecDeque<(i64, Instant)>,
    /// Everything committed by this time is in the feed.
    complete_at: Option<Instant>,
}

impl Feed {
    pub fn new(
        heartbeat: Duration,
        keep: chrono::Duration,
        subscribers: usize,
        long_poll: Duration,
    ) -> Self {
        Self {
            heartbeat,
            keep,
            long_poll,
            head: watch::Sender::new(None),
            settling: Mutex::default(),
            slots: Arc::new(Semaphore::new(subscribers)),
            stop: CancellationToken::new(),
        }
    }

    /// Wakes when the newest position changes.
    pub fn watch(&self) -> watch::Receiver<Option<Position>> {
        self.head.subscribe()
    }

    /// A subscription slot, if one is free.
    pub fn slot(&self) -> Option<OwnedSemaphorePermit> {
        self.slots.clone().try_acquire_owned().ok()
    }

    /// Whether the feed was complete recently enough for a heartbeat.
    pub fn current(&self, now: Instant) -> bool {
        self.settling
            .lock()
            .complete_at
            .is_some_and(|at| now.saturating_duration_since(at) <= self.heartbeat)
    }

    /// One poll: the snapshot's bounds, then the newest settled position (one
    /// index probe for the replica, however many subscribers wait).
    pub async fn poll(&self, db: &Database) -> Result<(), StoreError> {
        let taken = monotonic_now();
        let (xmin, xmax) = platform::sql!(read(db), SignalSql::snapshot_bounds())?;
        let head = platform::sql!(read(db), SignalSql::head())?;
        self.settle(xmin, xmax, taken);
        self.head.send_if_modified(|h| {
            let changed = *h != head;
            *h = head;
            changed
        });
        Ok(())
    }

    /// Records a snapshot taken at `taken`; every earlier snapshot whose
    /// `xmax` is at most `xmin` has settled.
    fn settle(&self, xmin: i64, xmax: i64, taken: Instant) {
        let mut s = self.settling.lock();
        s.pending.push_back((xmax, taken));
        while let Some(&(x, at)) = s.pending.front() {
            if x > xmin {
                break;
            }
            s.complete_at = Some(at);
            s.pending.pop_front();
        }
        while s.pending.len() > PENDING {
            s.pending.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transaction_left_open_stops_the_heartbeats_until_it_ends() {
        let hour = chrono::Duration::hours(1);
        let feed = Feed::new(Duration::from_secs(2), hour, 8, Duration::from_secs(25));
        let t0 = monotonic_now();
        assert!(!feed.current(t0), "nothing polled yet");
        // Nothing running: complete at once.
        feed.settle(100, 100, t0);
        assert!(feed.current(t0));
        // Transaction 100 stays open while others come and go.
        for i in 1..=10u32 {
            feed.settle(
                100,
                100 + i64::from(i),
                t0 + Duration::from_secs(u64::from(i)),
            );
        }
        assert!(!feed.current(t0 + Duration::from_secs(10)));
        // It ends: complete as of the newest snapshot it no longer holds back.
        let end = t0 + Duration::from_secs(11);
        feed.settle(111, 111, end);
        assert!(feed.current(end));
    }
}
