//! `identity-bench`: drives the identity services through their real gRPC
//! interfaces and reports throughput and latency next to the machine's ceilings
//! (a bare tonic echo server; raw Argon2id hashing), in one run.

// A measuring tool, not a service: failing loudly on a broken invariant is right.
#![allow(clippy::expect_used)]

/// The allocator the Auth Service runs with, so that the echo ceiling (this
/// binary's `echo-server`) is bare tonic on the same footing, not slower for
/// glibc's malloc.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

mod ceilings;
mod latency;
mod load;
mod procstat;
mod report;
mod scenarios;
mod system;

use clap::{Parser, Subcommand};
use load::{Operation, Stats, drive};
use report::Row;
use scenarios::{EchoValidate, Fixtures, Scenario};
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
    /// Where the service binaries are (build them with --release for real figures).
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Also write the table here, as Markdown.
    #[arg(long)]
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
}

/// Alternating open-loop trials per backend for the half-load latency.
const LATENCY_TRIALS: usize = 5;

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
    if let Some(Command::EchoServer { addr }) = cli.command {
        return ceilings::serve_echo(addr).await;
    }
    if cli.smoke {
        cli.duration = Duration::from_millis(1000);
        cli.warmup = Duration::from_millis(200);
        cli.connections = 2;
        cli.concurrency = 4;
        cli.users = 4;
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

    eprintln!("measuring the Argon2id ceiling on {cores} cores ...");
    let argon = argon2_now(cores, &cli);

    let mut rows = Vec::new();
    let mut echo: Option<(Stats, system::Echo)> = None;
    let mut failures = 0u64;
    for backend in backends {
        let sys = match (backend, &cli.auth_url, &cli.user_url) {
            (Some(backend), _, _) => {
                eprintln!("starting both services on {backend:?} ...");
                system::start(&cli.bin_dir, backend, logs.path()).await?
            }
            (None, Some(auth), Some(user)) => system::Under::external(
                auth,
                user,
                cli.pids
                    .as_deref()
                    .and_then(|p| Some((*p.first()?, *p.get(1)?))),
            ),
            (None, _, _) => anyhow::bail!("--auth-url and --user-url go together"),
        };
        let backend = sys.label.clone();
        let auth = channels(&sys.auth_url, cli.connections).await?;
        let users = channels(&sys.user_url, cli.connections).await?;
        let fixtures = Arc::new(
            Fixtures::prepare(auth[0].clone(), users.clone(), cli.users, cli.concurrency).await?,
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
                    channels: echo_channels,
                    op,
                },
            ));
        }
        let echo_rate = echo.as_ref().map_or(0.0, |e| e.0.throughput());

        for name in &names {
            eprintln!("  {backend} / {name} ...");
            let scenario = Arc::new(Scenario {
                name,
                fixtures: fixtures.clone(),
            });
            let targets = if scenario.targets_users() {
                &users
            } else {
                &auth
            };
            let hashing = matches!(*name, "login" | "register");
            // Argon2 throughput moves with the neighbours' memory traffic on a
            // shared host (it has measured 56 and 120 hashes/s an hour apart),
            // so hashing scenarios are divided by a ceiling measured just
            // before and just after them.
            let argon_before = hashing.then(|| argon2_now(cores, &cli));
            let before = sys.pids.map(procstat::Sample::take);
            let stats = drive(targets, cli.concurrency, cli.warmup, cli.duration, scenario).await;
            let resources = before.map(|b| b.since());
            let ceiling = match argon_before {
                Some(b) => {
                    let a = argon2_now(cores, &cli);
                    let busy = resources.map_or(String::new(), |r| {
                        format!(
                            "; hashing threads busy {:.2} of {cores} cores",
                            r.hashing_cores
                        )
                    });
                    Some((
                        (b + a) / 2.0,
                        format!("Argon2 ceiling {b:.1} before, {a:.1} after{busy}"),
                    ))
                }
                None => Some((echo_rate, String::new())),
            };
            failures += stats.error_count();
            let mut row = Row::new(
                &backend.clone(),
                name,
                &stats,
                ceiling.as_ref().map(|c| c.0),
                resources,
                idle,
            );
            row.note = ceiling.map(|c| c.1).unwrap_or_default();
            rows.push(row);
        }

        // Latency at half the echo ceiling's throughput, open loop, in trials
        // alternating with the echo server so that both meet the same noise.
        if let (true, Some((_, server))) = (names.contains(&"validate"), &echo) {
            eprintln!("  {backend} / validate at half the echo rate ...");
            let validate: Arc<dyn Operation> = Arc::new(Scenario {
                name: "validate",
                fixtures: fixtures.clone(),
            });
            let rate = echo_rate / 2.0;
            let (trials, each) = if cli.smoke {
                (1, cli.duration)
            } else {
                (
                    LATENCY_TRIALS,
                    (cli.duration / 2).max(Duration::from_secs(1)),
                )
            };
            let (e, v) = latency::paired(
                &latency::Target {
                    channels: &server.channels,
                    op: server.op.clone(),
                },
                &latency::Target {
                    channels: &auth,
                    op: validate,
                },
                cli.concurrency,
                rate,
                trials,
                each,
            )
            .await;
            failures += v.pooled.error_count() + e.pooled.error_count();
            let backend_name = backend.clone();
            for (who, t, ceiling) in [("echo", &e, None), ("validate", &v, Some(echo_rate))] {
                let scenario = format!("{who} at 50 % of echo rate");
                let mut row = Row::new(&backend_name, &scenario, &t.pooled, ceiling, None, idle);
                row.note = t.note(rate);
                rows.push(row);
            }
        }

        // Validation while a login storm saturates the hash pool.
        if names.contains(&"validate") && names.contains(&"login") {
            eprintln!("  {backend} / validate during a login storm ...");
            let idle_p99 = rows
                .iter()
                .find(|r| r.backend == backend.clone() && r.scenario == "validate")
                .map_or(0.0, |r| r.p99);
            let storm = Arc::new(Scenario {
                name: "login",
                fixtures: fixtures.clone(),
            });
            let validate = Arc::new(Scenario {
                name: "validate",
                fixtures: fixtures.clone(),
            });
            let half = (cli.concurrency / 2).max(1);
            let (during, logins) = tokio::join!(
                drive(&auth, half, cli.warmup, cli.duration, validate),
                drive(&auth, half, cli.warmup, cli.duration, storm),
            );
            failures += during.error_count() + logins.error_count();
            let mut row = Row::new(
                &backend.clone(),
                "validate during login storm",
                &during,
                Some(echo_rate),
                None,
                idle,
            );
            row.note = format!(
                "p99 {:.2}x idle p99; storm {:.0} logins/s",
                row.p99 / idle_p99.max(1e-9),
                logins.throughput()
            );
            rows.push(row);
        }
        drop(sys);
    }

    drop(echo);
    let table = report::markdown(&rows, argon, cores, &cli_summary(&cli));
    println!("{table}");
    if let Some(path) = &cli.markdown {
        std::fs::write(path, &table)?;
    }
    if failures > 0 {
        anyhow::bail!("{failures} requests failed");
    }
    Ok(())
}

/// Argon2id hashes per second on every core, measured now for half a scenario.
fn argon2_now(cores: usize, cli: &Cli) -> f64 {
    let how_long = if cli.smoke {
        Duration::from_millis(500)
    } else {
        (cli.duration / 2).max(Duration::from_secs(2))
    };
    ceilings::argon2_ceiling(cores, how_long)
}

fn cli_summary(cli: &Cli) -> String {
    format!(
        "backend {}, {} per scenario after {} warm-up, {} connections, {} in flight, {} users",
        cli.backend,
        humantime::format_duration(cli.duration),
        humantime::format_duration(cli.warmup),
        cli.connections,
        cli.concurrency,
        cli.users
    )
}
