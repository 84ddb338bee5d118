//! How old this replica's view of revocations and role changes is. Both are
//! polled from the database; if the polls keep failing (the database is down or
//! unreachable from this replica) the view grows stale and a revoked session or
//! a removed role could go on being accepted here. Past a bound, validation
//! fails closed (`UNAVAILABLE`) and `/readyz` turns 503 until a poll succeeds.

use crate::error::AuthError;
use parking_lot::Mutex;
use prometheus::{Gauge, Registry};
use std::time::Duration;
use tokio::time::Instant;

/// Which polled view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Revocations,
    Roles,
}

/// The last successful poll of each view. Ages are measured on the monotonic
/// clock: elapsed time since a poll, whatever the wall clock (or a test's
/// manual clock) does meanwhile.
#[derive(Debug)]
pub struct Freshness {
    synced: Mutex<[Instant; 2]>,
    bound: Duration,
    age: Gauge,
}

impl Freshness {
    /// Views read at `now` (the start-up poll), trusted for `bound`.
    pub fn new(now: Instant, bound: Duration) -> prometheus::Result<Self> {
        Ok(Self {
            synced: Mutex::new([now; 2]),
            bound,
            age: Gauge::new(
                "auth_sync_view_age_seconds",
                "Age of this replica's view of revocations and role changes",
            )?,
        })
    }

    /// Exports the age as `auth_sync_view_age_seconds`.
    pub fn register(&self, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(self.age.clone()))
    }

    /// A poll of `view` that started at `at` succeeded.
    pub fn synced(&self, view: View, at: Instant) {
        let mut synced = self.synced.lock();
        let slot = &mut synced[view as usize];
        *slot = (*slot).max(at);
    }

    /// The age of the older of the two views at `now`.
    pub fn age(&self, now: Instant) -> Duration {
        let oldest = self.synced.lock().iter().copied().min().unwrap_or(now);
        let age = now.saturating_duration_since(oldest);
        self.age.set(age.as_secs_f64());
        age
    }

    /// `Unavailable` once the view is older than the bound.
    pub fn check(&self, now: Instant) -> Result<(), AuthError> {
        let age = self.age(now);
        if age > self.bound {
            return Err(AuthError::Unavailable(format!(
                "this replica cannot reach its database: its view of revoked sessions is {} s old \
                 (limit {} s); retry, or use another replica",
                age.as_secs(),
                self.bound.as_secs()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_closed_past_the_bound_and_recovers_on_a_poll() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let f = Freshness::new(t0, s(10)).unwrap();
        assert!(f.check(t0 + s(10)).is_ok());
        f.synced(View::Revocations, t0 + s(9));
        assert!(
            matches!(f.check(t0 + s(11)), Err(AuthError::Unavailable(_))),
            "the role view is still as old as start-up"
        );
        f.synced(View::Roles, t0 + s(11));
        assert!(f.check(t0 + s(12)).is_ok());
        assert_eq!(f.age(t0 + s(12)), s(3));
    }
}
