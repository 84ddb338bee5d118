//! The load generator: `concurrency` workers spread over `connections` HTTP/2
//! channels, each sending one request after another for a fixed time after a
//! warm-up; latencies go to HDR histograms, failures are counted by status code.

use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
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

    /// Nothing measured yet.
    pub fn empty() -> Self {
        Self {
            ok: 0,
            errors: BTreeMap::new(),
            latency: histogram(),
            elapsed: Duration::ZERO,
        }
    }

    fn record(&mut self, latency: Duration, result: Result<(), tonic::Code>) {
        match result {
            Ok(()) => {
                self.ok += 1;
                let _ = self.latency.record(latency.as_micros().max(1) as u64);
            }
            Err(code) => *self.errors.entry(format!("{code:?}")).or_default() += 1,
        }
    }

    /// Adds another run's counts and time to these.
    pub fn absorb(&mut self, other: Stats) {
        self.ok += other.ok;
        for (k, v) in other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        let _ = self.latency.add(&other.latency);
        self.elapsed += other.elapsed;
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
    let start = Instant::now();
    let measure_from = start + warmup;
    let end = measure_from + duration;
    let mut workers = Vec::with_capacity(concurrency);
    for worker in 0..concurrency {
        let channel = channels[worker % channels.len()].clone();
        let op = op.clone();
        workers.push(tokio::spawn(async move {
            let mut tally = Stats::empty();
            loop {
                let t0 = Instant::now();
                if t0 >= end {
                    break;
                }
                let result = op.call(worker, channel.clone()).await;
                let t1 = Instant::now();
                if t0 >= measure_from && t1 <= end {
                    tally.record(t1 - t0, result);
                }
            }
            tally
        }));
    }
    let mut total = Stats::empty();
    for w in workers {
        if let Ok(t) = w.await {
            total.absorb(t);
        }
    }
    total.elapsed = duration;
    total
}

/// Open loop at `rate` requests per second: a pacing thread sends each request
/// at its scheduled time whatever the others are doing (request `i` goes out at
/// `start + i / rate`, as worker `i % workers` over channel `i % channels`), and
/// latency counts from the scheduled time, so neither a slow response nor a late
/// send is hidden (no coordinated omission). The schedule is kept on an OS thread
/// with `nanosleep` precision rather than on tokio's millisecond timer wheel,
/// which would otherwise add up to a millisecond of its own to every request.
/// At most `max_in_flight` requests are outstanding; beyond that the pacer waits
/// and the wait shows in the latencies. Only for scenarios without per-worker
/// state that two concurrent calls could share.
pub async fn drive_open(
    channels: &[Channel],
    workers: usize,
    warmup: Duration,
    duration: Duration,
    op: Arc<dyn Operation>,
    rate: f64,
    max_in_flight: usize,
) -> Stats {
    let runtime = tokio::runtime::Handle::current();
    let channels = channels.to_vec();
    let tally = Arc::new(Mutex::new(Stats::empty()));
    let in_flight = Arc::new(AtomicUsize::new(0));
    let interval = Duration::from_secs_f64(1.0 / rate.max(1e-3));
    let pacer = {
        let (tally, in_flight) = (tally.clone(), in_flight.clone());
        tokio::task::spawn_blocking(move || {
            let start = Instant::now();
            let measure_from = start + warmup;
            let end = measure_from + duration;
            for i in 0u64.. {
                let at = start + interval.mul_f64(i as f64);
                if at >= end {
                    break;
                }
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                while in_flight.load(Ordering::Acquire) >= max_in_flight {
                    std::thread::sleep(Duration::from_micros(50));
                }
                in_flight.fetch_add(1, Ordering::AcqRel);
                let worker = (i % workers.max(1) as u64) as usize;
                let channel = channels[(i % channels.len() as u64) as usize].clone();
                let (op, tally, in_flight) = (op.clone(), tally.clone(), in_flight.clone());
                runtime.spawn(async move {
                    let result = op.call(worker, channel).await;
                    let t1 = Instant::now();
                    if at >= measure_from
                        && t1 <= end
                        && let Ok(mut t) = tally.lock()
                    {
                        t.record(t1 - at, result);
                    }
                    in_flight.fetch_sub(1, Ordering::AcqRel);
                });
            }
        })
    };
    let _ = pacer.await;
    // Whatever is still outstanding finishes after `end` and is not counted,
    // but is waited for so that it does not leak into the next scenario.
    let give_up = Instant::now() + Duration::from_secs(10);
    while in_flight.load(Ordering::Acquire) > 0 && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let mut total = tally.lock().map_or_else(|_| Stats::empty(), |t| t.clone());
    total.elapsed = duration;
    total
}
