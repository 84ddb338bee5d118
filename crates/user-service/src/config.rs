//! The User Service's configuration: the flags every service has
//! ([`ServerFlags`]) and its own; every flag is also an environment variable,
//! validated once at start.

use clap::{Args, Parser};
use platform::ids::ClientId;
use platform::server::{Command, ServerFlags, Service};
use secrecy::SecretString;
use std::path::PathBuf;

/// The platform's User Service: user profiles.
#[derive(Debug, Parser)]
#[command(name = "user-service", version, about)]
pub struct Cli {
    #[command(flatten)]
    pub settings: Settings,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// The User Service in the shared flags: `USER_GRPC_ADDR`, `USER_HTTP_ADDR`,
/// `USER_DATABASE_URL`, `USER_TLS_CERT`, `USER_TLS_KEY`, `USER_TLS_CLIENT_CA`,
/// `USER_TLS_CA` and `USER_LOG_FORMAT`.
#[derive(Debug, Clone)]
pub struct UserService;

impl Service for UserService {
    const NAME: &'static str = "user-service";
    const METRICS_LABEL: &'static str = "user";
    const ENV_PREFIX: &'static str = "USER";
    const GRPC_ADDR: &'static str = "127.0.0.1:50052";
    const HTTP_ADDR: &'static str = "127.0.0.1:8082";
    const DATABASE_URL: &'static str = "sqlite:./data/user.db";
    const HTTP_ROUTES: &'static str = "/healthz, /readyz, /metrics";
    const PEER: &'static str = "Auth Service";
}

/// Settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    #[command(flatten)]
    pub server: ServerFlags<UserService>,

    /// The Auth Service's gRPC URL: it validates callers' tokens and hears of deletions.
    #[arg(
        long,
        env = "USER_AUTH_URL",
        default_value = "http://127.0.0.1:50051",
        global = true
    )]
    pub auth_url: String,

    /// This service's service-account client id (from `auth-service
    /// create-service-account --role identity-service`); it reports deletions
    /// to the Auth Service with it.
    #[arg(long, env = "USER_CLIENT_ID", global = true)]
    pub client_id: Option<String>,

    /// The service account's client secret.
    #[arg(
        long,
        env = "USER_CLIENT_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub client_secret: Option<SecretString>,

    /// A JSON file holding `client_id` and `client_secret`, as `auth-service
    /// create-service-account` prints it (instead of the two settings above).
    #[arg(long, env = "USER_CLIENT_CREDENTIALS_FILE", global = true)]
    pub client_credentials_file: Option<PathBuf>,

    /// How callers' tokens are checked: `local` verifies them in-process
    /// (identity-verifier: JWKS and the security-event feed; needs the
    /// service account) and asks `CheckPermission` only while the feed is
    /// stale; `remote` asks `CheckPermission` for every decision.
    #[arg(
        long,
        env = "USER_TOKEN_VERIFICATION",
        value_enum,
        default_value = "local",
        global = true
    )]
    pub token_verification: TokenVerification,

    /// The `iss` of the Auth Service's tokens (its `AUTH_ISSUER`).
    #[arg(
        long,
        env = "USER_TOKEN_ISSUER",
        default_value = "identity-auth",
        global = true
    )]
    pub token_issuer: String,

    /// The `aud` of the Auth Service's tokens (its `AUTH_AUDIENCE`).
    #[arg(
        long,
        env = "USER_TOKEN_AUDIENCE",
        default_value = "identity-platform",
        global = true
    )]
    pub token_audience: String,

    /// With local verification: how old the view of revocations may get
    /// before decisions go to `CheckPermission` instead.
    #[arg(long, env = "USER_VERIFIER_MAX_STALENESS", default_value = "10s", value_parser = humantime::parse_duration, global = true)]
    pub verifier_max_staleness: std::time::Duration,

    /// With local verification: the Auth Service's longest access-token
    /// lifetime plus leeway (how long a revocation is remembered).
    #[arg(long, env = "USER_VERIFIER_RETENTION", default_value = "16m", value_parser = humantime::parse_duration, global = true)]
    pub verifier_retention: std::time::Duration,
}

/// How the User Service checks callers' tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum TokenVerification {
    /// In-process, with the security-event feed; `CheckPermission` while stale.
    Local,
    /// `CheckPermission` for every decision.
    Remote,
}

impl Settings {
    /// The service account's client id and secret, from the settings or the
    /// file; a client id the Auth Service would refuse is refused at start.
    pub fn client_credentials(&self) -> anyhow::Result<Option<(ClientId, SecretString)>> {
        let id =
            |raw: &str| ClientId::try_from(raw).map_err(|e| anyhow::anyhow!("USER_CLIENT_ID: {e}"));
        if let Some(path) = &self.client_credentials_file {
            #[derive(serde::Deserialize)]
            struct File {
                client_id: String,
                client_secret: String,
            }
            let text = std::fs::read_to_string(path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let f: File = serde_json::from_str(&text).map_err(|e| {
                anyhow::anyhow!("{} is not a credentials file: {e}", path.display())
            })?;
            return Ok(Some((
                id(&f.client_id)?,
                SecretString::from(f.client_secret),
            )));
        }
        match (&self.client_id, &self.client_secret) {
            (Some(raw), Some(secret)) => Ok(Some((id(raw)?, secret.clone()))),
            (None, None) => Ok(None),
            _ => anyhow::bail!("USER_CLIENT_ID and USER_CLIENT_SECRET go together"),
        }
    }
}
