//! The measurements of one system under test: each scenario against its
//! ceiling, the latency at half the echo rate, and validation during a login
//! storm; each gives table rows, which carry their failed requests.

use crate::load::{Operation, drive};
use crate::report::Row;
use crate::scenarios::{Fixtures, Scenario};
use crate::{Cli, ceilings, latency, procstat, system};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// Alternating open-loop trials per system for the half-load latency.
const LATENCY_TRIALS: usize = 5;

/// One system under test, set up and idle.
pub struct Backend<'a> {
    pub cli: &'a Cli,
    pub cores: usize,
    /// What the table calls it.
    pub label: String,
    pub pids: Option<(u32, u32)>,
    pub auth: Vec<Channel>,
    pub users: Vec<Channel>,
    pub fixtures: Arc<Fixtures>,
    /// RSS (auth, user) after set-up and idleness.
    pub idle: Option<(f64, f64)>,
    pub echo_rate: f64,
}

impl Backend<'_> {
    fn scenario_op(&self, name: &'static str) -> Arc<Scenario> {
        Arc::new(Scenario {
            name,
            fixtures: self.fixtures.clone(),
        })
    }

    /// `name` closed loop, divided by the echo ceiling, or for hashing
    /// scenarios by Argon2 ceilings measured just before and after: Argon2
    /// throughput moves with the neighbours' memory traffic on a shared host
    /// (it has measured 56 and 120 hashes/s an hour apart).
    pub async fn scenario(&self, name: &'static str) -> Row {
        let cli = self.cli;
        eprintln!("  {} / {name} ...", self.label);
        let scenario = self.scenario_op(name);
        let targets = if scenario.targets_users() {
            &self.users
        } else {
            &self.auth
        };
        let hashing = matches!(name, "login" | "register");
        let argon_before = hashing.then(|| argon2_now(self.cores, cli));
        let before = self.pids.map(procstat::Sample::take);
        let stats = drive(targets, cli.concurrency, cli.warmup, cli.duration, scenario).await;
        let resources = before.map(|b| b.since());
        let (ceiling, note) = match argon_before {
            Some(b) => {
                let a = argon2_now(self.cores, cli);
                let busy = resources.map_or(String::new(), |r| {
                    format!(
                        "; hashing threads busy {:.2} of {} cores",
                        r.hashing_cores, self.cores
                    )
                });
                (
                    (b + a) / 2.0,
                    format!("Argon2 ceiling {b:.1} before, {a:.1} after{busy}"),
                )
            }
            None => (self.echo_rate, String::new()),
        };
        let mut row = Row::new(
            &self.label,
            name,
            &stats,
            Some(ceiling),
            resources,
            self.idle,
        );
        row.note = note;
        row
    }

    /// Latency at half the echo ceiling's throughput, open loop, in trials
    /// alternating with the echo server so that both meet the same noise.
    pub async fn half_load(&self, echo: &system::Echo) -> Vec<Row> {
        let cli = self.cli;
        eprintln!("  {} / validate at half the echo rate ...", self.label);
        let validate: Arc<dyn Operation> = self.scenario_op("validate");
        let rate = self.echo_rate / 2.0;
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
                channels: &echo.channels,
                op: echo.op.clone(),
            },
            &latency::Target {
                channels: &self.auth,
                op: validate,
            },
            cli.concurrency,
            rate,
            trials,
            each,
        )
        .await;
        [("echo", &e, None), ("validate", &v, Some(self.echo_rate))]
            .into_iter()
            .map(|(who, t, ceiling)| {
                let scenario = format!("{who} at 50 % of echo rate");
                let mut row = Row::new(&self.label, &scenario, &t.pooled, ceiling, None, self.idle);
                row.note = t.note(rate);
                row
            })
            .collect()
    }

    /// Validation while a login storm saturates the hash pool, against the
    /// idle validation p99.
    pub async fn storm(&self, idle_p99: f64) -> Row {
        let cli = self.cli;
        eprintln!("  {} / validate during a login storm ...", self.label);
        let half = (cli.concurrency / 2).max(1);
        let (during, logins) = tokio::join!(
            drive(
                &self.auth,
                half,
                cli.warmup,
                cli.duration,
                self.scenario_op("validate")
            ),
            drive(
                &self.auth,
                half,
                cli.warmup,
                cli.duration,
                self.scenario_op("login")
            ),
        );
        let mut row = Row::new(
            &self.label,
            "validate during login storm",
            &during,
            Some(self.echo_rate),
            None,
            self.idle,
        );
        // The storm's own failures count too, though only validation is shown.
        row.failed += logins.error_count();
        row.note = format!(
            "p99 {:.2}x idle p99; storm {:.0} logins/s",
            row.p99 / idle_p99.max(1e-9),
            logins.throughput()
        );
        row
    }
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
