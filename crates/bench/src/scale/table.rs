//! The `scale` scenario's report: per operation, p50/p99 on the near-empty
//! and the loaded database, the ratio of the p99s and the bound with its
//! verdict; then the load's own figures (import, relay, seeding, pruning,
//! sizes) as a list.

use super::ops::{Bound, Op};
use super::sample::Outcome;

/// One operation's two measurements.
pub struct Row {
    pub op: Op,
    pub empty: Outcome,
    pub loaded: Outcome,
}

impl Row {
    /// `OK`, `OVER`, or `-` when there is nothing to judge.
    pub fn verdict(&self) -> &'static str {
        let (empty, loaded) = (self.empty.quantile(0.99), self.loaded.quantile(0.99));
        let within = match (self.op.bound(), empty, loaded) {
            (_, _, None) => return "-",
            (Bound::TenMs, _, Some(l)) => l <= 10.0,
            (Bound::Twice, Some(e), Some(l)) => l <= 2.0 * e,
            (Bound::Twice, None, Some(_)) => return "-",
        };
        if within { "OK" } else { "OVER" }
    }

    /// Calls that failed in either phase.
    pub fn failures(&self) -> usize {
        [&self.empty, &self.loaded]
            .iter()
            .map(|o| match o {
                Outcome::Failed(n, _) => *n,
                _ => 0,
            })
            .sum()
    }
}

fn ms(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"))
}

/// The table, then `facts` as a list, under a heading naming the run.
pub fn markdown(title: &str, rows: &[Row], facts: &[String]) -> String {
    let mut out = format!("### {title}\n\n");
    out.push_str("| operation | empty p50 ms | empty p99 ms | loaded p50 ms | loaded p99 ms | p99 loaded/empty | bound | verdict | samples empty/loaded |\n");
    out.push_str("|---|---:|---:|---:|---:|---:|---|---|---|\n");
    for r in rows {
        let (e99, l99) = (r.empty.quantile(0.99), r.loaded.quantile(0.99));
        let ratio = match (e99, l99) {
            (Some(e), Some(l)) if e > 0.0 => format!("{:.2}", l / e),
            _ => "-".to_owned(),
        };
        let bound = match r.op.bound() {
            Bound::Twice => "≤ 2× empty",
            Bound::TenMs => "≤ 10 ms",
        };
        let mut verdict = r.verdict().to_owned();
        for o in [&r.empty, &r.loaded] {
            if let Outcome::Failed(n, e) = o {
                verdict = format!("{n} FAILED: {e}");
            }
        }
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |\n",
            r.op.name(),
            ms(r.empty.quantile(0.5)),
            ms(e99),
            ms(r.loaded.quantile(0.5)),
            ms(l99),
            ratio,
            bound,
            verdict,
            r.empty.samples(),
            r.loaded.samples(),
        ));
    }
    out.push('\n');
    for f in facts {
        out.push_str(&format!("- {f}\n"));
    }
    out
}
