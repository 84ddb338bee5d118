//! The plans PostgreSQL really runs for a service's own statements, as a test
//! sees them: `auto_explain` reports the plan of every statement a connection
//! executes to that client as a notice, sqlx hands notices to `tracing`, and a
//! collector on the test's thread keeps them. A test then runs the real query
//! functions on such a connection, under custom and under generic plans, and
//! looks for sequential scans of the tables that grow.

use serde_json::Value;
use sqlx::{Connection as _, PgConnection};
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing_subscriber::layer::{Context, SubscriberExt as _};

/// How PostgreSQL plans a prepared statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanMode {
    /// For the values bound (what the first executions get).
    Custom,
    /// Once for any values (what a statement may get from its sixth run on).
    Generic,
}

/// One executed statement and its plan.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The statement's text.
    pub query: String,
    /// `EXPLAIN (FORMAT JSON)`'s plan tree.
    pub tree: Value,
}

impl Plan {
    /// The relations this plan reads by a sequential scan.
    pub fn seq_scans(&self) -> Vec<String> {
        let mut found = Vec::new();
        walk(&self.tree, &mut found);
        found
    }
}

fn walk(node: &Value, found: &mut Vec<String>) {
    if node.get("Node Type").and_then(Value::as_str) == Some("Seq Scan")
        && let Some(relation) = node.get("Relation Name").and_then(Value::as_str)
    {
        found.push(relation.to_owned());
    }
    if let Some(children) = node.get("Plans").and_then(Value::as_array) {
        for child in children {
            walk(child, found);
        }
    }
}

/// Collects the plans reported to connections made by [`Plans::connect`], on
/// the current thread (run the test on a current-thread runtime).
pub struct Plans {
    seen: Arc<Mutex<Vec<String>>>,
    _guard: tracing::subscriber::DefaultGuard,
}

impl Plans {
    /// Starts collecting.
    pub fn collect() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let subscriber = tracing_subscriber::registry().with(Notices(seen.clone()));
        Self {
            seen,
            _guard: tracing::subscriber::set_default(subscriber),
        }
    }

    /// A connection to `url` (a superuser's: `LOAD` needs it) that reports the
    /// plan of every statement it runs, planned as `mode` says.
    pub async fn connect(url: &str, mode: PlanMode) -> PgConnection {
        let mut conn = PgConnection::connect(url).await.expect("connect");
        let mode = match mode {
            PlanMode::Custom => "force_custom_plan",
            PlanMode::Generic => "force_generic_plan",
        };
        for setting in [
            "LOAD 'auto_explain'".to_owned(),
            "SET auto_explain.log_min_duration = 0".to_owned(),
            "SET auto_explain.log_level = notice".to_owned(),
            "SET auto_explain.log_format = json".to_owned(),
            format!("SET plan_cache_mode = {mode}"),
        ] {
            sqlx::raw_sql(&setting)
                .execute(&mut conn)
                .await
                .expect(&setting);
        }
        conn
    }

    /// Asserts that at least `ran` plans were reported since the last call
    /// (so the capture saw the statements) and that none of them reads one of
    /// `growing` by a sequential scan.
    pub fn assert_indexed(&self, mode: PlanMode, ran: usize, growing: &[&str]) {
        let seen = self.take();
        assert!(
            seen.len() >= ran,
            "{mode:?}: {} plans for {ran} statements",
            seen.len()
        );
        for plan in seen {
            let scanned: Vec<_> = plan
                .seq_scans()
                .into_iter()
                .filter(|table| growing.contains(&table.as_str()))
                .collect();
            assert!(
                scanned.is_empty(),
                "{mode:?} plan scans {scanned:?}:\n{}\n{:#}",
                plan.query,
                plan.tree
            );
        }
    }

    /// The plans reported since the last call.
    pub fn take(&self) -> Vec<Plan> {
        let notices = std::mem::take(&mut *self.seen.lock().expect("lock"));
        notices.iter().filter_map(|text| parse(text)).collect()
    }
}

/// `duration: 0.1 ms  plan:\n{"Query Text": ..., "Plan": {...}}`.
fn parse(notice: &str) -> Option<Plan> {
    let json: Value = serde_json::from_str(&notice[notice.find('{')?..]).ok()?;
    Some(Plan {
        query: json.get("Query Text")?.as_str()?.to_owned(),
        tree: json.get("Plan")?.clone(),
    })
}

/// Keeps the message of every notice sqlx reports.
struct Notices(Arc<Mutex<Vec<String>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Notices {
    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() != "sqlx::postgres::notice" {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        self.0.lock().expect("lock").push(message.0);
    }
}

struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}
