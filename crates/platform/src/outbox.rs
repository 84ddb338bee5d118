//! The transactional outbox both services use to tell each other about changes
//! without a distributed transaction: a change and its event are written in one
//! local transaction; a relay delivers due events with retries and exponential
//! backoff; receivers are idempotent, so a redelivery after a crash or a retry
//! changes nothing. Several replicas may relay: an event is leased before delivery.

mod store;

pub use store::SqlOutbox;

use crate::clock::SharedClock;
use crate::db::Database;
use chrono::{DateTime, Duration, Utc};
use futures::future::BoxFuture;
use prometheus::{IntCounter, IntGauge, Registry};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long a claimed event is reserved for one relay: longer than a delivery may
/// take ([`DELIVERY_TIMEOUT`]), short because a relay killed mid-delivery leaves
/// its events leased until then.
const LEASE: Duration = Duration::seconds(10);
/// The longest a receiver may take to answer one delivery.
pub const DELIVERY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::seconds(60);
/// Events claimed per round.
const BATCH: i64 = 64;
/// Deliveries in flight at once (each its own aggregate).
const IN_FLIGHT: usize = 16;

/// The topic prefix of notifications to people, whose payload may hold a
/// one-time token: their payload is scrubbed once delivered.
pub const SECRET_TOPICS: &str = "identity.";

/// One event to deliver.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxEvent {
    /// The event id: receivers use it (with the aggregate id) to stay idempotent.
    pub id: Uuid,
    /// What happened, e.g. `user.registered`.
    pub topic: String,
    /// Whom it happened to (the user id).
    pub aggregate_id: Uuid,
    /// The event body, JSON.
    pub payload: String,
    /// When it was recorded.
    #[sqlx(try_from = "crate::sql::Timestamp")]
    pub created_at: DateTime<Utc>,
    /// Failed deliveries so far.
    pub attempts: i32,
}

impl OutboxEvent {
    /// A new event, recorded now.
    pub fn new(topic: &str, aggregate_id: Uuid, payload: String, now: DateTime<Utc>) -> Self {
        Self {
            id: crate::clock::time_ordered_id(),
            topic: topic.to_owned(),
            aggregate_id,
            payload,
            created_at: now,
            attempts: 0,
        }
    }
}

/// Why one delivery attempt failed; every kind is retried with backoff.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("unknown topic {0:?}")]
    UnknownTopic(String),
    #[error("bad payload: {0}")]
    BadPayload(#[from] serde_json::Error),
    #[error("not configured: {0}")]
    NotConfigured(&'static str),
    #[error(transparent)]
    Token(#[from] crate::access::TokenError),
    #[error("the receiver answered {:?}: {}", .0.code(), .0.message())]
    Receiver(#[from] tonic::Status),
    #[error("the receiver answered HTTP {0}")]
    HttpStatus(u16),
    #[error("could not reach the receiver: {0}")]
    Unreachable(String),
}

/// Delivered events are kept this long for inspection, then pruned.
pub const DELIVERED_KEPT: Duration = Duration::days(1);

/// Deletes the events delivered more than [`DELIVERED_KEPT`] before `now`, in
/// batches; undelivered events are never touched.
pub async fn prune_delivered(db: &Database, now: DateTime<Utc>) -> Result<u64, sqlx::Error> {
    let before = now - DELIVERED_KEPT;
    crate::tasks::in_batches(|n| async move {
        crate::sql!(write(db), SqlOutbox::prune_delivered(before, n))
    })
    .await
}

/// Delivers one event to its receiver.
pub trait Deliver: Send + Sync + 'static {
    /// `Ok` once the receiver has applied (or had already applied) the event.
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> BoxFuture<'a, Result<(), DeliveryError>>;
}

/// The relay's metrics.
#[derive(Clone, Debug)]
pub struct RelayMetrics {
    backlog: IntGauge,
    delivered: IntCounter,
    failures: IntCounter,
}

impl RelayMetrics {
    /// Registers `outbox_backlog`, `outbox_delivered_total` and
    /// `outbox_delivery_failures_total` in `registry`.
    pub fn new(registry: &Registry) -> prometheus::Result<Self> {
        let backlog = IntGauge::new(
            "outbox_backlog",
            "Outbox events not yet delivered (counted up to 10,000)",
        )?;
        let delivered = IntCounter::new("outbox_delivered_total", "Outbox events delivered")?;
        let failures = IntCounter::new(
            "outbox_delivery_failures_total",
            "Failed outbox delivery attempts",
        )?;
        registry.register(Box::new(backlog.clone()))?;
        registry.register(Box::new(delivered.clone()))?;
        registry.register(Box::new(failures.clone()))?;
        Ok(Self {
            backlog,
            delivered,
            failures,
        })
    }
}

/// Exponential backoff after `attempts` failures: 0.5 s, 1 s, 2 s, ... capped at a
/// minute, with up to 25 % jitter so that replicas do not retry in step.
pub fn backoff(attempts: i32) -> Duration {
    let exp = attempts.clamp(0, 16) as u32;
    let base = Duration::milliseconds(500 * (1i64 << exp)).min(MAX_BACKOFF);
    let jitter_ms = base.num_milliseconds() / 4;
    let jitter = if jitter_ms > 0 {
        Duration::milliseconds((Uuid::new_v4().as_u128() % jitter_ms as u128) as i64)
    } else {
        Duration::zero()
    };
    base + jitter
}

/// A relay: delivers due events until `shutdown`, woken early by `wake`.
#[derive(Clone)]
pub struct Relay {
    /// The database whose outbox it delivers.
    pub db: Database,
    /// The receiver.
    pub deliver: Arc<dyn Deliver>,
    /// Time source.
    pub clock: SharedClock,
    /// Notified when an event is written, so delivery need not wait for the poll.
    pub wake: Arc<Notify>,
    /// How often to look for due events when not woken.
    pub poll: std::time::Duration,
    /// Metrics.
    pub metrics: RelayMetrics,
}

impl Relay {
    /// Runs until `shutdown`. An event being delivered when shutdown comes is
    /// finished first; one interrupted by a crash is redelivered after its lease.
    pub async fn run(self, shutdown: CancellationToken) {
        loop {
            let delivered_any = match self.round().await {
                Ok(n) => n > 0,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay round failed; retrying");
                    false
                }
            };
            if let Ok(n) = crate::sql!(read(&self.db), SqlOutbox::backlog()) {
                self.metrics.backlog.set(n);
            }
            if delivered_any {
                if shutdown.is_cancelled() {
                    return;
                }
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    /// One round: claim due events and try each; returns how many were
    /// delivered. One aggregate's events go one after another, in the order
    /// they were written; different aggregates' go side by side, so a bulk
    /// import's million profiles are not delivered one round trip at a time.
    pub async fn round(&self) -> Result<usize, sqlx::Error> {
        use futures::{StreamExt as _, TryStreamExt as _};
        let now = self.clock.now();
        let lease = now + LEASE;
        let events = crate::sql!(write(&self.db), SqlOutbox::claim_due(now, lease, BATCH))?;
        let mut groups: Vec<Vec<OutboxEvent>> = Vec::new();
        let mut group_of = std::collections::HashMap::new();
        for event in events {
            let i = *group_of.entry(event.aggregate_id).or_insert_with(|| {
                groups.push(Vec::new());
                groups.len() - 1
            });
            groups[i].push(event);
        }
        futures::stream::iter(groups)
            .map(|group| self.deliver_in_order(group))
            .buffer_unordered(IN_FLIGHT)
            .try_fold(0, |total, n| async move { Ok(total + n) })
            .await
    }

    /// Tries one aggregate's events in turn; how many were delivered.
    async fn deliver_in_order(&self, events: Vec<OutboxEvent>) -> Result<usize, sqlx::Error> {
        let mut delivered = 0;
        for event in events {
            match self.deliver.deliver(&event).await {
                Ok(()) => {
                    let now = self.clock.now();
                    crate::sql!(read(&self.db), SqlOutbox::mark_delivered(event.id, now))?;
                    self.metrics.delivered.inc();
                    delivered += 1;
                }
                Err(error) => {
                    self.metrics.failures.inc();
                    let next = self.clock.now() + backoff(event.attempts);
                    tracing::warn!(
                        event_id = %event.id, topic = %event.topic, attempts = event.attempts + 1,
                        %error, retry_at = %next, "outbox delivery failed"
                    );
                    let error = error.to_string();
                    crate::sql!(
                        read(&self.db),
                        SqlOutbox::mark_failed(event.id, next, &error)
                    )?;
                }
            }
        }
        Ok(delivered)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(
            backoff(0) >= Duration::milliseconds(500) && backoff(0) < Duration::milliseconds(626)
        );
        assert!(backoff(3) >= Duration::seconds(4));
        assert!(backoff(100) <= MAX_BACKOFF + MAX_BACKOFF / 4);
        assert!(backoff(100) >= MAX_BACKOFF);
    }
}
