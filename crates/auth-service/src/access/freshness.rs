//! This replica's polled views of revoked sessions and role changes, and how old
//! they are. Both are polled from the database; if the polls keep failing (the
//! database is down or unreachable from this replica) the view grows stale and a
//! revoked session or a removed role could go on being accepted here. Past a
//! bound, validation fails closed (`UNAVAILABLE`) and `/readyz` turns 503 until
//! a poll succeeds.

use crate::access::authz::AuthzState;
use crate::access::revocation::RevocationSet;
use crate::error::AuthError;
use crate::storage::StoreError;
use platform::clock::SharedClock;
use platform::db::Database;
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, Registry};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Which polled view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    Revocations,
    Roles,
}

/// The last successful poll of each view, in milliseconds since `base` on the
/// monotonic clock: elapsed time since a poll, whatever the wall clock (or a
/// test's manual clock) does meanwhile. Atomics, because every ValidateToken
/// reads them.
#[derive(Debug)]
pub struct Freshness {
    base: Instant,
    synced: [AtomicU64; 2],
    bound: Duration,
    gauge: Gauge,
}

impl Freshness {
    /// Views read at `now` (the start-up poll), trusted for `bound`.
    pub fn new(now: Instant, bound: Duration) -> prometheus::Result<Self> {
        Ok(Self {
            base: now,
            synced: [AtomicU64::new(0), AtomicU64::new(0)],
            bound,
            gauge: Gauge::new(
                "auth_sync_view_age_seconds",
                "Age of this replica's view of revocations and role changes",
            )?,
        })
    }

    /// Exports the age as `auth_sync_view_age_seconds`, computed when scraped
    /// (a poll stuck on an unreachable database updates nothing meanwhile).
    pub fn register(self: &Arc<Self>, registry: &Registry) -> prometheus::Result<()> {
        registry.register(Box::new(AgeCollector(self.clone())))
    }

    fn millis(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_millis()).unwrap_or(u64::MAX)
    }

    /// A poll of `view` that started at `at` succeeded.
    pub fn synced(&self, view: View, at: Instant) {
        self.synced[view as usize].fetch_max(self.millis(at), Ordering::Relaxed);
    }

    /// The age of the older of the two views at `now`.
    pub fn age(&self, now: Instant) -> Duration {
        let oldest = self
            .synced
            .iter()
            .map(|s| s.load(Ordering::Relaxed))
            .min()
            .unwrap_or(0);
        Duration::from_millis(self.millis(now).saturating_sub(oldest))
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

/// Sets the gauge to the age at each scrape.
struct AgeCollector(Arc<Freshness>);

impl Collector for AgeCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.0.gauge.desc()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.0
            .gauge
            .set(self.0.age(platform::clock::monotonic_now()).as_secs_f64());
        self.0.gauge.collect()
    }
}

/// The views a replica polls, and their freshness.
#[derive(Debug)]
pub struct Views {
    pub revoked: Arc<RevocationSet>,
    pub authz: Arc<AuthzState>,
    pub freshness: Arc<Freshness>,
    db: Database,
    clock: SharedClock,
}

impl Views {
    /// Loads both views (entries matter for `horizon`), trusted for `bound`.
    pub async fn load(
        db: Database,
        clock: SharedClock,
        horizon: chrono::Duration,
        bound: Duration,
    ) -> anyhow::Result<Self> {
        let views = Self {
            revoked: Arc::new(RevocationSet::new(horizon)),
            authz: Arc::new(AuthzState::new(horizon)),
            freshness: Arc::new(Freshness::new(platform::clock::monotonic_now(), bound)?),
            db,
            clock,
        };
        views.poll_revocations().await?;
        views.poll_roles().await?;
        Ok(views)
    }

    /// Loads the revocations since the last poll.
    pub async fn poll_revocations(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.track(View::Revocations, self.revoked.poll(&self.db, now))
            .await
    }

    /// Reloads role definitions and the subject changes since the last poll.
    pub async fn poll_roles(&self) -> Result<(), StoreError> {
        let now = self.clock.now();
        self.track(View::Roles, self.authz.poll(&self.db, now))
            .await
    }

    async fn track(
        &self,
        view: View,
        poll: impl Future<Output = Result<(), StoreError>>,
    ) -> Result<(), StoreError> {
        let started = platform::clock::monotonic_now();
        let polled = poll.await;
        if polled.is_ok() {
            self.freshness.synced(view, started);
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fails_closed_past_the_bound_and_recovers_on_a_poll() {
        let t0 = platform::clock::monotonic_now();
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
