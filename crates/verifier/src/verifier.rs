//! [`Verifier`]: the synchronous hot path (`verify`) over the state the
//! background feed keeps, and the optional `ValidateToken` fallback.

use crate::cache::VerifiedTokens;
use crate::claims::Claims;
use crate::config::{Config, ConnectError};
use crate::event::{Change, Event, SetError, SetRules};
use crate::feed::Feed;
use crate::keys::KeyStore;
use crate::metrics::VerifierMetrics;
use crate::rejection::Rejection;
use crate::state::FeedState;
use crate::token::{TokenRules, check_time};
use identity_proto::auth::v1::SubscribeSecurityEventsResponse as SecurityEvent;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use platform::clock::{SharedClock, monotonic_now};
use platform::tasks::Supervisor;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// What `verify` reads and the feed writes.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) rules: TokenRules,
    pub(crate) sets: SetRules,
    pub(crate) keys: KeyStore,
    pub(crate) cache: VerifiedTokens,
    pub(crate) state: FeedState,
    pub(crate) metrics: VerifierMetrics,
    pub(crate) clock: SharedClock,
    pub(crate) max_staleness: Duration,
    pub(crate) retention: Duration,
    /// The monotonic clock staleness is measured with (a test moves it).
    pub(crate) monotonic: Monotonic,
    /// Why the feed last failed, for [`ConnectError::NotReady`] and logs.
    pub(crate) last_error: parking_lot::Mutex<Option<String>>,
}

/// The monotonic "now": `platform::clock::monotonic_now`, or a test's.
#[derive(Clone)]
pub(crate) struct Monotonic(pub(crate) Arc<dyn Fn() -> tokio::time::Instant + Send + Sync>);

impl Monotonic {
    pub(crate) fn now(&self) -> tokio::time::Instant {
        (self.0)()
    }
}

impl std::fmt::Debug for Monotonic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Monotonic")
    }
}

/// What a feed message did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Handled {
    Heartbeat,
    Applied(Event),
    Ignored(SetError),
}

impl Shared {
    pub(crate) fn new(config: &Config) -> Result<Self, ConnectError> {
        Ok(Self {
            rules: TokenRules::new(&config.issuer, &config.audience),
            sets: SetRules::new(&config.issuer, &config.client_id),
            keys: KeyStore::new(config.min_refetch_interval),
            cache: VerifiedTokens::with_capacity(config.cache_capacity),
            state: FeedState::default(),
            metrics: VerifierMetrics::new(config.registry.as_ref())?,
            clock: config.clock.clone(),
            max_staleness: config.max_staleness,
            retention: config.retention,
            monotonic: Monotonic(Arc::new(monotonic_now)),
            last_error: parking_lot::Mutex::new(None),
        })
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    pub(crate) fn verify(&self, token: &str) -> Result<Claims, Rejection> {
        let now = self.now();
        let (claims, _kid) = match self.cache.get(token) {
            // A cached token whose key left the JWKS is verified again (and refused).
            Some(v) if self.keys.contains(&v.1) => v,
            _ => {
                let v = self.rules.decode(&self.keys, token)?;
                self.cache.insert(token, v.clone(), now);
                v
            }
        };
        check_time(&claims, now)?;
        if !self.fresh() {
            return Err(Rejection::Stale);
        }
        let permissions = self.state.check(&claims)?;
        Ok(Claims::of(&claims, permissions))
    }

    pub(crate) fn fresh(&self) -> bool {
        self.keys.loaded() && self.state.fresh(self.monotonic.now(), self.max_staleness)
    }

    /// Verifies and applies one feed message (the cursor is the caller's).
    pub(crate) fn handle(&self, msg: &SecurityEvent) -> Handled {
        if msg.heartbeat {
            self.state.heartbeat(self.monotonic.now());
            return Handled::Heartbeat;
        }
        match self.sets.event(&self.keys, msg) {
            Ok(event) => {
                self.state.apply(&event);
                self.state.received(self.monotonic.now());
                self.metrics.applied(event.kind);
                Handled::Applied(event)
            }
            Err(e) => Handled::Ignored(e),
        }
    }

    /// Records an ignored message (after any retry).
    pub(crate) fn ignore(&self, msg: &SecurityEvent, e: &SetError) {
        tracing::warn!(
            event_type = %msg.event_type,
            cursor = %msg.cursor,
            error = %e,
            "security event ignored: its SET does not verify"
        );
        self.metrics.ignored(e.label());
        // The stream is alive even if this message is useless.
        self.state.received(self.monotonic.now());
    }

    /// Refreshes the gauges and forgets old entries.
    pub(crate) fn housekeeping(&self) {
        let live = self.state.prune(self.now(), self.retention);
        self.metrics
            .revocations
            .set(i64::try_from(live).unwrap_or(i64::MAX));
        let staleness = self
            .state
            .staleness(self.monotonic.now())
            .map_or(f64::INFINITY, |d| d.as_secs_f64());
        self.metrics.staleness.set(staleness);
        self.metrics.ready.set(i64::from(self.fresh()));
    }
}

/// Cancels the background tasks when the last clone of a verifier that
/// started its own is dropped.
#[derive(Debug)]
struct Owned(CancellationToken);

impl Drop for Owned {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// Verifies access tokens in-process and follows the Auth Service's
/// security-event feed; cheap to clone (all clones share one state).
///
/// See the crate documentation for the rules.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub(crate) shared: Arc<Shared>,
    fallback: Option<AuthServiceClient<Channel>>,
    _owned: Option<Arc<Owned>>,
}

impl Verifier {
    /// Starts a verifier with its own background tasks and waits until its
    /// feed has caught up (or `config.connect_timeout` passed). The tasks
    /// stop when the last clone is dropped.
    pub async fn connect(config: Config) -> Result<Self, ConnectError> {
        let stop = CancellationToken::new();
        let mut tasks = Supervisor::new(stop.clone());
        let within = config.connect_timeout;
        let mut verifier = Self::start(config, &mut tasks)?;
        verifier._owned = Some(Arc::new(Owned(stop)));
        if !verifier.wait_ready(within).await {
            let last = verifier
                .last_failure()
                .unwrap_or_else(|| "no heartbeat yet".to_owned());
            return Err(ConnectError::NotReady { within, last });
        }
        Ok(verifier)
    }

    /// Starts a verifier whose background tasks (`token verifier feed`,
    /// `token verifier keys`, `token verifier housekeeping`) run in `tasks`
    /// and stop with it. Returns at once: `verify` answers
    /// [`Rejection::Stale`] until the feed has caught up, so a service may
    /// start before the Auth Service does.
    pub fn start(config: Config, tasks: &mut Supervisor) -> Result<Self, ConnectError> {
        platform::ids::ClientId::try_from(config.client_id.as_str())
            .map_err(|_| ConnectError::ClientId)?;
        let shared = Arc::new(Shared::new(&config)?);
        let feed = Arc::new(Feed::new(shared.clone(), &config)?);
        let fallback = config.fallback.then(|| feed.client());
        feed.spawn(tasks);
        Ok(Self {
            shared,
            fallback,
            _owned: None,
        })
    }

    /// Verifies `token` (without `Bearer `): signature, issuer, audience,
    /// time, then what the feed said about its session, subject and roles.
    /// Synchronous, no I/O: a hash lookup for a token seen before, an ECDSA
    /// verification (~40 µs) otherwise.
    pub fn verify(&self, token: &str) -> Result<Claims, Rejection> {
        let verdict = self.shared.verify(token);
        if let Err(r) = verdict {
            self.shared.metrics.rejected(r);
        }
        verdict
    }

    /// Like [`Verifier::verify`]; while the feed is stale (and
    /// `config.fallback` is on) asks the Auth Service's `ValidateToken`
    /// instead. An unreachable Auth Service still answers
    /// [`Rejection::Stale`].
    pub async fn verify_or_fallback(&self, token: &str) -> Result<Claims, Rejection> {
        match (self.verify(token), &self.fallback) {
            (Err(Rejection::Stale), Some(client)) => crate::remote::validate(client, token).await,
            (verdict, _) => verdict,
        }
    }

    /// Whether `verify` currently vouches for tokens (the feed is current).
    pub fn is_ready(&self) -> bool {
        self.shared.fresh()
    }

    /// Waits up to `within` for the feed to be current.
    pub async fn wait_ready(&self, within: Duration) -> bool {
        let deadline = monotonic_now() + within;
        loop {
            if self.is_ready() {
                return true;
            }
            if monotonic_now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Live revocation entries (sessions, subjects, roles).
    pub fn live_revocations(&self) -> usize {
        self.shared.state.live_entries()
    }

    fn last_failure(&self) -> Option<String> {
        self.shared.last_error.lock().clone()
    }
}

/// Whether an applied event leaves the role table to be reloaded.
pub(crate) fn needs_roles(event: &Event) -> bool {
    matches!(
        event.change,
        Change::Role {
            permissions: None,
            ..
        }
    )
}

#[cfg(test)]
impl Verifier {
    /// A verifier with no feed: the tests drive its state by hand.
    pub(crate) fn offline(shared: Arc<Shared>) -> Self {
        Self {
            shared,
            fallback: None,
            _owned: None,
        }
    }
}
