//! Latency of one operation: sequential calls (one in flight, so a call's
//! time is its own, not a queue's), a few unmeasured first, then up to a
//! number of samples or a time budget, whichever ends first.

use super::fixtures::Cx;
use super::ops::{Op, Page};
use std::time::{Duration, Instant};

/// Fewest samples kept even past the budget.
const MIN_SAMPLES: usize = 3;

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

/// Times `op` up to `samples` times within `budget`.
pub async fn measure(op: Op, cx: &Cx, samples: usize, budget: Duration) -> Outcome {
    let token = match op.page() {
        Some(Page::Later) => match op.call(cx, 0, "").await {
            Ok(next) if next.is_empty() => return Outcome::NoPage,
            Ok(next) => next,
            Err(e) => return Outcome::Failed(1, e),
        },
        _ => String::new(),
    };
    let warmup = if op.hashes() { 1 } else { 3 };
    let (mut ms, mut errors, mut first_error) = (Vec::with_capacity(samples), 0, None);
    let started = Instant::now();
    for i in 0..warmup + samples {
        if i >= warmup + MIN_SAMPLES && started.elapsed() > budget {
            break;
        }
        let t0 = Instant::now();
        let result = op.call(cx, i, &token).await;
        let took = t0.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(_) if i >= warmup => ms.push(took),
            Ok(_) => {}
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(e);
            }
        }
    }
    if let Some(e) = first_error {
        return Outcome::Failed(errors, e);
    }
    ms.sort_by(f64::total_cmp);
    Outcome::Measured(ms)
}

/// Every operation in order, each row as it comes on standard error.
pub async fn measure_all(
    ops: &[Op],
    cx: &Cx,
    samples: usize,
    hash_samples: usize,
    budget: Duration,
    phase: &str,
) -> Vec<Outcome> {
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        let n = if op.hashes() { hash_samples } else { samples };
        let outcome = measure(*op, cx, n, budget).await;
        let shown = match (&outcome, outcome.quantile(0.5), outcome.quantile(0.99)) {
            (_, Some(p50), Some(p99)) => format!("p50 {p50:.2} ms, p99 {p99:.2} ms"),
            (Outcome::Failed(n, e), ..) => format!("{n} failed: {e}"),
            _ => "no later page".to_owned(),
        };
        eprintln!("    {phase} / {}: {shown}", op.name());
        out.push(outcome);
    }
    out
}
