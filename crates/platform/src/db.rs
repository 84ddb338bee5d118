//! Connection pools, configured the same way for every service: PostgreSQL in
//! production, an embedded SQLite file (created with its folder) by default.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
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
        // A burst of writes (an import, its relay) grows the WAL; without a
        // limit the file keeps its high-water size (699 MiB beside a 16 MiB
        // database in the scale bench) after every later checkpoint.
        .pragma("journal_size_limit", (64 * 1024 * 1024).to_string())
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

/// A connection pool to either backend; stores are built from the typed pool
/// inside.
#[derive(Debug, Clone)]
pub enum Pool {
    Postgres(PgPool),
    Sqlite(SqlitePool),
}

/// A service's migrations, one folder per backend (their column types differ).
#[derive(Debug)]
pub struct Migrations {
    pub postgres: sqlx::migrate::Migrator,
    pub sqlite: sqlx::migrate::Migrator,
}

/// Taken by the one replica migrating a PostgreSQL database (advisory locks are
/// per database, so one key serves every service).
const MIGRATION_GATE: i64 = 0x6964_656e_7469_7479; // "identity"

/// Runs `migrator` on `pool` while no other replica does. Replicas wait at a
/// lock of our own, polled without a statement in flight, before sqlx's own
/// blocking one: a replica blocked inside `pg_advisory_lock` holds a snapshot,
/// which a `CREATE INDEX CONCURRENTLY` in the migrating replica waits out
/// while that replica holds the lock it waits for (a deadlock PostgreSQL
/// breaks by failing one of them).
async fn migrate_postgres(
    pool: &PgPool,
    migrator: &sqlx::migrate::Migrator,
) -> Result<(), sqlx::migrate::MigrateError> {
    let mut gate = pool.acquire().await?;
    while !sqlx::query_scalar::<_, bool>("SELECT pg_try_advisory_lock($1)")
        .bind(MIGRATION_GATE)
        .fetch_one(&mut *gate)
        .await?
    {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let migrated = migrator.run(pool).await;
    let unlocked = sqlx::query("SELECT pg_advisory_unlock($1)")
        .bind(MIGRATION_GATE)
        .execute(&mut *gate)
        .await;
    if unlocked.is_err() {
        // Never hand a connection that may still hold the gate back to the pool.
        gate.detach();
    }
    migrated
}

/// A service's database: what is not a query (migrations, readiness).
#[derive(Debug, Clone)]
pub struct Database {
    pub pool: Pool,
    migrations: &'static Migrations,
}

impl Database {
    /// The database a URL names, with the service's migrations for it.
    pub async fn connect(url: &str, migrations: &'static Migrations) -> Result<Self, sqlx::Error> {
        let pool = match backend_of(url)? {
            Backend::Postgres => Pool::Postgres(pg_pool(url)?),
            Backend::Sqlite => Pool::Sqlite(sqlite_pool(url).await?),
        };
        Ok(Self { pool, migrations })
    }

    /// Applies the backend's migrations.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match &self.pool {
            Pool::Postgres(p) => migrate_postgres(p, &self.migrations.postgres).await,
            Pool::Sqlite(p) => self.migrations.sqlite.run(p).await,
        }
    }

    /// A pooled connection, for reads.
    pub async fn read(&self) -> Result<crate::sql::Read, sqlx::Error> {
        crate::sql::Read::open(&self.pool).await
    }

    /// A write transaction, for a use case's reads and writes together.
    pub async fn write(&self) -> Result<crate::sql::Tx, sqlx::Error> {
        crate::sql::Tx::write(&self.pool).await
    }

    /// A trivial query.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        match &self.pool {
            Pool::Postgres(p) => sqlx::query("SELECT 1").execute(p).await.map(drop),
            Pool::Sqlite(p) => sqlx::query("SELECT 1").execute(p).await.map(drop),
        }
    }
}

/// Ready while the database answers.
impl crate::http_aux::Readiness for Database {
    fn check(&self) -> futures::future::BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.ping()
                .await
                .map_err(|_| "database unreachable".to_owned())
        })
    }
}
