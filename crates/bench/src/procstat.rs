//! Resource use of the services under test, read from `/proc`.

use crate::report::Resources;

/// CPU seconds (user + system) a process has used.
pub fn cpu_seconds(pid: u32) -> f64 {
    stat_cpu_seconds(&format!("/proc/{pid}/stat"))
}

/// CPU seconds used by the threads of `pid` whose name starts with `prefix`
/// (the Auth Service names its hashing threads `argon2-N`).
pub fn threads_cpu_seconds(pid: u32, prefix: &str) -> f64 {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return 0.0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .map(|t| stat_cpu_seconds(&t.path().join("stat").display().to_string()))
        .sum()
}

fn stat_cpu_seconds(path: &str) -> f64 {
    let Ok(stat) = std::fs::read_to_string(path) else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are 14 and 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // Linux reports in clock ticks of 1/100 s on every platform this runs on.
    (ticks(11) + ticks(12)) / 100.0
}

/// (current RSS, peak RSS) in MiB.
pub fn rss_mib(pid: u32) -> (f64, f64) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (0.0, 0.0);
    };
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (kib("VmRSS:") / 1024.0, kib("VmHWM:") / 1024.0)
}

/// The name prefix of the Auth Service's Argon2 threads.
const HASH_THREADS: &str = "argon2-";

/// Current RSS in MiB of (auth, user).
pub fn rss_now((auth, user): (u32, u32)) -> (f64, f64) {
    (rss_mib(auth).0, rss_mib(user).0)
}

/// CPU counters of both services at the start of a scenario.
pub struct Sample {
    pids: (u32, u32),
    cpu: (f64, f64),
    hashing: f64,
    at: std::time::Instant,
}

impl Sample {
    pub fn take(pids: (u32, u32)) -> Self {
        Self {
            pids,
            cpu: (cpu_seconds(pids.0), cpu_seconds(pids.1)),
            hashing: threads_cpu_seconds(pids.0, HASH_THREADS),
            at: std::time::Instant::now(),
        }
    }

    /// CPU used since the sample, and peak RSS so far.
    pub fn since(&self) -> Resources {
        let (a, u) = self.pids;
        Resources {
            auth_cpu: cpu_seconds(a) - self.cpu.0,
            user_cpu: cpu_seconds(u) - self.cpu.1,
            auth_peak_mib: rss_mib(a).1,
            user_peak_mib: rss_mib(u).1,
            hashing_cores: (threads_cpu_seconds(a, HASH_THREADS) - self.hashing)
                / self.at.elapsed().as_secs_f64().max(1e-9),
        }
    }
}
