//! Verifies the platform's access tokens in-process and still honours
//! revocation within about a second, by following the Auth Service's
//! security-event feed (OpenID Shared Signals: CAEP and RISC events as signed
//! Security Event Tokens). Fails closed when the feed falls silent.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use identity_verifier::{Config, Verifier};
//! let config = Config::new(
//!     "http://127.0.0.1:50051",           // the Auth Service's gRPC URL
//!     "sa-my-service",                    // a service account holding `identity-service`
//!     secrecy::SecretString::from("…"),   // its client secret
//!     "identity-auth",                    // AUTH_ISSUER
//!     "identity-platform",                // AUTH_AUDIENCE
//! );
//! let verifier = Verifier::connect(config).await?; // caught up with the feed
//! let claims = verifier.verify("eyJ…")?;          // synchronous, no I/O
//! if claims.allows("users:read") { /* … */ }
//! # Ok(()) }
//! ```
//!
//! # What `verify` checks
//! 1. The token: at most [`MAX_TOKEN_LEN`] bytes, ES256 only, a `kid` in the
//!    JWKS (an unknown one is refused and triggers one rate-limited
//!    background refetch; keys leave only when the JWKS stops listing them,
//!    so rotation overlap is honoured), the signature, `iss`, `aud`, then
//!    `exp`/`nbf`/`iat` against the injected clock with a 5 s leeway. All but
//!    the time checks are cached per token (a bounded cache like the Auth
//!    Service's own).
//! 2. The feed is current: caught up (a heartbeat came after the backlog),
//!    heard from within `max_staleness` (default 10 s), no resynchronisation
//!    pending. Otherwise [`Rejection::Stale`] (or, with `fallback`,
//!    [`Verifier::verify_or_fallback`] asks `ValidateToken`).
//! 3. What the feed said, with `event_time` rounded down to the second and
//!    tokens whose `iat` is *at or before* it affected (failing closed within
//!    the same second):
//!    - CAEP `session-revoked`: tokens of that `sid` → [`Rejection::Revoked`].
//!    - RISC `account-disabled` / `account-purged`: tokens of that subject →
//!      [`Rejection::Disabled`]. `account-enabled` changes nothing: the
//!      disable floor only ever hits tokens issued before it.
//!    - CAEP `credential-change`, and `token-claims-change` about a user or
//!      service account: tokens of that subject → [`Rejection::Refresh`] (the
//!      roles they carry are no longer trusted; the client refreshes and gets
//!      a token with the current roles, rather than this crate re-reading them).
//!    - `token-claims-change` about a role: the role table takes the role's
//!      new permissions (none: deleted), and tokens carrying that role →
//!      [`Rejection::Refresh`].
//!    - A cursor the Auth Service no longer keeps (`OUT_OF_RANGE`): restart
//!      from the oldest event kept; every token issued before →
//!      [`Rejection::Refresh`].
//!
//!    Entries are forgotten once older than `retention` (the longest token
//!    lifetime plus leeway, default 16 min): the tokens they refuse have
//!    expired.
//! 4. [`Claims::permissions`] come from the role table (loaded with
//!    `ListRoles` at start, then kept current by role events).
//!
//! # The feed
//! `SubscribeSecurityEvents` with the service account's token (client
//! credentials; it needs `events:subscribe` and `roles:read`, both in the
//! `identity-service` role). Every event's SET is verified with the JWKS
//! (`typ` `secevent+jwt`, ES256, `iss`, `aud` = our client id, its `events`
//! and `sub_id` naming the message's type, subject and session) before it is
//! applied; one that does not verify is ignored, logged and counted
//! (`identity_verifier_events_ignored_total`). A lost stream is reopened with
//! backoff (100 ms doubling to 5 s) from the last cursor, on any replica.
//!
//! # Metrics
//! In `config.registry`: `identity_verifier_events_applied_total{event_type}`,
//! `identity_verifier_events_ignored_total{reason}`,
//! `identity_verifier_rejections_total{reason}`,
//! `identity_verifier_feed_staleness_seconds`, `identity_verifier_revocations`,
//! `identity_verifier_ready`.

mod cache;
mod claims;
mod config;
mod credentials;
mod event;
mod feed;
mod keys;
mod layer;
mod metrics;
mod rejection;
mod remote;
mod state;
mod token;
mod verifier;

#[cfg(test)]
mod tests;

pub use cache::DEFAULT_CAPACITY;
pub use claims::{ALL_PERMISSIONS, Claims};
pub use config::{Config, ConnectError, DEFAULT_MAX_STALENESS, DEFAULT_RETENTION};
pub use event::EventType;
pub use keys::KeyError;
pub use layer::{VerifyInterceptor, VerifyLayer, VerifyService};
pub use rejection::Rejection;
pub use token::{LEEWAY_SECS, MAX_TOKEN_LEN};
pub use verifier::Verifier;
