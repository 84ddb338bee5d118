//! Connection pools, configured the same way for every service: PostgreSQL in
//! production, an embedded SQLite file (created with its folder) by default.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use std::str::FromStr;
use std::time::Duration;

/// Which backend a database URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// `postgres://` or `postgresql://`.
    Postgres,
    /// `sqlite:`.
    Sqlite,
}

/// The backend of `url`, or a message saying what is accepted.
pub fn backend_of(url: &str) -> Result<Backend, sqlx::Error> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Ok(Backend::Sqlite)
    } else {
        Err(sqlx::Error::Configuration(
            "database URL must start with postgres://, postgresql:// or sqlite:".into(),
        ))
    }
}

/// A PostgreSQL pool that connects lazily, so a service starts (not ready) while
/// its database is still coming up.
pub fn pg_pool(url: &str) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?;
    Ok(PgPoolOptions::new()
        .max_connections(16)
        .acquire_timeout(Duration::from_secs(5))
        .connect_lazy_with(options))
}

/// An SQLite pool in WAL mode with foreign keys on; the file and its folder are
/// created when missing.
pub async fn sqlite_pool(url: &str) -> Result<SqlitePool, sqlx::Error> {
    let options = SqliteConnectOptions::from_str(url)?
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Normal)
        .foreign_keys(true)
        .busy_timeout(Duration::from_secs(10));
    if let Some(dir) = options.get_filename().parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(sqlx::Error::Io)?;
    }
    SqlitePoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

/// A time column of SQLite, stored as microseconds since the epoch so that SQL
/// compares times numerically; out-of-range values are a decode error.
pub fn sqlite_time(
    row: &SqliteRow,
    column: &str,
) -> Result<chrono::DateTime<chrono::Utc>, sqlx::Error> {
    use sqlx::Row as _;
    let us: i64 = row.try_get(column)?;
    chrono::DateTime::from_timestamp_micros(us).ok_or_else(|| sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: format!("time out of range: {us}").into(),
    })
}
