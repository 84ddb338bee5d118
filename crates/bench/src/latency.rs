//! Tail latency at a fixed load, measured fairly on a shared machine whose
//! neighbours come and go: short open-loop trials of the echo server and of the
//! service, alternated, so that both see the same noise; the p99 of each trial is
//! kept and the median across trials reported next to the pooled figures.

use crate::load::{Operation, Stats, drive_open};
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// Outstanding requests an open-loop run allows before its pacer waits: far
/// above what a healthy service at half load ever has.
const MAX_IN_FLIGHT: usize = 4096;

/// Unmeasured start of every trial (connections warm, pacer settled).
const TRIAL_WARMUP: Duration = Duration::from_millis(300);

/// One side of a comparison: where to send, and what.
pub struct Target<'a> {
    pub channels: &'a [Channel],
    pub op: Arc<dyn Operation>,
}

/// Pooled statistics of one side's trials, and each trial's p99 in ms.
pub struct Trials {
    pub pooled: Stats,
    pub p99s: Vec<f64>,
}

impl Trials {
    /// The median of the trials' p99s.
    pub fn median_p99(&self) -> f64 {
        let mut v = self.p99s.clone();
        v.sort_by(f64::total_cmp);
        match v.len() {
            0 => 0.0,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    /// A note for the table: the rate, the median p99 and every trial's.
    pub fn note(&self, rate: f64) -> String {
        let each: Vec<String> = self.p99s.iter().map(|p| format!("{p:.2}")).collect();
        format!(
            "open loop at {rate:.0} req/s; median p99 of {} trials {:.2} ms ({})",
            self.p99s.len(),
            self.median_p99(),
            each.join(", ")
        )
    }
}

/// Runs `trials` alternating trials of `echo` and `service` at `rate` req/s,
/// `each` long after a short warm-up.
pub async fn paired(
    echo: &Target<'_>,
    service: &Target<'_>,
    workers: usize,
    rate: f64,
    trials: usize,
    each: Duration,
) -> (Trials, Trials) {
    let mut out = (Vec::new(), Vec::new());
    for _ in 0..trials.max(1) {
        for (target, into) in [(echo, &mut out.0), (service, &mut out.1)] {
            let stats = drive_open(
                target.channels,
                workers,
                TRIAL_WARMUP,
                each,
                target.op.clone(),
                rate,
                MAX_IN_FLIGHT,
            )
            .await;
            into.push(stats);
        }
    }
    (pool(out.0), pool(out.1))
}

fn pool(runs: Vec<Stats>) -> Trials {
    let p99s = runs.iter().map(|s| s.quantile_ms(0.99)).collect();
    let mut iter = runs.into_iter();
    let mut pooled = iter.next().unwrap_or_else(Stats::empty);
    for s in iter {
        pooled.absorb(s);
    }
    Trials { pooled, p99s }
}
