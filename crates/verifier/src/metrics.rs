//! The verifier's Prometheus instruments, registered in the service's own
//! registry (`platform::metrics::Metrics::registry`) when one is given:
//! events applied by type, events ignored by reason, rejections by reason,
//! feed staleness and live revocation entries.

use crate::event::EventType;
use crate::rejection::Rejection;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The instruments; counters per label are resolved once, so `verify` pays
/// an atomic increment and no lookup.
#[derive(Debug, Clone)]
pub(crate) struct VerifierMetrics {
    applied: Vec<IntCounter>,
    ignored: IntCounterVec,
    rejections: Vec<IntCounter>,
    /// Seconds since the view of revocations was last known current (a
    /// large value before the first heartbeat).
    pub(crate) staleness: Gauge,
    /// Revoked sessions, disabled subjects and refresh floors remembered.
    pub(crate) revocations: IntGauge,
    /// 1 when `verify` vouches for tokens, 0 when it answers `Stale`.
    pub(crate) ready: IntGauge,
}

impl VerifierMetrics {
    pub(crate) fn new(registry: Option<&Registry>) -> Result<Self, prometheus::Error> {
        let applied = IntCounterVec::new(
            Opts::new(
                "identity_verifier_events_applied_total",
                "Security events applied by the token verifier, by type",
            ),
            &["event_type"],
        )?;
        let ignored = IntCounterVec::new(
            Opts::new(
                "identity_verifier_events_ignored_total",
                "Security events not applied (their SET did not verify), by reason",
            ),
            &["reason"],
        )?;
        let rejections = IntCounterVec::new(
            Opts::new(
                "identity_verifier_rejections_total",
                "Access tokens refused by the token verifier, by reason",
            ),
            &["reason"],
        )?;
        let staleness = Gauge::new(
            "identity_verifier_feed_staleness_seconds",
            "Seconds since the verifier's view of revocations was last known current",
        )?;
        let revocations = IntGauge::new(
            "identity_verifier_revocations",
            "Live revocation entries (sessions, subjects, roles) the verifier remembers",
        )?;
        let ready = IntGauge::new(
            "identity_verifier_ready",
            "1 when the verifier's feed is current, 0 when it refuses every token as stale",
        )?;
        if let Some(r) = registry {
            r.register(Box::new(applied.clone()))?;
            r.register(Box::new(ignored.clone()))?;
            r.register(Box::new(rejections.clone()))?;
            r.register(Box::new(staleness.clone()))?;
            r.register(Box::new(revocations.clone()))?;
            r.register(Box::new(ready.clone()))?;
        }
        Ok(Self {
            applied: EventType::ALL
                .iter()
                .map(|t| applied.with_label_values(&[t.as_str()]))
                .collect(),
            ignored,
            rejections: Rejection::ALL
                .iter()
                .map(|r| rejections.with_label_values(&[r.label()]))
                .collect(),
            staleness,
            revocations,
            ready,
        })
    }

    pub(crate) fn applied(&self, t: EventType) {
        if let Some(c) = EventType::ALL
            .iter()
            .position(|x| *x == t)
            .and_then(|i| self.applied.get(i))
        {
            c.inc();
        }
    }

    pub(crate) fn ignored(&self, reason: &str) {
        self.ignored.with_label_values(&[reason]).inc();
    }

    pub(crate) fn rejected(&self, r: Rejection) {
        if let Some(c) = self.rejections.get(r.index()) {
            c.inc();
        }
    }

    #[cfg(test)]
    pub(crate) fn rejected_count(&self, r: Rejection) -> u64 {
        self.rejections.get(r.index()).map_or(0, IntCounter::get)
    }

    #[cfg(test)]
    pub(crate) fn ignored_count(&self, reason: &str) -> u64 {
        self.ignored.with_label_values(&[reason]).get()
    }
}
