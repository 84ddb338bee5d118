//! `identity-bench scale`: every operation's latency on a near-empty database
//! and on one loaded the way a migrating platform loads it: users through the
//! real `auth-service import` (their profiles through the outbox relay), then
//! sessions, refresh tokens and audit events written straight in SQL, as
//! months of use would have left them. Also the import rate, the relay's
//! time, one pruning pass and the databases' sizes. Services and databases
//! are the bench's own (see [`crate::system`]); nothing here changes how the
//! services behave.

mod dataset;
mod db;
mod fixtures;
mod ops;
mod sample;
mod seed;
mod table;

use crate::system;
use anyhow::Context as _;
use dataset::{Filters, PASSWORD, person};
use db::Db;
use fixtures::{ADMIN_EMAIL, Cx, Endpoints};
use std::path::Path;
use std::time::{Duration, Instant};
use test_support::Backend;

/// `identity-bench scale`'s own flags (`--bin-dir` and `--markdown` are the
/// bench's).
#[derive(Debug, Clone, clap::Args)]
pub struct ScaleArgs {
    /// Users to load (the figure: 1000000).
    #[arg(long, default_value_t = 1_000_000)]
    pub users: u64,
    /// `sqlite`, `postgres` or `both`.
    #[arg(long, default_value = "both")]
    pub backend: String,
    /// Samples per operation (p50 and p99 are over these). Many, because a
    /// p99 of a sub-millisecond call on a shared machine is a handful of
    /// neighbours' hiccups: over 200 samples, three make it.
    #[arg(long, default_value_t = 1000)]
    pub samples: usize,
    /// Samples of the operations that hash a password (Login, Register).
    #[arg(long, default_value_t = 40)]
    pub hash_samples: usize,
    /// Longest one operation is sampled for: a slow one gets fewer samples.
    #[arg(long, default_value = "20s", value_parser = humantime::parse_duration)]
    pub budget: Duration,
    /// Sessions (each with a refresh token) per user.
    #[arg(long, default_value_t = 3)]
    pub sessions_per_user: u64,
    /// Audit events per user.
    #[arg(long, default_value_t = 10)]
    pub audit_per_user: u64,
    /// Sessions of the one user with many, for ListSessions.
    #[arg(long, default_value_t = 5000)]
    pub heavy_sessions: u64,
    /// Only the import rate: `--users` lines through `auth-service import`
    /// into a fresh database, with no service beside it.
    #[arg(long)]
    pub import_only: bool,
}

impl ScaleArgs {
    /// The smoke run: tiny, on SQLite, a few samples; it proves the scenario
    /// works, never a speed.
    pub fn smoke() -> Self {
        Self {
            users: 500,
            backend: "sqlite".into(),
            samples: 5,
            hash_samples: 2,
            budget: Duration::from_secs(5),
            sessions_per_user: 3,
            audit_per_user: 10,
            heavy_sessions: 50,
            import_only: false,
        }
    }
}

/// Users imported before the near-empty measurements: the "few users".
const FEW: u64 = 100;
/// Users of those who log in in the near-empty phase ([`dataset::knows_password`]).
const EMPTY_CALLERS: [u64; 4] = [7, 47, 67, 87];
/// The user with many sessions (one of the few, so both phases have it).
const HEAVY: u64 = 27;
/// The user whose names the narrow ListUsers filters are prefixes of.
const PIVOT: u64 = 3;
/// The stored hash of users who never log in: PBKDF2-SHA256 as Django writes
/// it (600,000 rounds), of a password nobody sends; imported, never verified.
const OTHER_HASH: &str =
    "pbkdf2_sha256$600000$identitybenchsalt$a9Km7TJm4npTQxXvvI+6IaZYHMcHBnuV0/K24U2Fo1U=";

/// Runs the scenario on each backend asked for; prints each report and
/// writes them all to `markdown`. Fails if any call failed.
pub async fn run(args: &ScaleArgs, bin_dir: &Path, markdown: Option<&Path>) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.users >= 2 * FEW,
        "--users must be at least {}",
        2 * FEW
    );
    let backends = match args.backend.as_str() {
        "sqlite" => vec![Backend::Sqlite],
        "postgres" => vec![Backend::Postgres],
        "both" => vec![Backend::Sqlite, Backend::Postgres],
        other => anyhow::bail!("unknown backend {other:?}: sqlite, postgres or both"),
    };
    let login_hash = login_hash()?;
    if args.import_only {
        let mut all = String::new();
        for backend in backends {
            all.push_str(&import_alone(args.users, backend, bin_dir, &login_hash).await?);
        }
        println!("{all}");
        if let Some(path) = markdown {
            std::fs::write(path, &all)?;
        }
        return Ok(());
    }
    let (mut all, mut failures) = (String::new(), 0);
    for backend in backends {
        let (report, failed) = one_backend(args, backend, bin_dir, &login_hash).await?;
        println!("{report}");
        all.push_str(&report);
        all.push('\n');
        failures += failed;
    }
    if let Some(path) = markdown {
        std::fs::write(path, &all)?;
    }
    anyhow::ensure!(failures == 0, "{failures} calls failed");
    Ok(())
}

/// The import on its own: `users` lines into a fresh database of `backend`
/// (migrations applied by the subcommand first), no service running; the
/// issue's import target is set on this.
async fn import_alone(
    users: u64,
    backend: Backend,
    bin_dir: &Path,
    login_hash: &str,
) -> anyhow::Result<String> {
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("users.jsonl");
    dataset::write_lines(&file, 0, users, login_hash, OTHER_HASH)?;
    let db = backend.fresh_database().await;
    let mut command = std::process::Command::new(bin_dir.join("auth-service"));
    command
        .args(["import", &file.display().to_string()])
        .env("AUTH_DATABASE_URL", &db.url)
        .env("RUST_LOG", "warn");
    eprintln!("scale: importing {users} users into {backend:?} alone ...");
    let started = Instant::now();
    let said = last_line(run_cli(&mut command).await?);
    let took = started.elapsed().as_secs_f64();
    Ok(format!(
        "- import alone, {backend:?}: {users} lines in {took:.1} s = {:.0} lines/s, the process from start to exit, migrations included (the CLI said: {said})\n",
        users as f64 / took
    ))
}

/// An Argon2id hash of [`PASSWORD`] with the service's own parameters, so an
/// imported user's login costs what a native user's does (no rehash).
fn login_hash() -> anyhow::Result<String> {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(19 * 1024, 2, 1, Some(32)).map_err(anyhow::Error::msg)?;
    let salt = SaltString::from_b64("aWRlbnRpdHliZW5jaHNjYWxl").map_err(anyhow::Error::msg)?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    Ok(argon
        .hash_password(PASSWORD.as_bytes(), &salt)
        .map_err(anyhow::Error::msg)?
        .to_string())
}

async fn one_backend(
    args: &ScaleArgs,
    backend: Backend,
    bin_dir: &Path,
    login_hash: &str,
) -> anyhow::Result<(String, usize)> {
    let logs = tempfile::tempdir()?;
    eprintln!("scale: starting both services on {backend:?} ...");
    let sys = system::start(bin_dir, backend, logs.path()).await?;
    let local = sys
        .local
        .clone()
        .context("the bench started these services")?;
    let (auth_db, user_db) = (
        Db::open(&local.auth_db_url).await?,
        Db::open(&local.user_db_url).await?,
    );
    let at = Endpoints {
        auth_url: &sys.auth_url,
        user_url: &sys.user_url,
        http_url: &local.auth_http_url,
    };
    let filters = Filters::choose(args.users, PIVOT);

    eprintln!("scale: {FEW} users and an administrator, then the near-empty measurements ...");
    let few = logs.path().join("few.jsonl");
    dataset::write_lines(&few, 0, FEW, login_hash, OTHER_HASH)?;
    run_import(&local, &few).await?;
    let mut admin = local.auth_command(&["create-admin", "--email", ADMIN_EMAIL]);
    run_cli(admin.env("AUTH_ADMIN_PASSWORD", PASSWORD)).await?;
    relayed(&auth_db, Instant::now()).await?;
    let targets = auth_db.random_users(200).await?;
    let cx = Cx::prepare(&at, &EMPTY_CALLERS, HEAVY, targets, filters.clone()).await?;
    let empty = measure(args, &cx, "empty").await;
    drop(cx);

    let mut facts = load(args, &local, &auth_db, login_hash, logs.path()).await?;
    for db in [&auth_db, &user_db] {
        db.settle(false).await?;
    }
    note(&mut facts, prune(&local).await?);
    // The pass deleted rows: vacuumed before measuring, as autovacuum would.
    for db in [&auth_db, &user_db] {
        db.settle(true).await?;
    }

    eprintln!("scale: the loaded measurements ...");
    let callers: Vec<u64> = (1..=4).map(|f| args.users * f / 5 / 20 * 20 + 7).collect();
    let targets = auth_db.random_users(200).await?;
    let cx = Cx::prepare(&at, &callers, HEAVY, targets, filters.clone()).await?;
    let loaded = measure(args, &cx, "loaded").await;
    drop(cx);

    facts.push(format!(
        "ListUsers filters: exact `{}`, narrow `{}` and `{}` (prefixes of one user's names matching about ten of the {} users), broad `{}` and `{}`",
        filters.exact, filters.username_narrow, filters.name_narrow, args.users, filters.username_broad, filters.name_broad
    ));
    facts.extend(contents(&auth_db, &user_db).await?);
    let rows: Vec<table::Row> = ops::ALL
        .iter()
        .zip(empty)
        .zip(loaded)
        .map(|((op, empty), loaded)| table::Row {
            op: *op,
            empty,
            loaded,
        })
        .collect();
    let failed = rows.iter().map(table::Row::failures).sum();
    let title = format!("Scale: {backend:?}, {} users", args.users);
    Ok((table::markdown(&title, &rows, &facts), failed))
}

async fn measure(args: &ScaleArgs, cx: &Cx, phase: &str) -> Vec<sample::Outcome> {
    let (n, h, b) = (args.samples, args.hash_samples, args.budget);
    sample::measure_all(&ops::ALL, cx, n, h, b, phase).await
}

/// Imports the rest of the users, waits for their profiles, seeds sessions,
/// refresh tokens and audit events; what each step took.
async fn load(
    args: &ScaleArgs,
    local: &system::Local,
    auth_db: &Db,
    login_hash: &str,
    dir: &Path,
) -> anyhow::Result<Vec<String>> {
    let n = args.users - FEW;
    eprintln!("scale: importing {n} users ...");
    let file = dir.join("users.jsonl");
    dataset::write_lines(&file, FEW, args.users, login_hash, OTHER_HASH)?;
    let started = Instant::now();
    let said = run_import(local, &file).await?;
    let import = started.elapsed().as_secs_f64();
    eprintln!("scale: waiting for the relay ...");
    let relay = relayed(auth_db, started).await?;
    let mut facts = Vec::new();
    note(
        &mut facts,
        format!(
            "import: {n} lines in {import:.1} s = {:.0} lines/s (the CLI said: {said})",
            n as f64 / import
        ),
    );
    note(
        &mut facts,
        format!(
            "relay: the last profile reached the User Service {relay:.1} s after the import began ({:.1} s after it ended) = {:.0} profiles/s",
            relay - import,
            n as f64 / relay
        ),
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_micros() as i64;
    let d = auth_db.dialect;
    let heavy = person(HEAVY).email;
    let steps = [
        (
            "sessions",
            d.sessions(now, args.sessions_per_user, 31, None),
        ),
        (
            "sessions of the user with many",
            d.sessions(now, args.heavy_sessions, 30, Some(&heavy)),
        ),
        ("refresh tokens", d.refresh_tokens()),
        (
            "audit events",
            d.audit_events(now, args.audit_per_user, 366),
        ),
    ];
    for (what, sql) in steps {
        eprintln!("scale: seeding {what} ...");
        let t = Instant::now();
        // The services' pruning pass may delete a seeded session (a revoked
        // one, say) while the refresh tokens are written for it: the
        // statement fails whole and is run again.
        let mut attempt = 1;
        let rows = loop {
            match auth_db.execute(&sql).await {
                Ok(rows) => break rows,
                Err(e) if attempt < 3 => {
                    eprintln!("  seeding {what} failed ({e:#}); again");
                    attempt += 1;
                    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                }
                Err(e) => return Err(e).with_context(|| format!("seeding {what}")),
            }
        };
        let took = t.elapsed().as_secs_f64();
        note(
            &mut facts,
            format!("seeded {rows} {what} in SQL in {took:.1} s"),
        );
    }
    Ok(facts)
}

/// Keeps a figure for the report and shows it now, as the run goes.
fn note(facts: &mut Vec<String>, fact: String) {
    eprintln!("  {fact}");
    facts.push(fact);
}

/// Runs an `auth-service` subcommand to the end; its standard output, or an
/// error with its standard error.
async fn run_cli(command: &mut std::process::Command) -> anyhow::Result<(String, String)> {
    // The import can take minutes: off the async workers, like any blocking wait.
    let out = tokio::task::block_in_place(|| command.output())?;
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    );
    anyhow::ensure!(out.status.success(), "auth-service failed: {stderr}");
    Ok((stdout, stderr))
}

/// `auth-service import FILE`; its closing line (counts and rate).
async fn run_import(local: &system::Local, file: &Path) -> anyhow::Result<String> {
    let path = file.display().to_string();
    Ok(last_line(
        run_cli(&mut local.auth_command(&["import", &path])).await?,
    ))
}

/// The closing line a subcommand wrote on standard error.
fn last_line((_, stderr): (String, String)) -> String {
    stderr.lines().last().unwrap_or_default().trim().to_owned()
}

/// Seconds from `since` until no registration waits in the outbox; fails if
/// the backlog stops shrinking for two minutes.
async fn relayed(auth_db: &Db, since: Instant) -> anyhow::Result<f64> {
    const STALL: Duration = Duration::from_secs(120);
    let backlog =
        "SELECT count(*) FROM outbox WHERE delivered_at IS NULL AND topic = 'user.registered'";
    let (mut last, mut moved) = (i64::MAX, Instant::now());
    loop {
        let left = auth_db.number(backlog).await?;
        if left == 0 {
            return Ok(since.elapsed().as_secs_f64());
        }
        if left < last {
            (last, moved) = (left, Instant::now());
        }
        anyhow::ensure!(
            moved.elapsed() < STALL,
            "the relay is stuck: {left} profiles undelivered"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// One `auth-service prune` pass: its time and what it deleted.
async fn prune(local: &system::Local) -> anyhow::Result<String> {
    eprintln!("scale: one pruning pass ...");
    let t = Instant::now();
    let (stdout, _) = run_cli(&mut local.auth_command(&["prune"])).await?;
    let wall = t.elapsed().as_secs_f64();
    let said: serde_json::Map<String, serde_json::Value> = serde_json::from_str(stdout.trim())?;
    let seconds = said
        .get("seconds")
        .and_then(|s| s.as_f64())
        .unwrap_or_default();
    let deleted: Vec<String> = said
        .iter()
        .filter(|(k, v)| *k != "seconds" && v.as_u64() != Some(0))
        .map(|(k, v)| format!("{v} {k}"))
        .collect();
    Ok(format!(
        "pruning pass: {seconds:.2} s (the process, start to exit: {wall:.2} s); deleted {}",
        match deleted.is_empty() {
            true => "nothing".to_owned(),
            false => deleted.join(", "),
        }
    ))
}

/// Row counts and sizes of both databases.
async fn contents(auth_db: &Db, user_db: &Db) -> anyhow::Result<Vec<String>> {
    let mut counts = Vec::new();
    for table in [
        "identities",
        "sessions",
        "refresh_tokens",
        "audit_events",
        "outbox",
    ] {
        counts.push(format!("{table} {}", auth_db.count(table).await?));
    }
    counts.push(format!(
        "users (User Service) {}",
        user_db.count("users").await?
    ));
    let mut facts = vec![format!("rows: {}", counts.join(", "))];
    for (name, db) in [("Auth Service", auth_db), ("User Service", user_db)] {
        let (files, largest) = db.sizes().await?;
        let mib = |b: u64| format!("{:.1} MiB", b as f64 / (1 << 20) as f64);
        let total: Vec<String> = files
            .iter()
            .map(|(f, b)| format!("{f} {}", mib(*b)))
            .collect();
        let parts: Vec<String> = largest
            .iter()
            .map(|(t, b)| format!("{t} {}", mib(*b)))
            .collect();
        facts.push(format!(
            "{name} database: {}{}",
            total.join(" + "),
            match parts.is_empty() {
                true => String::new(),
                false => format!(" (largest: {})", parts.join(", ")),
            }
        ));
    }
    Ok(facts)
}
