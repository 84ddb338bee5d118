//! The results table, printed and written as Markdown.

use crate::load::Stats;

/// CPU and memory of the services during one scenario.
#[derive(Debug, Clone, Copy)]
pub struct Resources {
    pub auth_cpu: f64,
    pub user_cpu: f64,
    pub auth_peak_mib: f64,
    pub user_peak_mib: f64,
    /// Cores the Auth Service's hashing threads kept busy on average.
    pub hashing_cores: f64,
}

/// One line of the table.
#[derive(Debug, Clone)]
pub struct Row {
    pub backend: String,
    pub scenario: String,
    pub rate: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub errors: String,
    /// Failed requests behind the row (the bench fails when any row has some).
    pub failed: u64,
    pub ratio: Option<f64>,
    pub resources: Option<Resources>,
    pub idle_mib: Option<(f64, f64)>,
    pub note: String,
}

impl Row {
    pub fn new(
        backend: &str,
        scenario: &str,
        s: &Stats,
        ceiling: Option<f64>,
        resources: Option<Resources>,
        idle_mib: Option<(f64, f64)>,
    ) -> Self {
        let errors = if s.errors.is_empty() {
            "0".to_owned()
        } else {
            s.errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Self {
            backend: backend.to_owned(),
            scenario: scenario.to_owned(),
            rate: s.throughput(),
            p50: s.quantile_ms(0.5),
            p90: s.quantile_ms(0.9),
            p99: s.quantile_ms(0.99),
            p999: s.quantile_ms(0.999),
            max: s.max_ms(),
            errors,
            failed: s.error_count(),
            ratio: ceiling.filter(|c| *c > 0.0).map(|c| s.throughput() / c),
            resources,
            idle_mib,
            note: String::new(),
        }
    }
}

/// The Markdown table with its context.
pub fn markdown(rows: &[Row], cores: usize, run: &str) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "Ceilings: Argon2id (19 MiB, t=2, p=1) hashes/s on {cores} cores, measured just before and after `login` and `register` (their note; they are divided by the mean); gRPC echo: the `echo ceiling` row.\n\nRun: {run}.\n\n"
    ));
    out.push_str("| backend | scenario | req/s | ratio to ceiling | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | errors | CPU s auth/user | peak RSS MiB auth/user | idle RSS MiB auth/user | note |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|---|---|\n");
    for r in rows {
        let ratio = r
            .ratio
            .map_or_else(|| "-".to_owned(), |x| format!("{:.0} %", x * 100.0));
        let cpu = r.resources.map_or_else(
            || "-".to_owned(),
            |x| format!("{:.1} / {:.1}", x.auth_cpu, x.user_cpu),
        );
        let rss = r.resources.map_or_else(
            || "-".to_owned(),
            |x| format!("{:.0} / {:.0}", x.auth_peak_mib, x.user_peak_mib),
        );
        let idle = r
            .idle_mib
            .map_or_else(|| "-".to_owned(), |(a, u)| format!("{a:.0} / {u:.0}"));
        out.push_str(&format!(
            "| {} | {} | {:.0} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {} | {} | {} |\n",
            r.backend, r.scenario, r.rate, ratio, r.p50, r.p90, r.p99, r.p999, r.max, r.errors, cpu, rss, idle, r.note
        ));
    }
    out
}
