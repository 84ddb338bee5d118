//! Helpers for the services' integration tests: a throwaway PostgreSQL cluster per
//! test process with a fresh database per test, fresh SQLite files, log capture,
//! and the base of every service's `spawn_app` ([`service`]).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic)]
// Test scaffolding waits for real processes (PostgreSQL, the services) by the
// wall clock; the services' own time comes from the injected clock.
#![allow(clippy::disallowed_methods)]

pub mod plans;
pub mod postgres;
pub mod process;
pub mod schema;
pub mod service;

pub use service::{PASSWORD, assert_code, bearer, eventually, unique_email};

/// Runs an async test body, `async fn name(backend: Backend)`, once per backend:
/// `both_backends!(name, other_name);` makes `name::sqlite` and `name::postgres`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Backend::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::Backend::Postgres).await;
            }
        }
    )*};
}

/// Turns test logs on when `TEST_LOG` is set (as Zero To Production does).
pub fn init_test_logs() {
    if std::env::var_os("TEST_LOG").is_none() {
        return;
    }
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        ))
        .with_test_writer()
        .try_init();
}

/// A database for one test: its URL and what keeps it alive.
pub struct TestDatabase {
    /// The URL to give the service.
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// Which storage backend a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded default.
    Sqlite,
    /// The production database, on the throwaway cluster.
    Postgres,
}

impl Backend {
    /// A fresh, empty database of this kind.
    pub async fn fresh_database(self) -> TestDatabase {
        match self {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                let url = format!("sqlite:{}", dir.path().join("test.db").display());
                TestDatabase {
                    url,
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => TestDatabase {
                url: postgres::fresh_database().await,
                _dir: None,
            },
        }
    }
}
