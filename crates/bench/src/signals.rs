//! `identity-bench signals`: what the security-event feed and the
//! `identity-verifier` crate buy a service behind the platform. Per backend:
//! local `verify` on one core (cached and uncached ES256) against
//! `ValidateToken` over gRPC; how long after a revoking RPC returns every one
//! of many verifiers refuses the token (three Auth Service replicas on
//! PostgreSQL, the verifiers spread over them); and, on SQLite, the memory a
//! verifier holds per 100,000 live revocations. The services run in this
//! process (release build), on a fresh database each.

use crate::load::{Operation, drive};
use auth_service::accounts::{Accounts, NewServiceAccount};
use auth_service::startup::{Application, Handle};
use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use identity_proto::auth::v1 as pb;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use identity_verifier::{Config, Rejection, Verifier};
use platform::clock::SystemClock;
use secrecy::{ExposeSecret, SecretString};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use test_support::Backend;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// The command's flags.
#[derive(Debug, clap::Args)]
pub struct SignalsArgs {
    /// `sqlite`, `postgres` or `both`.
    #[arg(long, default_value = "both")]
    backend: String,
    /// Verifiers following the feed, in this process.
    #[arg(long, default_value_t = 50)]
    verifiers: usize,
    /// Sessions revoked, one after another, while every verifier watches.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Revocations per second.
    #[arg(long, default_value_t = 20)]
    rate: u32,
    /// Live revocations for the memory figure (SQLite only).
    #[arg(long, default_value_t = 100_000)]
    revocations: usize,
}

const ISSUER: &str = "identity-auth";
const AUDIENCE: &str = "identity-platform";
const PASSWORD: &str = "correct horse battery staple";

/// An Auth Service replica running in this process.
struct Replica {
    url: String,
    handle: Handle,
    shutdown: CancellationToken,
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

async fn replica(db_url: &str) -> anyhow::Result<Replica> {
    let settings: auth_service::config::Settings = test_support::service::settings(
        db_url,
        &[
            ("user-url", "http://127.0.0.1:9"),
            ("registrations-per-minute", "4000000000"),
        ],
    );
    let app = Application::build(settings, Arc::new(SystemClock)).await?;
    let url = format!("http://{}", app.grpc_addr());
    let handle = app.handle();
    let shutdown = CancellationToken::new();
    let stop = shutdown.clone();
    // The service's own supervised tasks are joined by its run; this task only
    // drives it until the replica is dropped.
    #[allow(clippy::disallowed_methods)]
    let _running = tokio::spawn(async move { app.run_until_stopped(stop).await });
    Ok(Replica {
        url,
        handle,
        shutdown,
    })
}

/// A verifier's default configuration with `config`'s address and account.
fn like(config: &Config) -> Config {
    let mut like = Config::new(
        config.auth_url.clone(),
        config.client_id.clone(),
        SecretString::from(config.client_secret.expose_secret().to_owned()),
        ISSUER,
        AUDIENCE,
    );
    // Catching up with a large backlog takes a while.
    like.connect_timeout = Duration::from_secs(600);
    like
}

async fn client(url: &str) -> anyhow::Result<AuthServiceClient<Channel>> {
    Ok(AuthServiceClient::new(
        Channel::from_shared(url.to_owned())?.connect().await?,
    ))
}

/// Runs the scenario on each backend asked for; prints and writes the report.
pub async fn run(args: &SignalsArgs, markdown: Option<&Path>) -> anyhow::Result<()> {
    let backends = match args.backend.as_str() {
        "sqlite" => vec![Backend::Sqlite],
        "postgres" => vec![Backend::Postgres],
        "both" => vec![Backend::Sqlite, Backend::Postgres],
        other => anyhow::bail!("unknown backend {other:?}: sqlite, postgres or both"),
    };
    let mut report = String::from("## Signals: local verification and revocation propagation\n\n");
    for backend in backends {
        let section = one_backend(args, backend).await?;
        eprintln!("{section}");
        report.push_str(&section);
    }
    if let Some(path) = markdown {
        std::fs::write(path, &report)?;
    }
    println!("{report}");
    Ok(())
}

async fn one_backend(args: &SignalsArgs, backend: Backend) -> anyhow::Result<String> {
    let db = backend.fresh_database().await;
    let replicas = match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => 3,
    };
    let mut running = Vec::new();
    for _ in 0..replicas {
        running.push(replica(&db.url).await?);
    }
    let core = &running[0].handle.core;
    let account = NewServiceAccount::parse("bench-verifiers", &["identity-service".to_owned()])
        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (account, secret) = Accounts(core)
        .create_service_account(None, account, &Default::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = |url: &str| {
        let secret = SecretString::from(secret.expose_secret().to_owned());
        Config::new(url, account.client_id.clone(), secret, ISSUER, AUDIENCE)
    };
    let mut out = format!(
        "### {backend:?} ({replicas} Auth Service replica{}, {} verifiers)\n\n",
        if replicas == 1 { "" } else { "s" },
        args.verifiers
    );

    eprintln!(
        "signals/{backend:?}: {} verifiers connecting ...",
        args.verifiers
    );
    let mut verifiers = Vec::with_capacity(args.verifiers);
    for i in 0..args.verifiers {
        verifiers.push(Verifier::connect(config(&running[i % replicas].url)).await?);
    }

    eprintln!("signals/{backend:?}: throughput ...");
    let measured = throughput(&running[0], &verifiers[0], &config(&running[0].url)).await?;
    eprintln!("{measured}");
    out.push_str(&measured);

    eprintln!("signals/{backend:?}: {} sessions ...", args.sessions);
    let sessions = open_sessions(&running[0].url, args.sessions).await?;
    eprintln!("signals/{backend:?}: revoking ...");
    let propagated = propagation(args, &running, &verifiers, &sessions).await?;
    eprintln!("{propagated}");
    out.push_str(&propagated);
    // The others would each follow the revocations written for the figure.
    drop(verifiers);

    if backend == Backend::Sqlite {
        eprintln!(
            "signals/{backend:?}: memory of {} live revocations ...",
            args.revocations
        );
        out.push_str(&memory(args, &db.url, &config(&running[0].url)).await?);
    }
    drop(running);
    Ok(out)
}

/// Local `verify` on this thread (one core), cached and uncached, against
/// `ValidateToken` over gRPC at the concurrency that serves it best here.
async fn throughput(
    replica: &Replica,
    cached: &Verifier,
    config: &Config,
) -> anyhow::Result<String> {
    let mut grpc = client(&replica.url).await?;
    let account =
        NewServiceAccount::parse("bench-tokens", &[]).map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let (account, secret) = Accounts(&replica.handle.core)
        .create_service_account(None, account, &Default::default())
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut tokens = Vec::with_capacity(5000);
    for _ in 0..5000 {
        let t = grpc
            .issue_service_token(pb::IssueServiceTokenRequest {
                client_id: account.client_id.clone(),
                client_secret: secret.expose_secret().to_owned(),
            })
            .await?
            .into_inner()
            .access_token;
        tokens.push(t);
    }
    // Uncached: a verifier that has seen none of them, each verified once.
    let fresh = Verifier::connect(like(config)).await?;
    let started = Instant::now();
    for t in &tokens {
        fresh
            .verify(t)
            .map_err(|r| anyhow::anyhow!("uncached verify: {r:?}"))?;
    }
    let uncached = tokens.len() as f64 / started.elapsed().as_secs_f64();
    // Cached: the same 5,000 over and over for a second.
    for t in &tokens {
        cached
            .verify(t)
            .map_err(|r| anyhow::anyhow!("verify: {r:?}"))?;
    }
    let (mut n, started) = (0usize, Instant::now());
    while started.elapsed() < Duration::from_secs(1) {
        for t in tokens.iter().take(1000) {
            let _ = std::hint::black_box(cached.verify(t));
        }
        n += 1000;
    }
    let hits = n as f64 / started.elapsed().as_secs_f64();
    // ValidateToken over gRPC: 4 connections, 32 in flight, 3 s.
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(Channel::from_shared(replica.url.clone())?.connect().await?);
    }
    let op: Arc<dyn Operation> = Arc::new(Validate(Arc::new(tokens)));
    let stats = drive(
        &channels,
        32,
        Duration::from_secs(1),
        Duration::from_secs(3),
        op,
    )
    .await;
    let remote = stats.throughput();
    let mut s = String::new();
    writeln!(s, "| verification | calls/s | vs `ValidateToken` |")?;
    writeln!(s, "|---|---:|---:|")?;
    writeln!(
        s,
        "| `verify`, cached (one core) | {hits:.0} | {:.0}× |",
        hits / remote
    )?;
    writeln!(
        s,
        "| `verify`, uncached ES256 (one core) | {uncached:.0} | {:.1}× |",
        uncached / remote
    )?;
    writeln!(
        s,
        "| `ValidateToken` over gRPC (32 in flight, whole machine) | {remote:.0} (p50 {:.2} ms, p99 {:.2} ms) | 1× |\n",
        stats.quantile_ms(0.5),
        stats.quantile_ms(0.99)
    )?;
    Ok(s)
}

/// `ValidateToken` of the tokens in turn.
struct Validate(Arc<Vec<String>>);

impl Operation for Validate {
    fn call(&self, worker: usize, channel: Channel) -> BoxFuture<'_, Result<(), tonic::Code>> {
        let token = self.0[worker % self.0.len()].clone();
        Box::pin(async move {
            AuthServiceClient::new(channel)
                .validate_token(pb::ValidateTokenRequest {
                    access_token: token,
                })
                .await
                .map(drop)
                .map_err(|s| s.code())
        })
    }
}

/// (refresh token, access token) of `n` sessions, ten a user.
async fn open_sessions(url: &str, n: usize) -> anyhow::Result<Vec<(String, String)>> {
    use futures::StreamExt;
    let grpc = client(url).await?;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let users: Vec<String> = (0..n.div_ceil(10))
        .map(|u| format!("signals-{run}-{u}@example.com"))
        .collect();
    for email in &users {
        grpc.clone()
            .register(pb::RegisterRequest {
                email: email.clone(),
                password: PASSWORD.into(),
                display_name: "Signals".into(),
            })
            .await?;
    }
    // A few logins at a time, each user's apart: Argon2 is the cost, and an
    // attempt counts against the account's throttle until it succeeds.
    let logins = (0..n).map(|i| {
        let (mut grpc, email) = (grpc.clone(), users[i % users.len()].clone());
        async move {
            let r = grpc
                .login(pb::LoginRequest {
                    email,
                    password: PASSWORD.into(),
                })
                .await?
                .into_inner();
            Ok::<_, anyhow::Error>((r.refresh_token, r.access_token))
        }
    });
    let done: Vec<anyhow::Result<(String, String)>> = futures::stream::iter(logins)
        .buffer_unordered(4)
        .collect()
        .await;
    done.into_iter().collect()
}

/// Revokes each session (logout, round-robin over the replicas) at `rate` a
/// second; from the moment each logout returns, watches every verifier until
/// it refuses the token as revoked.
async fn propagation(
    args: &SignalsArgs,
    replicas: &[Replica],
    verifiers: &[Verifier],
    sessions: &[(String, String)],
) -> anyhow::Result<String> {
    for (_, access) in sessions {
        for v in verifiers {
            v.verify(access)
                .map_err(|r| anyhow::anyhow!("before revoking: {r:?}"))?;
        }
    }
    let mut clients = Vec::new();
    for r in replicas {
        clients.push(client(&r.url).await?);
    }
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<(usize, Instant)>();
    let gap = Duration::from_secs(1) / args.rate.max(1);
    let refresh: Vec<String> = sessions.iter().map(|(r, _)| r.clone()).collect();
    #[allow(clippy::disallowed_methods)]
    let revoker = tokio::spawn(async move {
        for (i, token) in refresh.into_iter().enumerate() {
            let mut c = clients[i % clients.len()].clone();
            c.logout(pb::LogoutRequest {
                refresh_token: token,
            })
            .await?;
            let _ = tx.send((i, Instant::now()));
            tokio::time::sleep(gap).await;
        }
        Ok::<_, anyhow::Error>(())
    });
    // (session, returned at, verifiers not yet refusing)
    let mut pending: Vec<(usize, Instant, Vec<usize>)> = Vec::new();
    let mut all = Histogram::<u64>::new(3)?;
    let mut each = Histogram::<u64>::new(3)?;
    let mut done = 0;
    let deadline = Duration::from_secs(10);
    while done < sessions.len() {
        while let Ok((i, at)) = rx.try_recv() {
            pending.push((i, at, (0..verifiers.len()).collect()));
        }
        let now = Instant::now();
        pending.retain_mut(|(i, at, waiting)| {
            let token = &sessions[*i].1;
            waiting.retain(|&v| {
                let refused = matches!(verifiers[v].verify(token), Err(Rejection::Revoked));
                if refused {
                    let _ = each.record(now.duration_since(*at).as_micros() as u64);
                }
                !refused
            });
            if waiting.is_empty() {
                let _ = all.record(now.duration_since(*at).as_micros() as u64);
                done += 1;
                return false;
            }
            assert!(
                now.duration_since(*at) < deadline,
                "session {i} still accepted by {} verifiers after {deadline:?}",
                waiting.len()
            );
            true
        });
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    revoker.await??;
    let ms = |h: &Histogram<u64>, q: f64| h.value_at_quantile(q) as f64 / 1000.0;
    let mut s = String::new();
    writeln!(
        s,
        "Revocation propagation: {} sessions logged out one after another ({} a second, round-robin over the replicas); time from the Logout RPC's return until the verifiers refuse the token (`Revoked`), checked every millisecond:\n",
        sessions.len(),
        args.rate
    )?;
    writeln!(s, "| until | p50 | p99 | max |")?;
    writeln!(s, "|---|---:|---:|---:|")?;
    writeln!(
        s,
        "| every one of the {} verifiers refuses | {:.0} ms | {:.0} ms | {:.0} ms |",
        verifiers.len(),
        ms(&all, 0.5),
        ms(&all, 0.99),
        all.max() as f64 / 1000.0
    )?;
    writeln!(
        s,
        "| one verifier refuses (each of them) | {:.0} ms | {:.0} ms | {:.0} ms |\n",
        ms(&each, 0.5),
        ms(&each, 0.99),
        each.max() as f64 / 1000.0
    )?;
    Ok(s)
}

/// The memory a verifier holds for `args.revocations` live revocations:
/// events written straight into the feed, then a fresh verifier reads them
/// all; the heap it still holds once caught up (jemalloc's allocated bytes,
/// so freed buffers do not count), against a verifier that read none.
async fn memory(args: &SignalsArgs, db_url: &str, config: &Config) -> anyhow::Result<String> {
    let connect = || Verifier::connect(like(config));
    let before = allocated()?;
    let empty = connect().await?;
    let baseline = allocated()?.saturating_sub(before);
    let pool = sqlx::SqlitePool::connect(db_url).await?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros() as i64;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
         INSERT INTO security_events
             (tx, id, at, kind, subject_id, subject_kind, session_id, detail)
         SELECT 0, randomblob(16), $2, 'session-revoked', lower(hex(randomblob(16))), 'user',
                randomblob(16), '{\"reason\":\"logout\"}'
         FROM n",
    )
    .bind(args.revocations as i64)
    .bind(now)
    .execute(&pool)
    .await?;
    let started = Instant::now();
    let before = allocated()?;
    let full = connect().await?;
    let caught_up = started.elapsed();
    // Let in-flight pages and SETs be freed.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let grown = allocated()?.saturating_sub(before);
    let live = full.live_revocations();
    drop((empty, full));
    let mib = |b: usize| b as f64 / (1024.0 * 1024.0);
    let mut s = String::new();
    writeln!(
        s,
        "Memory: a verifier holding {live} live revocations (caught up in {:.1} s: every SET signed by the service and verified by the crate) holds {:.1} MiB of heap, one holding none {:.1} MiB: about {:.0} bytes a revocation ({:.1} MiB per 100,000).\n",
        caught_up.as_secs_f64(),
        mib(grown),
        mib(baseline),
        grown.saturating_sub(baseline) as f64 / live.max(1) as f64,
        mib(grown.saturating_sub(baseline)) * 100_000.0 / live.max(1) as f64
    )?;
    Ok(s)
}

/// Bytes the process's heap holds now.
fn allocated() -> anyhow::Result<usize> {
    tikv_jemalloc_ctl::epoch::advance().map_err(|e| anyhow::anyhow!("jemalloc: {e}"))?;
    tikv_jemalloc_ctl::stats::allocated::read().map_err(|e| anyhow::anyhow!("jemalloc: {e}"))
}
