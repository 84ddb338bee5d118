//! Latency of each operation: sequential calls (one in flight, so a call's
//! time is its own, not a queue's), a few unmeasured first, then up to a
//! number of samples or a time budget per operation, whichever ends first.

use super::fixtures::Cx;
use super::ops::{Op, Page};
use std::time::{Duration, Instant};

/// Fewest samples kept even past the budget.
const MIN_SAMPLES: usize = 3;
/// Unmeasured first calls of an operation that does not hash.
const WARMUP: usize = 3;

/// What sampling one operation gave.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Latencies in ms, sorted.
    Measured(Vec<f64>),
    /// A later page was asked for and the first page was the last.
    NoPage,
    /// Calls failed: how many, and the first error.
    Failed(usize, String),
}

impl Outcome {
    /// The `q` quantile in ms (nearest rank).
    pub fn quantile(&self, q: f64) -> Option<f64> {
        match self {
            Outcome::Measured(ms) if !ms.is_empty() => {
                let rank = ((q * ms.len() as f64).ceil() as usize).clamp(1, ms.len());
                Some(ms[rank - 1])
            }
            _ => None,
        }
    }

    pub fn samples(&self) -> usize {
        match self {
            Outcome::Measured(ms) => ms.len(),
            _ => 0,
        }
    }
}

/// The token of the page a later-page operation asks for (the first page's
/// `next_page_token`); empty for the others.
async fn later_page(op: Op, cx: &Cx) -> Result<String, Outcome> {
    match op.page() {
        Some(Page::Later) => match op.call(cx, 0, "").await {
            Ok(next) if next.is_empty() => Err(Outcome::NoPage),
            Ok(next) => Ok(next),
            Err(e) => Err(Outcome::Failed(1, e)),
        },
        _ => Ok(String::new()),
    }
}

/// Times `op` up to `samples` times within `budget`, all its calls in a row
/// (after one unmeasured).
async fn measure(op: Op, cx: &Cx, samples: usize, budget: Duration) -> Outcome {
    let mut sampler = match Sampler::start(op, cx, samples, 1).await {
        Ok(sampler) => sampler,
        Err(outcome) => return outcome,
    };
    while !sampler.done(budget) {
        sampler.call(cx).await;
    }
    sampler.finish()
}

/// Every operation, each row on standard error once it is done. The ones that
/// hash a password are timed first, one after another (Argon2 dominates them,
/// and its memory traffic would leak into its neighbours' samples). The rest
/// are timed in rounds, one call of each per round, so a stall of the machine
/// (a checkpoint, autovacuum, a neighbour on the shared vCPUs) lands on a
/// sample of every operation instead of the tail of whichever one ran then.
pub async fn measure_all(
    ops: &[Op],
    cx: &Cx,
    samples: usize,
    hash_samples: usize,
    budget: Duration,
    phase: &str,
) -> Vec<Outcome> {
    let mut out: Vec<Option<Outcome>> = vec![None; ops.len()];
    for (slot, op) in out.iter_mut().zip(ops).filter(|(_, op)| op.hashes()) {
        let outcome = measure(*op, cx, hash_samples, budget).await;
        show(phase, *op, &outcome);
        *slot = Some(outcome);
    }
    let mut running = Vec::new();
    for (index, op) in ops.iter().enumerate().filter(|(_, op)| !op.hashes()) {
        match Sampler::start(*op, cx, samples, WARMUP).await {
            Ok(sampler) => running.push((index, sampler)),
            Err(outcome) => {
                show(phase, *op, &outcome);
                out[index] = Some(outcome);
            }
        }
    }
    while !running.is_empty() {
        for (_, sampler) in running.iter_mut() {
            sampler.call(cx).await;
        }
        let (done, rest): (Vec<_>, Vec<_>) = running
            .into_iter()
            .partition(|(_, sampler)| sampler.done(budget));
        for (index, sampler) in done {
            let outcome = sampler.finish();
            show(phase, ops[index], &outcome);
            out[index] = Some(outcome);
        }
        running = rest;
    }
    out.into_iter()
        .map(|o| o.unwrap_or(Outcome::Failed(1, "not measured".into())))
        .collect()
}

/// One operation being timed in rounds: its page token, and what it has so far.
struct Sampler {
    op: Op,
    token: String,
    calls: usize,
    wanted: usize,
    ms: Vec<f64>,
    spent: Duration,
    errors: usize,
    first_error: Option<String>,
}

impl Sampler {
    /// Fetches the later page's token and makes the unmeasured first calls;
    /// the outcome instead when there is nothing to time.
    async fn start(op: Op, cx: &Cx, wanted: usize, warmup: usize) -> Result<Self, Outcome> {
        let token = later_page(op, cx).await?;
        let mut sampler = Self {
            op,
            token,
            calls: 0,
            wanted,
            ms: Vec::with_capacity(wanted),
            spent: Duration::ZERO,
            errors: 0,
            first_error: None,
        };
        for _ in 0..warmup {
            sampler.call(cx).await;
        }
        sampler.ms.clear();
        sampler.spent = Duration::ZERO;
        Ok(sampler)
    }

    async fn call(&mut self, cx: &Cx) {
        let t0 = Instant::now();
        let result = self.op.call(cx, self.calls, &self.token).await;
        let took = t0.elapsed();
        self.calls += 1;
        self.spent += took;
        match result {
            Ok(_) => self.ms.push(took.as_secs_f64() * 1000.0),
            Err(e) => {
                self.errors += 1;
                self.first_error.get_or_insert(e);
            }
        }
    }

    /// Enough samples, or its share of time spent (past the fewest kept), or
    /// a failure (one is enough to make the row a failure).
    fn done(&self, budget: Duration) -> bool {
        self.errors > 0
            || self.ms.len() >= self.wanted
            || (self.ms.len() >= MIN_SAMPLES && self.spent > budget)
    }

    fn finish(mut self) -> Outcome {
        if let Some(e) = self.first_error {
            return Outcome::Failed(self.errors, e);
        }
        self.ms.sort_by(f64::total_cmp);
        Outcome::Measured(self.ms)
    }
}

fn show(phase: &str, op: Op, outcome: &Outcome) {
    let shown = match (outcome, outcome.quantile(0.5), outcome.quantile(0.99)) {
        (_, Some(p50), Some(p99)) => format!("p50 {p50:.2} ms, p99 {p99:.2} ms"),
        (Outcome::Failed(n, e), ..) => format!("{n} failed: {e}"),
        _ => "no later page".to_owned(),
    };
    eprintln!("    {phase} / {}: {shown}", op.name());
}
