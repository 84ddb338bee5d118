//! Named, supervised background tasks (pollers, relays, key rotation). A task
//! runs until shutdown; if it ends before that (an error, a panic, or a plain
//! return) the exit is logged with the task's name and the task is started
//! again after a backoff. A replica whose revocation poller died would
//! otherwise go on serving stale revocations without a word.

use std::future::Future;
use std::time::Duration;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;

/// A task that ran this long without failing starts its next backoff afresh.
/// Rows a pruning statement deletes at most, so that no table is locked long.
pub const PRUNE_BATCH: i64 = 1000;

/// Runs `batch` (deleting at most [`PRUNE_BATCH`] rows) until a batch deletes
/// fewer; returns the total.
pub async fn in_batches<F, Fut, E>(mut batch: F) -> Result<u64, E>
where
    F: FnMut(i64) -> Fut,
    Fut: Future<Output = Result<u64, E>>,
{
    let mut total = 0;
    loop {
        let n = batch(PRUNE_BATCH).await?;
        total += n;
        if n < PRUNE_BATCH as u64 {
            return Ok(total);
        }
        // Let requests waiting for the database in between.
        tokio::task::yield_now().await;
    }
}

const HEALTHY_RUN: Duration = Duration::from_secs(60);

/// The background tasks of one process, stopped by one cancellation token.
#[derive(Debug)]
pub struct Supervisor {
    shutdown: CancellationToken,
    tasks: Vec<(&'static str, JoinHandle<()>)>,
    min_backoff: Duration,
    max_backoff: Duration,
}

impl Supervisor {
    /// Tasks restarted after 1 s, doubling up to 30 s while they keep failing.
    pub fn new(shutdown: CancellationToken) -> Self {
        Self::with_backoff(shutdown, Duration::from_secs(1), Duration::from_secs(30))
    }

    /// A supervisor with its own restart backoff (tests).
    pub fn with_backoff(shutdown: CancellationToken, min: Duration, max: Duration) -> Self {
        Self {
            shutdown,
            tasks: Vec::new(),
            min_backoff: min,
            max_backoff: max.max(min),
        }
    }

    /// Runs the task `start` makes (given the shutdown token) until shutdown,
    /// restarting it whenever it ends before then.
    // The one place a long-running task starts: here it is named, restarted and joined.
    #[allow(clippy::disallowed_methods)]
    pub fn spawn<F, Fut>(&mut self, name: &'static str, start: F)
    where
        F: Fn(CancellationToken) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: TaskExit + Send + 'static,
    {
        let shutdown = self.shutdown.clone();
        let (min, max) = (self.min_backoff, self.max_backoff);
        let handle = tokio::spawn(async move {
            let mut backoff = min;
            loop {
                let started = crate::clock::monotonic_now();
                let outcome = tokio::spawn(start(shutdown.clone()))
                    .await
                    .map(TaskExit::failure);
                if shutdown.is_cancelled() {
                    report_stop(name, outcome);
                    return;
                }
                match outcome {
                    Ok(None) => tracing::error!(task = name, "background task exited early"),
                    Ok(Some(e)) => {
                        tracing::error!(task = name, error = %e, "background task failed")
                    }
                    Err(e) => {
                        tracing::error!(task = name, panic = %panic_message(e), "background task panicked")
                    }
                }
                if started.elapsed() >= HEALTHY_RUN {
                    backoff = min;
                }
                tracing::warn!(task = name, restart_in = ?backoff, "restarting background task");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(max);
            }
        });
        self.tasks.push((name, handle));
    }

    /// Runs `tick` every `interval` until shutdown, supervised as `name`; a failed
    /// tick is logged and retried at the next one.
    pub fn every<F, Fut, E>(&mut self, name: &'static str, interval: Duration, tick: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: std::fmt::Display + Send + 'static,
    {
        let tick = std::sync::Arc::new(tick);
        self.spawn(name, move |stop| {
            let tick = tick.clone();
            every(interval, stop, name, move || tick())
        });
    }

    /// Waits for every task to stop (after the shutdown token is cancelled).
    pub async fn join(self) {
        for (name, handle) in self.tasks {
            if let Err(e) = handle.await {
                tracing::error!(task = name, panic = %panic_message(e), "supervisor panicked");
            }
        }
    }
}

/// One-off jobs a request starts and does not wait for (a password reset's
/// lookup and mail, a batch of reads), owned by whoever starts them and joined
/// at shutdown, so none is cut off unseen. At most `limit` run at once.
#[derive(Debug, Clone)]
pub struct Jobs {
    set: std::sync::Arc<parking_lot::Mutex<tokio::task::JoinSet<()>>>,
    limit: usize,
}

impl Jobs {
    /// Jobs of which at most `limit` run at once.
    pub fn new(limit: usize) -> Self {
        Self {
            set: std::sync::Arc::default(),
            limit,
        }
    }

    /// Starts `job`, named `name` in the log if it panics; false (and `job`
    /// dropped) when `limit` jobs are already running.
    // The one place a one-off job starts: here it is bounded and joined.
    #[allow(clippy::disallowed_methods)]
    pub fn spawn<F>(&self, name: &'static str, job: F) -> bool
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let mut set = self.set.lock();
        while let Some(done) = set.try_join_next() {
            report_job(name, done);
        }
        if set.len() >= self.limit {
            tracing::warn!(
                job = name,
                limit = self.limit,
                "too many jobs running; one dropped"
            );
            return false;
        }
        set.spawn(job);
        true
    }

    /// Waits up to `within` for the running jobs (at shutdown).
    pub async fn join(&self, within: Duration) {
        let mut set = std::mem::take(&mut *self.set.lock());
        let all = async {
            while let Some(done) = set.join_next().await {
                report_job("job", done);
            }
        };
        if tokio::time::timeout(within, all).await.is_err() {
            tracing::warn!("jobs still running at shutdown; abandoned");
        }
    }
}

fn report_job(name: &'static str, done: Result<(), JoinError>) {
    if let Err(e) = done {
        tracing::error!(job = name, panic = %panic_message(e), "job panicked");
    }
}

/// Runs `tick` every `interval` until `shutdown`; a failed tick is logged as
/// `what` and retried at the next one.
async fn every<F, Fut, E>(
    interval: std::time::Duration,
    shutdown: CancellationToken,
    what: &'static str,
    mut tick: F,
) where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
    E: std::fmt::Display,
{
    let mut timer = tokio::time::interval(interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = timer.tick() => {
                if let Err(e) = tick().await {
                    tracing::warn!(error = %e, "{what} failed; retrying");
                }
            }
        }
    }
}

/// How a task ended: a plain return, or a result whose error is reported.
pub trait TaskExit {
    /// What went wrong, if anything.
    fn failure(self) -> Option<String>;
}

impl TaskExit for () {
    fn failure(self) -> Option<String> {
        None
    }
}

impl<E: std::fmt::Display> TaskExit for Result<(), E> {
    fn failure(self) -> Option<String> {
        self.err().map(|e| e.to_string())
    }
}

fn report_stop(name: &'static str, outcome: Result<Option<String>, JoinError>) {
    match outcome {
        Ok(None) => tracing::debug!(task = name, "background task stopped"),
        Ok(Some(e)) => {
            tracing::warn!(task = name, error = %e, "background task failed while stopping")
        }
        Err(e) => {
            tracing::error!(task = name, panic = %panic_message(e), "background task panicked while stopping")
        }
    }
}

fn panic_message(e: JoinError) -> String {
    match e.try_into_panic() {
        Ok(payload) => payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_owned()),
        Err(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test]
    async fn a_task_that_panics_or_fails_is_restarted_until_shutdown() {
        let shutdown = CancellationToken::new();
        let mut tasks = Supervisor::with_backoff(
            shutdown.clone(),
            Duration::from_millis(5),
            Duration::from_millis(20),
        );
        let starts = Arc::new(AtomicUsize::new(0));
        let counted = starts.clone();
        tasks.spawn("flaky", move |stop: CancellationToken| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                match n {
                    0 => panic!("first run panics"),
                    1 => Err("second run fails"),
                    2 => Ok(()),
                    _ => {
                        stop.cancelled().await;
                        Ok(())
                    }
                }
            }
        });
        let deadline = crate::clock::monotonic_now() + Duration::from_secs(5);
        while starts.load(Ordering::SeqCst) < 4 && crate::clock::monotonic_now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert_eq!(
            starts.load(Ordering::SeqCst),
            4,
            "restarted after panic, error and early exit"
        );
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), tasks.join())
            .await
            .expect("joins after shutdown");
        assert_eq!(
            starts.load(Ordering::SeqCst),
            4,
            "not restarted after shutdown"
        );
    }
}
