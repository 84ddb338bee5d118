//! The shell every service runs in, so that a service says only what is its
//! own: the flags they all have (listen addresses, database, TLS, log format),
//! both listeners bound before anything else (tests start the real thing on
//! port 0 and read the addresses back), gRPC with health, reflection and
//! metrics, the auxiliary HTTP port, and a graceful stop that joins the
//! supervised tasks.

use crate::db::{Database, Migrations};
use crate::http_aux::{self, Readiness};
use crate::metrics::Metrics;
use crate::tasks::Supervisor;
use crate::telemetry::LogFormat;
use crate::tls::{Tls, TlsFiles};
use anyhow::Context as _;
use clap::{Args, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use std::future::Future;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How often a service prunes what it keeps only for a while (delivered
/// outbox events, expired rows).
pub const PRUNE_EVERY: Duration = Duration::from_secs(15 * 60);

/// What sets one service's shared flags and log lines apart from another's.
pub trait Service {
    /// The binary's name, in log lines: `auth-service`.
    const NAME: &'static str;
    /// The `service` label of every metric.
    const METRICS_LABEL: &'static str;
    /// The prefix of its environment variables: `AUTH` reads `AUTH_GRPC_ADDR`.
    const ENV_PREFIX: &'static str;
    /// The default gRPC listen address.
    const GRPC_ADDR: &'static str;
    /// The default auxiliary HTTP listen address.
    const HTTP_ADDR: &'static str;
    /// The default database URL.
    const DATABASE_URL: &'static str;
    /// What its auxiliary HTTP port serves, for `--help`.
    const HTTP_ROUTES: &'static str;
    /// The service it calls, whose certificate `--tls-ca` checks, for `--help`.
    const PEER: &'static str;
}

fn env<S: Service>(flag: &str) -> String {
    format!("{}_{flag}", S::ENV_PREFIX)
}

/// The flags every service has, each also an environment variable; a
/// service's settings flatten them (`#[command(flatten)]`).
#[derive(Debug, Clone, Args)]
pub struct ServerFlags<S: Service> {
    /// gRPC listen address (loopback by default: this is an internal service).
    #[arg(long, env = env::<S>("GRPC_ADDR"), default_value = S::GRPC_ADDR, global = true)]
    pub grpc_addr: SocketAddr,

    /// Auxiliary HTTP listen address.
    #[arg(
        long,
        env = env::<S>("HTTP_ADDR"),
        default_value = S::HTTP_ADDR,
        global = true,
        help = format!("Auxiliary HTTP listen address: {}", S::HTTP_ROUTES)
    )]
    pub http_addr: SocketAddr,

    /// Database URL: `sqlite:<path>` (embedded, the default) or `postgres://...`.
    #[arg(long, env = env::<S>("DATABASE_URL"), default_value = S::DATABASE_URL, global = true)]
    pub database_url: SecretString,

    /// PEM certificate of the gRPC port; enables TLS.
    #[arg(long, env = env::<S>("TLS_CERT"), global = true)]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key for `--tls-cert`.
    #[arg(long, env = env::<S>("TLS_KEY"), global = true)]
    pub tls_key: Option<PathBuf>,

    /// PEM CA: when set, gRPC clients must present a certificate it signed (mTLS).
    #[arg(long, env = env::<S>("TLS_CLIENT_CA"), global = true)]
    pub tls_client_ca: Option<PathBuf>,

    /// PEM CA that signed the peer service's certificate (default: the client CA).
    #[arg(
        long,
        env = env::<S>("TLS_CA"),
        global = true,
        help = format!("PEM CA that signed the {}'s certificate (default: the client CA)", S::PEER)
    )]
    pub tls_ca: Option<PathBuf>,

    /// Log format: `json` or `pretty`.
    #[arg(long, env = env::<S>("LOG_FORMAT"), default_value = "json", global = true)]
    pub log_format: LogFormat,

    #[arg(skip)]
    service: PhantomData<S>,
}

impl<S: Service> ServerFlags<S> {
    /// Binds the gRPC and the HTTP address.
    pub async fn bind(&self) -> anyhow::Result<Listeners> {
        let grpc = TcpListener::bind(self.grpc_addr)
            .await
            .with_context(|| format!("cannot bind gRPC address {}", self.grpc_addr))?;
        let http = TcpListener::bind(self.http_addr)
            .await
            .with_context(|| format!("cannot bind HTTP address {}", self.http_addr))?;
        Ok(Listeners { grpc, http })
    }

    /// Opens the database and applies the migrations.
    pub async fn open_database(&self, migrations: &'static Migrations) -> anyhow::Result<Database> {
        let db = Database::connect(self.database_url.expose_secret(), migrations)
            .await
            .context("cannot open the database")?;
        db.migrate().await.context("cannot apply migrations")?;
        Ok(db)
    }

    /// The TLS files given.
    pub fn tls_files(&self) -> TlsFiles {
        TlsFiles {
            cert: self.tls_cert.clone(),
            key: self.tls_key.clone(),
            client_ca: self.tls_client_ca.clone(),
            ca: self.tls_ca.clone(),
        }
    }
}

/// What every service does; `serve` when none is given.
#[derive(Debug, Clone, Copy, Subcommand, PartialEq, Eq)]
pub enum Command {
    /// Run the service (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
}

/// The exit status of a service binary whose work ended with `outcome`. A
/// failure is printed besides logged: whoever started the binary may not be
/// reading its logs.
pub fn exit_code<S: Service>(outcome: anyhow::Result<()>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "{} failed", S::NAME);
            eprintln!("{}: {e:#}", S::NAME);
            ExitCode::FAILURE
        }
    }
}

/// A service's gRPC and HTTP listeners, bound.
#[derive(Debug)]
pub struct Listeners {
    pub grpc: TcpListener,
    pub http: TcpListener,
}

/// What a service serves in its shell.
pub struct Api {
    /// Its gRPC services; health and reflection are added.
    pub grpc: tonic::service::Routes,
    /// The fully qualified service name health reports SERVING until shutdown.
    pub health: &'static str,
    /// Methods served but not in the descriptor set (Envoy's `Check`), so that
    /// metrics label them all the same.
    pub undescribed: &'static [&'static str],
    /// What `/readyz` asks.
    pub readiness: Arc<dyn Readiness>,
    /// Its own HTTP routes, beside `/healthz`, `/readyz` and `/metrics`.
    pub http: axum::Router,
}

/// A bound service that does not serve yet: its listeners, TLS and metrics.
#[derive(Debug)]
pub struct Shell {
    name: &'static str,
    listeners: Listeners,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    tls: Option<Tls>,
    metrics: Metrics,
}

impl Shell {
    /// The shell on `listeners` (bound by [`ServerFlags::bind`], or by a test
    /// that wires two services to each other), with the TLS `flags` name.
    pub fn new<S: Service>(flags: &ServerFlags<S>, listeners: Listeners) -> anyhow::Result<Self> {
        crate::tls::install_crypto_provider();
        Ok(Self {
            name: S::NAME,
            grpc_addr: listeners.grpc.local_addr()?,
            http_addr: listeners.http.local_addr()?,
            listeners,
            tls: Tls::from_files(&flags.tls_files())?,
            metrics: Metrics::new(S::METRICS_LABEL)?,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// The TLS material, for the service's calls to its peer.
    pub fn tls(&self) -> Option<&Tls> {
        self.tls.as_ref()
    }

    /// The metrics, for the service's own instruments.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Serves `api` until `shutdown` is cancelled (or a server fails), lets
    /// in-flight calls finish, then awaits `finish` (the service's own jobs)
    /// and joins `tasks`.
    pub async fn run(
        self,
        shutdown: CancellationToken,
        tasks: Supervisor,
        api: Api,
        finish: impl Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tracing::info!(grpc = %self.grpc_addr, http = %self.http_addr, "{} listening", self.name);
        let grpc = crate::grpc::serve(
            self.listeners.grpc,
            api.grpc,
            api.health,
            &[identity_proto::FILE_DESCRIPTOR_SET],
            api.undescribed,
            self.tls.as_ref().map(Tls::server),
            self.metrics.clone(),
            shutdown.clone(),
        );
        let router =
            http_aux::router(api.readiness, self.metrics.clone(), shutdown.clone()).merge(api.http);
        let http = http_aux::serve(self.listeners.http, router, shutdown.clone());
        let (grpc_result, http_result) = tokio::join!(grpc, http);
        // One server failing stops the other and every task.
        shutdown.cancel();
        finish.await;
        tasks.join().await;
        tracing::info!("{} stopped", self.name);
        grpc_result.context("gRPC server failed")?;
        http_result.context("HTTP server failed")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Debug, Clone)]
    struct Demo;

    impl Service for Demo {
        const NAME: &'static str = "demo-service";
        const METRICS_LABEL: &'static str = "demo";
        const ENV_PREFIX: &'static str = "DEMO";
        const GRPC_ADDR: &'static str = "127.0.0.1:1";
        const HTTP_ADDR: &'static str = "127.0.0.1:2";
        const DATABASE_URL: &'static str = "sqlite:./demo.db";
        const HTTP_ROUTES: &'static str = "/healthz";
        const PEER: &'static str = "Other Service";
    }

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerFlags<Demo>,
    }

    #[test]
    fn each_flag_reads_the_services_own_variable_and_default() {
        let command = Cli::command();
        command.clone().debug_assert();
        let flags: Vec<(&str, String, Vec<String>)> = command
            .get_arguments()
            .filter_map(|a| {
                let env = a.get_env()?.to_string_lossy().into_owned();
                let defaults = a.get_default_values().iter();
                let defaults = defaults.map(|v| v.to_string_lossy().into_owned());
                Some((a.get_long()?, env, defaults.collect()))
            })
            .collect();
        let expected = [
            ("grpc-addr", "DEMO_GRPC_ADDR", Some("127.0.0.1:1")),
            ("http-addr", "DEMO_HTTP_ADDR", Some("127.0.0.1:2")),
            (
                "database-url",
                "DEMO_DATABASE_URL",
                Some("sqlite:./demo.db"),
            ),
            ("tls-cert", "DEMO_TLS_CERT", None),
            ("tls-key", "DEMO_TLS_KEY", None),
            ("tls-client-ca", "DEMO_TLS_CLIENT_CA", None),
            ("tls-ca", "DEMO_TLS_CA", None),
            ("log-format", "DEMO_LOG_FORMAT", Some("json")),
        ]
        .map(|(flag, env, default)| {
            let default = default.map(str::to_owned).into_iter().collect();
            (flag, env.to_owned(), default)
        });
        assert_eq!(flags, expected);
        let help = |flag: &str| {
            let arg = command.get_arguments().find(|a| a.get_long() == Some(flag));
            arg.and_then(|a| a.get_help()).map(ToString::to_string)
        };
        assert_eq!(
            help("http-addr").as_deref(),
            Some("Auxiliary HTTP listen address: /healthz")
        );
        assert_eq!(
            help("tls-ca").as_deref(),
            Some("PEM CA that signed the Other Service's certificate (default: the client CA)")
        );
    }

    #[tokio::test]
    async fn the_shell_binds_both_ports_and_reports_them() {
        let cli =
            Cli::try_parse_from(["demo", "--grpc-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0"])
                .unwrap();
        let shell = Shell::new(&cli.server, cli.server.bind().await.unwrap()).unwrap();
        assert_ne!(shell.grpc_addr().port(), 0);
        assert_ne!(shell.http_addr().port(), 0);
        assert!(shell.tls().is_none());
    }
}
