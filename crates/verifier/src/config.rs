//! What a [`crate::Verifier`] needs: where the Auth Service is, the service
//! account it subscribes with, what tokens must say, and its bounds.

use platform::clock::{SharedClock, SystemClock};
use prometheus::Registry;
use secrecy::SecretString;
use std::sync::Arc;
use std::time::Duration;

/// Default bound on how old the view of revocations may be before `verify`
/// answers [`crate::Rejection::Stale`].
pub const DEFAULT_MAX_STALENESS: Duration = Duration::from_secs(10);
/// Default time an entry is remembered: the Auth Service's default
/// access-token lifetime (15 min) plus a minute of leeway.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(16 * 60);

/// A verifier's configuration. Build it with [`Config::new`] and adjust the
/// public fields.
#[derive(Clone)]
pub struct Config {
    /// The Auth Service's gRPC URL, e.g. `http://127.0.0.1:50051`.
    pub auth_url: String,
    /// TLS towards the Auth Service, if it serves TLS.
    pub tls: Option<tonic::transport::ClientTlsConfig>,
    /// The service account's client id (it needs `events:subscribe` and
    /// `roles:read`: the `identity-service` role). SETs must name it as `aud`.
    pub client_id: String,
    /// The service account's client secret.
    pub client_secret: SecretString,
    /// The `iss` tokens and SETs must carry (the Auth Service's `AUTH_ISSUER`).
    pub issuer: String,
    /// The `aud` tokens must carry (the Auth Service's `AUTH_AUDIENCE`).
    pub audience: String,
    /// How old the view of revocations may be (no event, no heartbeat)
    /// before every token is refused as stale. Default 10 s; keep it well
    /// above the Auth Service's `AUTH_EVENTS_HEARTBEAT` (2 s), or a quiet
    /// but healthy feed turns stale between heartbeats.
    pub max_staleness: Duration,
    /// How long a revocation is remembered: the longest access-token
    /// lifetime plus leeway. Default 16 min.
    pub retention: Duration,
    /// How often the JWKS is fetched again. Default 5 min.
    pub jwks_refresh: Duration,
    /// An unknown `kid` triggers at most one refetch per this. Default 10 s.
    pub min_refetch_interval: Duration,
    /// Verified tokens remembered. Default 131,072 (as the Auth Service).
    pub cache_capacity: usize,
    /// Whether [`crate::Verifier::verify_or_fallback`] (and the layer) ask
    /// `ValidateToken` while the feed is stale. Default off.
    pub fallback: bool,
    /// How long [`crate::Verifier::connect`] waits for the feed to catch up.
    /// Default 30 s.
    pub connect_timeout: Duration,
    /// The wall clock tokens' times are compared with.
    pub clock: SharedClock,
    /// Where the metrics go (the service's registry); none: unregistered.
    pub registry: Option<Registry>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("auth_url", &self.auth_url)
            .field("client_id", &self.client_id)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("max_staleness", &self.max_staleness)
            .field("retention", &self.retention)
            .field("fallback", &self.fallback)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// The defaults, for the Auth Service at `auth_url`, the service account
    /// `client_id`, and tokens from `issuer` for `audience`.
    pub fn new(
        auth_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: SecretString,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> Self {
        Self {
            auth_url: auth_url.into(),
            tls: None,
            client_id: client_id.into(),
            client_secret,
            issuer: issuer.into(),
            audience: audience.into(),
            max_staleness: DEFAULT_MAX_STALENESS,
            retention: DEFAULT_RETENTION,
            jwks_refresh: Duration::from_secs(300),
            min_refetch_interval: Duration::from_secs(10),
            cache_capacity: crate::cache::DEFAULT_CAPACITY,
            fallback: false,
            connect_timeout: Duration::from_secs(30),
            clock: Arc::new(SystemClock),
            registry: None,
        }
    }
}

/// Why a verifier could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// The client id could never be accepted.
    #[error("invalid client id")]
    ClientId,
    /// The Auth Service URL or TLS settings are unusable.
    #[error("cannot reach the Auth Service: {0}")]
    Endpoint(#[from] tonic::transport::Error),
    /// The metrics could not be registered (registered twice?).
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The feed did not catch up in time; the last failure says why.
    #[error("the security-event feed did not catch up within {within:?}: {last}")]
    NotReady { within: Duration, last: String },
}
