//! An injectable clock, so that expiry and rotation are tested without sleeping.

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use std::sync::Arc;

/// The source of "now" for everything that expires.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    // The one place the wall clock is read.
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that tests move by hand. It starts at the real time, so that tokens it
/// stamps are also acceptable to stock JWT libraries that read the wall clock.
#[derive(Debug, Clone)]
pub struct ManualClock {
    now: Arc<Mutex<DateTime<Utc>>>,
}

impl Default for ManualClock {
    #[allow(clippy::disallowed_methods)]
    fn default() -> Self {
        Self {
            now: Arc::new(Mutex::new(Utc::now())),
        }
    }
}

impl ManualClock {
    /// Moves the clock forward.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock();
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock()
    }
}

/// A clock shared by every component of a service.
pub type SharedClock = Arc<dyn Clock>;

/// A new time-ordered (v7) UUID: the one place one is made. It orders rows
/// and names events and decides nothing, so it reads the wall clock, not the
/// injected one (ids stay ordered across replicas and test clocks).
#[allow(clippy::disallowed_methods)]
#[must_use]
pub fn time_ordered_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// The monotonic "now" that elapsed times, deadlines and cache ages are
/// measured from: the one place it is read. Tokio's, so that tests may pause
/// it; it is never compared with a token's or a row's time (those come from
/// [`Clock`]).
#[allow(clippy::disallowed_methods)]
#[must_use]
pub fn monotonic_now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}
