//! The load generator: `concurrency` workers spread over `connections` HTTP/2
//! channels, each sending one request after another for a fixed time after a
//! warm-up; latencies go to HDR histograms, failures are counted by status code.

use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// One kind of request. `worker` identifies the caller, for per-worker state.
pub trait Operation: Send + Sync + 'static {
    fn call(&self, worker: usize, channel: Channel) -> BoxFuture<'_, Result<(), tonic::Code>>;
}

/// What a run measured.
#[derive(Debug, Clone)]
pub struct Stats {
    pub ok: u64,
    pub errors: BTreeMap<String, u64>,
    /// Latencies in microseconds.
    pub latency: Histogram<u64>,
    pub elapsed: Duration,
}

impl Stats {
    pub fn throughput(&self) -> f64 {
        self.ok as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    pub fn max_ms(&self) -> f64 {
        self.latency.max() as f64 / 1000.0
    }

    pub fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

fn histogram() -> Histogram<u64> {
    // 1 µs to 60 s at 3 significant digits: constant, valid bounds.
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

/// Runs `op` from `concurrency` workers over `channels` for `warmup + duration`,
/// recording only what completes after the warm-up (closed loop: each worker
/// sends its next request when the last one is answered).
pub async fn drive(
    channels: &[Channel],
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    op: Arc<dyn Operation>,
) -> Stats {
    drive_at(channels, concurrency, warmup, duration, op, None).await
}

/// Like [`drive`], but open loop at `rate` requests per second in total when
/// given: each worker sends on a fixed schedule, and latency counts from the
/// scheduled time, so a stall is not hidden by the requests it delayed
/// (no coordinated omission).
pub async fn drive_at(
    channels: &[Channel],
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
    op: Arc<dyn Operation>,
    rate: Option<f64>,
) -> Stats {
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let channel = channels[worker % channels.len()].clone();
        let op = op.clone();
        let interval = rate.map(|r| Duration::from_secs_f64(concurrency as f64 / r.max(1e-3)));
        workers.push(tokio::spawn(async move {
            let mut hist = histogram();
            let mut ok = 0u64;
            let mut errors: BTreeMap<String, u64> = BTreeMap::new();
            // Workers start spread over one interval, so sends do not bunch up.
            let mut scheduled =
                interval.map(|i| start + i.mul_f64(worker as f64 / concurrency as f64));
            loop {
                let t0 = match (scheduled, interval) {
                    (Some(at), Some(i)) => {
                        tokio::time::sleep_until(at.into()).await;
                        scheduled = Some(at + i);
                        at
                    }
                    _ => Instant::now(),
                };
                if t0 >= end {
                    break;
                }
                let result = op.call(worker, channel.clone()).await;
                let t1 = Instant::now();
                if t0 < measure_from || t1 > end {
                    continue;
                }
                match result {
                    Ok(()) => {
                        ok += 1;
                        let _ = hist.record((t1 - t0).as_micros().max(1) as u64);
                    }
                    Err(code) => *errors.entry(format!("{code:?}")).or_default() += 1,
                }
            }
            (ok, errors, hist)
        }));
    }
    let mut stats = Stats {
        ok: 0,
        errors: BTreeMap::new(),
        latency: histogram(),
        elapsed: duration,
    };
    for w in workers {
        if let Ok((ok, errors, hist)) = w.await {
            stats.ok += ok;
            for (k, v) in errors {
                *stats.errors.entry(k).or_default() += v;
            }
            let _ = stats.latency.add(&hist);
        }
    }
    stats
}
