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

/// WAL pages past which a commit checkpoints itself (4 KiB pages: 64 MiB).
const WAL_FALLBACK_PAGES: u32 = 16_384;
/// How often a service checkpoints its SQLite WAL beside the requests.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(1);

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
        // Checkpoints run beside the requests ([`Database::maintain`]); the
        // commit that crossed SQLite's own threshold (1,000 pages) used to run
        // one, a few milliseconds of copying and fsync in one request in a
        // hundred (the scale bench's RefreshToken p99). This is the fallback
        // for a process without the task (a CLI subcommand): 64 MiB of pages.
        .pragma("wal_autocheckpoint", WAL_FALLBACK_PAGES.to_string())
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

    /// Supervised upkeep of the database beside the requests: on SQLite, a
    /// passive WAL checkpoint every second (it waits for no reader or writer;
    /// what a reader still needs is copied at a later one). Nothing on
    /// PostgreSQL, whose checkpointer is its own.
    pub fn maintain(&self, tasks: &mut crate::tasks::Supervisor) {
        let Pool::Sqlite(pool) = &self.pool else {
            return;
        };
        let pool = pool.clone();
        tasks.every("sqlite checkpoint", CHECKPOINT_EVERY, move || {
            let pool = pool.clone();
            async move { checkpoint(&pool).await.map(drop) }
        });
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

/// A passive checkpoint: the WAL's pages, and how many of them are now in
/// the database file.
async fn checkpoint(pool: &SqlitePool) -> Result<(i64, i64), sqlx::Error> {
    let (_busy, wal, done): (i64, i64, i64) = sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)")
        .fetch_one(pool)
        .await?;
    Ok((wal, done))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn commits_leave_the_checkpoint_to_the_task() {
        let file = std::env::temp_dir().join(format!("wal-{}.db", uuid::Uuid::new_v4()));
        let pool = sqlite_pool(&format!("sqlite:{}", file.display()))
            .await
            .expect("pool");
        sqlx::query("CREATE TABLE t (v BLOB)")
            .execute(&pool)
            .await
            .expect("table");
        // 2,000 pages committed: twice SQLite's own threshold.
        for _ in 0..500 {
            sqlx::query("INSERT INTO t VALUES (zeroblob(16000))")
                .execute(&pool)
                .await
                .expect("insert");
        }
        let wal = std::fs::metadata(file.with_extension("db-wal"))
            .expect("wal")
            .len();
        assert!(
            wal > 1000 * 4096,
            "a commit checkpointed: the WAL is {wal} bytes"
        );
        let (pages, done) = checkpoint(&pool).await.expect("checkpoint");
        assert!(
            pages >= 2000 && done == pages,
            "{done} of {pages} pages checkpointed"
        );
        pool.close().await;
        for end in ["db", "db-wal", "db-shm"] {
            let _ = std::fs::remove_file(file.with_extension(end));
        }
    }
}
