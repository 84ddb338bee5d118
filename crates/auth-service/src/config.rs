//! The Auth Service's configuration: the flags every service has
//! ([`ServerFlags`]) and its own; every flag is also an environment variable,
//! validated once at start.

use axum::http::HeaderName;
use clap::{Args, Parser, Subcommand};
use platform::server::{ServerFlags, Service};
use secrecy::SecretString;
use std::str::FromStr;
use std::time::Duration;

/// The platform's Auth Service: registration, login, JWT issue and validation.
#[derive(Debug, Parser)]
#[command(name = "auth-service", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// What to do; `serve` when none is given.
#[derive(Debug, Clone, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// `serve` (the default) and `migrate`, as every service has.
    #[command(flatten)]
    Server(platform::server::Command),
    /// Start signing with the next key now (published keys keep verifying).
    RotateKeys,
    /// Create an administrator. The password is read from AUTH_ADMIN_PASSWORD,
    /// or from the first line of standard input.
    CreateAdmin {
        /// The administrator's email.
        #[arg(long)]
        email: String,
        /// If the email is already registered, make that account the
        /// administrator: its password is reset to the given one and every
        /// session it had ends. Without it, a taken email is refused.
        #[arg(long)]
        promote: bool,
        /// The display name of a new administrator.
        #[arg(long, default_value = "Administrator")]
        display_name: String,
    },
    /// Import users from another system: one JSON object per line (`email`,
    /// `password_hash`, `email_verified`, `roles`, `display_name`, `username`,
    /// `created_at`, `external_id`). Lines that cannot be imported are reported
    /// on standard error and skipped; a re-run skips what was imported before.
    Import {
        /// The file to read, or `-` for standard input.
        file: String,
    },
    /// Run one pruning pass now (what the service does every 15 minutes) and
    /// print as JSON how long it took and how many rows of each kind went.
    Prune,
    /// Create a service account and print its client id and secret as JSON.
    CreateServiceAccount {
        /// The account's name, e.g. `user-service`.
        #[arg(long)]
        name: String,
        /// A role to give it (repeatable); e.g. `identity-service`.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
}

/// The Auth Service in the shared flags: `AUTH_GRPC_ADDR`, `AUTH_HTTP_ADDR`,
/// `AUTH_DATABASE_URL`, `AUTH_TLS_CERT`, `AUTH_TLS_KEY`, `AUTH_TLS_CLIENT_CA`,
/// `AUTH_TLS_CA` and `AUTH_LOG_FORMAT`.
#[derive(Debug, Clone)]
pub struct AuthService;

impl Service for AuthService {
    const NAME: &'static str = "auth-service";
    const METRICS_LABEL: &'static str = "auth";
    const ENV_PREFIX: &'static str = "AUTH";
    const GRPC_ADDR: &'static str = "127.0.0.1:50051";
    const HTTP_ADDR: &'static str = "127.0.0.1:8081";
    const DATABASE_URL: &'static str = "sqlite:./data/auth.db";
    const HTTP_ROUTES: &'static str = "/healthz, /readyz, /metrics, /.well-known/jwks.json, /.well-known/ssf-configuration, /ssf/poll";
    const PEER: &'static str = "User Service";
}

/// Settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerFlags<AuthService>,

    /// The `iss` claim of issued tokens.
    #[arg(
        long,
        env = "AUTH_ISSUER",
        default_value = "identity-auth",
        global = true
    )]
    pub issuer: String,

    /// The `aud` claim of issued tokens, and the only audience accepted.
    #[arg(
        long,
        env = "AUTH_AUDIENCE",
        default_value = "identity-platform",
        global = true
    )]
    pub audience: String,

    /// Access-token lifetime (e.g. `15m`).
    #[arg(long, env = "AUTH_ACCESS_TOKEN_TTL", default_value = "15m", value_parser = humantime::parse_duration, global = true)]
    pub access_token_ttl: Duration,

    /// Refresh-token lifetime (each refresh starts a new one).
    #[arg(long, env = "AUTH_REFRESH_TOKEN_TTL", default_value = "30d", value_parser = humantime::parse_duration, global = true)]
    pub refresh_token_ttl: Duration,

    /// A session ends this long after its login, however often it is refreshed
    /// (refresh tokens still rotate within it).
    #[arg(long, env = "AUTH_SESSION_MAX_LIFETIME", default_value = "30d", value_parser = humantime::parse_duration, global = true)]
    pub session_max_lifetime: Duration,

    /// Registrations one client address may make per minute (each costs an
    /// Argon2 hash, like a login).
    #[arg(
        long,
        env = "AUTH_REGISTRATIONS_PER_MINUTE",
        default_value_t = 20,
        global = true
    )]
    pub registrations_per_minute: u32,

    /// Where notifications to people go (email verification, password reset,
    /// security notices): one signed CloudEvents POST per event (Standard
    /// Webhooks). Without it (and without `--smtp-url`) none are sent.
    #[arg(long, env = "AUTH_NOTIFY_URL", global = true)]
    pub notify_url: Option<String>,

    /// The `whsec_...` secret notifications are signed with (required with
    /// `--notify-url`).
    #[arg(
        long,
        env = "AUTH_NOTIFY_SECRET",
        global = true,
        hide_env_values = true
    )]
    pub notify_secret: Option<String>,

    /// Send notifications as plain-text mail through this SMTP relay
    /// (`smtp://[user:pass@]host:port`), besides or instead of the webhook.
    #[arg(long, env = "AUTH_SMTP_URL", global = true, hide_env_values = true)]
    pub smtp_url: Option<String>,

    /// The sender of notification mail.
    #[arg(
        long,
        env = "AUTH_SMTP_FROM",
        default_value = "no-reply@localhost",
        global = true
    )]
    pub smtp_from: String,

    /// The platform's front end, for links in notifications.
    #[arg(long, env = "AUTH_PUBLIC_URL", global = true)]
    pub public_url: Option<String>,

    /// How long an email verification token lives.
    #[arg(long, env = "AUTH_EMAIL_VERIFICATION_TTL", default_value = "24h", value_parser = humantime::parse_duration, global = true)]
    pub email_verification_ttl: Duration,

    /// How long a password reset token lives.
    #[arg(long, env = "AUTH_PASSWORD_RESET_TTL", default_value = "30m", value_parser = humantime::parse_duration, global = true)]
    pub password_reset_ttl: Duration,

    /// How long a login may take to answer its second-factor challenge.
    #[arg(long, env = "AUTH_MFA_CHALLENGE_TTL", default_value = "5m", value_parser = humantime::parse_duration, global = true)]
    pub mfa_challenge_ttl: Duration,

    /// Refuse logins (FAILED_PRECONDITION) until the email address is verified.
    #[arg(long, env = "AUTH_REQUIRE_VERIFIED_EMAIL", global = true)]
    pub require_verified_email: bool,

    /// Remove the `authorization` header from requests a gateway forwards
    /// after Envoy ext_authz allowed them (kept by default).
    #[arg(long, env = "AUTH_GATEWAY_STRIP_AUTHORIZATION", global = true)]
    pub gateway_strip_authorization: bool,

    /// The one header forward auth reads the original request target
    /// (`/path?query`) from; no other is ever read, and a request without it
    /// (or with it twice, or holding a target that is not in normal form) is
    /// refused. Traefik and Caddy send `X-Forwarded-Uri`; deploy/nginx sets it.
    #[arg(
        long,
        env = "AUTH_FORWARD_URI_HEADER",
        default_value = "x-forwarded-uri",
        value_parser = HeaderName::from_str,
        global = true
    )]
    pub forward_uri_header: HeaderName,

    /// The public base URL of the HTTP port, for the absolute URLs of OpenID
    /// discovery (default: the address it listens on).
    #[arg(long, env = "AUTH_PUBLIC_HTTP_URL", global = true)]
    pub public_http_url: Option<String>,

    /// Access tokens whose signature check is remembered (about 300 bytes each):
    /// size it to the tokens live at once, or a share of calls pays a full
    /// ECDSA verification.
    #[arg(long, env = "AUTH_VERIFIED_TOKEN_CACHE", default_value_t = crate::crypto::verified::DEFAULT_CAPACITY, global = true)]
    pub verified_token_cache: usize,

    /// How long audit events are kept before pruning deletes them.
    #[arg(long, env = "AUTH_AUDIT_RETENTION", default_value = "365d", value_parser = humantime::parse_duration, global = true)]
    pub audit_retention: Duration,

    /// How far back the security-event feed serves (SubscribeSecurityEvents,
    /// SSF poll); at least the access-token lifetime plus a minute, so that a
    /// verifier starting up learns every revocation that still matters.
    #[arg(long, env = "AUTH_EVENTS_RETENTION", default_value = "1h", value_parser = humantime::parse_duration, global = true)]
    pub events_retention: Duration,

    /// How long a feed subscriber may go without a message before it gets a
    /// heartbeat (its verifier tells "nothing happened" from "the feed is dead").
    #[arg(long, env = "AUTH_EVENTS_HEARTBEAT", default_value = "2s", value_parser = humantime::parse_duration, global = true)]
    pub events_heartbeat: Duration,

    /// Feed subscriptions one replica serves at once (each costs a query per
    /// batch of new events and a signature per event); more are UNAVAILABLE.
    #[arg(
        long,
        env = "AUTH_EVENTS_MAX_SUBSCRIBERS",
        default_value_t = 256,
        global = true
    )]
    pub events_max_subscribers: usize,

    /// How long an SSF poll (RFC 8936) with nothing to deliver waits for an
    /// event before it answers empty (`returnImmediately: false`); keep it
    /// under the receivers' and proxies' HTTP timeouts.
    #[arg(long, env = "AUTH_EVENTS_LONG_POLL", default_value = "25s", value_parser = humantime::parse_duration, global = true)]
    pub events_long_poll: Duration,

    /// How often each replica looks for security events other replicas wrote.
    #[arg(long, env = "AUTH_EVENTS_POLL", default_value = "50ms", value_parser = humantime::parse_duration, global = true)]
    pub events_poll: Duration,

    /// How long a signing key signs before the next one takes over.
    #[arg(long, env = "AUTH_KEY_ROTATION_INTERVAL", default_value = "30d", value_parser = humantime::parse_duration, global = true)]
    pub key_rotation_interval: Duration,

    /// Base64 of 32 random bytes; when set, private signing keys are sealed at rest
    /// with AES-256-GCM (generate one with `openssl rand -base64 32`).
    #[arg(
        long,
        env = "AUTH_KEY_ENCRYPTION_KEY",
        hide_env_values = true,
        global = true
    )]
    pub key_encryption_key: Option<SecretString>,

    /// Concurrent Argon2id hashes (each holds 19 MiB); default: one per core.
    #[arg(long, env = "AUTH_HASH_WORKERS", global = true)]
    pub hash_workers: Option<usize>,

    /// Hashes allowed to wait for a worker before logins get RESOURCE_EXHAUSTED.
    #[arg(long, env = "AUTH_HASH_QUEUE", default_value_t = 256, global = true)]
    pub hash_queue: usize,

    /// How often each replica loads revoked sessions and keys from the database.
    #[arg(long, env = "AUTH_SYNC_INTERVAL", default_value = "250ms", value_parser = humantime::parse_duration, global = true)]
    pub sync_interval: Duration,

    /// How stale this replica's view of revocations and role changes may grow
    /// (its polls failing, say while the database is down) before ValidateToken
    /// and CheckPermission fail closed with UNAVAILABLE and /readyz turns 503.
    #[arg(long, env = "AUTH_MAX_SYNC_AGE", default_value = "30s", value_parser = humantime::parse_duration, global = true)]
    pub max_sync_age: Duration,

    /// The User Service's gRPC URL: registrations become profiles there.
    #[arg(
        long,
        env = "AUTH_USER_URL",
        default_value = "http://127.0.0.1:50052",
        global = true
    )]
    pub user_url: String,

    /// Comma-separated addresses or CIDR networks of trusted proxies (the API
    /// Gateway): only from them are `x-forwarded-for` and
    /// `x-forwarded-user-agent` believed.
    #[arg(long, env = "AUTH_TRUSTED_PROXIES", default_value = "", global = true)]
    pub trusted_proxies: String,
}

impl Settings {
    /// Whether any notification sink is configured.
    pub fn sends_notifications(&self) -> bool {
        self.notify_url.is_some() || self.smtp_url.is_some()
    }

    /// Checks what clap cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let ttl = self.access_token_ttl;
        if ttl < Duration::from_secs(30) || ttl > Duration::from_secs(24 * 3600) {
            return Err(ConfigError::AccessTokenTtl);
        }
        if self.refresh_token_ttl <= self.access_token_ttl {
            return Err(ConfigError::RefreshTokenTtl);
        }
        if self.key_rotation_interval < Duration::from_secs(1) {
            return Err(ConfigError::KeyRotation);
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err(ConfigError::EmptyIssuer);
        }
        if self.max_sync_age < self.sync_interval * 2 {
            return Err(ConfigError::MaxSyncAge);
        }
        if self.hash_workers == Some(0) {
            return Err(ConfigError::HashWorkers);
        }
        if self.session_max_lifetime < self.access_token_ttl {
            return Err(ConfigError::SessionLifetime);
        }
        if self.audit_retention < Duration::from_secs(24 * 3600) {
            return Err(ConfigError::AuditRetention);
        }
        if self.events_retention < self.access_token_ttl + Duration::from_secs(60) {
            return Err(ConfigError::EventsRetention);
        }
        let second = Duration::from_secs(1);
        if self.events_heartbeat < Duration::from_millis(100)
            || self.events_heartbeat > 60 * second
            || self.events_poll < Duration::from_millis(10)
            || self.events_poll > 10 * second
            || self.events_long_poll < Duration::from_millis(100)
            || self.events_long_poll > 120 * second
        {
            return Err(ConfigError::EventsTiming);
        }
        if self.notify_url.is_some() != self.notify_secret.is_some() {
            return Err(ConfigError::NotifySecret);
        }
        if self.require_verified_email && !self.sends_notifications() {
            return Err(ConfigError::NoNotifications);
        }
        let minute = Duration::from_secs(60);
        if self.email_verification_ttl < minute
            || self.password_reset_ttl < minute
            || self.mfa_challenge_ttl < minute
        {
            return Err(ConfigError::OneTimeTtl);
        }
        Ok(())
    }
}

/// A setting combination clap cannot reject on its own.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("access token TTL must be between 30s and 24h")]
    AccessTokenTtl,
    #[error("refresh token TTL must be longer than the access token TTL")]
    RefreshTokenTtl,
    #[error("key rotation interval must be at least 1s")]
    KeyRotation,
    #[error("issuer and audience must not be empty")]
    EmptyIssuer,
    #[error("max sync age must be at least twice the sync interval")]
    MaxSyncAge,
    #[error("hash workers must be at least 1")]
    HashWorkers,
    #[error("session max lifetime must be at least the access token TTL")]
    SessionLifetime,
    #[error("audit retention must be at least a day")]
    AuditRetention,
    #[error("the events retention must be at least the access token TTL plus a minute")]
    EventsRetention,
    #[error(
        "the events heartbeat must be between 100ms and 60s, the events poll between 10ms and 10s, \
         the events long poll between 100ms and 120s"
    )]
    EventsTiming,
    #[error("--notify-url and --notify-secret go together")]
    NotifySecret,
    #[error(
        "--require-verified-email needs a way to send verifications (--notify-url or --smtp-url)"
    )]
    NoNotifications,
    #[error("one-time token lifetimes must be at least a minute")]
    OneTimeTtl,
}
