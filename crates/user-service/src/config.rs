//! The User Service's configuration: every flag is also an environment variable,
//! validated once at start.

use clap::{Args, Parser, Subcommand};
use platform::telemetry::LogFormat;
use secrecy::SecretString;
use std::net::SocketAddr;

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

    /// The secret internal services present to each other (at least 32
    /// characters; the same value as the Auth Service's AUTH_SERVICE_SECRET).
    #[arg(
        long,
        env = "USER_SERVICE_SECRET",
        hide_env_values = true,
        global = true
    )]
    pub service_secret: Option<SecretString>,

    /// Log format: `json` or `pretty`.
    #[arg(long, env = "USER_LOG_FORMAT", default_value = "json", global = true)]
    pub log_format: LogFormat,
}
