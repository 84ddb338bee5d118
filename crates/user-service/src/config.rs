//! The User Service's configuration: every flag is also an environment variable,
//! validated once at start.

use clap::{Args, Parser, Subcommand};
use platform::ids::ClientId;
use platform::telemetry::LogFormat;
use secrecy::SecretString;
use std::net::SocketAddr;
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

/// What to do; `serve` when none is given.
#[derive(Debug, Clone, Copy, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

/// Settings shared by every subcommand.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// gRPC listen address (loopback by default: this is an internal service).
    #[arg(
        long,
        env = "USER_GRPC_ADDR",
        default_value = "127.0.0.1:50052",
        global = true
    )]
    pub grpc_addr: SocketAddr,

    /// Auxiliary HTTP listen address: /healthz, /readyz, /metrics.
    #[arg(
        long,
        env = "USER_HTTP_ADDR",
        default_value = "127.0.0.1:8082",
        global = true
    )]
    pub http_addr: SocketAddr,

    /// Database URL: `sqlite:<path>` (embedded, the default) or `postgres://...`.
    #[arg(
        long,
        env = "USER_DATABASE_URL",
        default_value = "sqlite:./data/user.db",
        global = true
    )]
    pub database_url: SecretString,

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

    /// PEM certificate of the gRPC port; enables TLS.
    #[arg(long, env = "USER_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "USER_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,

    /// PEM CA: when set, gRPC clients must present a certificate it signed (mTLS).
    #[arg(long, env = "USER_TLS_CLIENT_CA", global = true)]
    pub tls_client_ca: Option<PathBuf>,

    /// PEM CA that signed the Auth Service's certificate (default: the client CA).
    #[arg(long, env = "USER_TLS_CA", global = true)]
    pub tls_ca: Option<PathBuf>,

    /// Log format: `json` or `pretty`.
    #[arg(long, env = "USER_LOG_FORMAT", default_value = "json", global = true)]
    pub log_format: LogFormat,
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

    /// The TLS files given.
    pub fn tls_files(&self) -> platform::tls::TlsFiles {
        platform::tls::TlsFiles {
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            client_ca: self.tls_client_ca.clone(),
            ca: self.tls_ca.clone(),
        }
    }
}
