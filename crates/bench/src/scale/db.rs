//! The bench's own connection to a service's database, beside the service's:
//! to seed rows, count them, wait for the outbox, pick users and read sizes.

use platform::db::Pool;
use uuid::Uuid;

/// One service's database.
pub struct Db {
    pool: Pool,
    url: String,
    pub dialect: &'static super::seed::Dialect,
}

impl Db {
    pub async fn open(url: &str) -> anyhow::Result<Self> {
        let (pool, dialect) = match platform::db::backend_of(url)? {
            platform::db::Backend::Postgres => (
                Pool::Postgres(platform::db::pg_pool(url)?),
                &super::seed::POSTGRES,
            ),
            platform::db::Backend::Sqlite => (
                Pool::Sqlite(platform::db::sqlite_pool(url).await?),
                &super::seed::SQLITE,
            ),
        };
        Ok(Self {
            pool,
            url: url.to_owned(),
            dialect,
        })
    }

    /// Runs one statement; how many rows it changed.
    pub async fn execute(&self, sql: &str) -> anyhow::Result<u64> {
        Ok(match &self.pool {
            Pool::Postgres(p) => sqlx::query(sql).execute(p).await?.rows_affected(),
            Pool::Sqlite(p) => sqlx::query(sql).execute(p).await?.rows_affected(),
        })
    }

    /// The one integer `sql` returns.
    pub async fn number(&self, sql: &str) -> anyhow::Result<i64> {
        Ok(match &self.pool {
            Pool::Postgres(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
            Pool::Sqlite(p) => sqlx::query_scalar(sql).fetch_one(p).await?,
        })
    }

    /// Rows in `table`.
    pub async fn count(&self, table: &str) -> anyhow::Result<i64> {
        self.number(&format!("SELECT count(*) FROM {table}")).await
    }

    /// `n` identities picked at random (users the reads are about).
    pub async fn random_users(&self, n: usize) -> anyhow::Result<Vec<Uuid>> {
        let sql = format!("SELECT id FROM identities ORDER BY random() LIMIT {n}");
        Ok(match &self.pool {
            Pool::Postgres(p) => sqlx::query_scalar(&sql).fetch_all(p).await?,
            Pool::Sqlite(p) => sqlx::query_scalar(&sql).fetch_all(p).await?,
        })
    }

    /// Refreshes the planner's statistics; on PostgreSQL also vacuums, so the
    /// loaded database is measured as a long-running one is (visibility map
    /// set, no autovacuum of the fresh rows starting mid-measurement).
    pub async fn settle(&self, vacuum: bool) -> anyhow::Result<()> {
        let sql = match (&self.pool, vacuum) {
            (Pool::Postgres(_), true) => "VACUUM (ANALYZE)",
            _ => self.dialect.analyze,
        };
        self.execute(sql).await.map(drop)
    }

    /// The database's size in bytes and its largest tables with their
    /// indexes (PostgreSQL), or its file and WAL and, where SQLite was built
    /// with `dbstat`, its largest tables and indexes each on its own.
    pub async fn sizes(&self) -> anyhow::Result<(Vec<(&'static str, u64)>, Vec<(String, u64)>)> {
        match &self.pool {
            Pool::Postgres(p) => {
                let total: i64 = sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(p)
                    .await?;
                let tables: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT relname::text, pg_total_relation_size(oid) FROM pg_class
                     WHERE relkind = 'r' AND relnamespace = 'public'::regnamespace
                     ORDER BY 2 DESC LIMIT 5",
                )
                .fetch_all(p)
                .await?;
                Ok((vec![("database", total as u64)], bytes(tables)))
            }
            Pool::Sqlite(p) => {
                let file = self.url.trim_start_matches("sqlite:").to_owned();
                let len = |suffix: &str| {
                    std::fs::metadata(format!("{file}{suffix}")).map_or(0, |m| m.len())
                };
                let files = vec![("file", len("")), ("WAL", len("-wal"))];
                let tables: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 5",
                )
                .fetch_all(p)
                .await
                .unwrap_or_default();
                Ok((files, bytes(tables)))
            }
        }
    }
}

fn bytes(rows: Vec<(String, i64)>) -> Vec<(String, u64)> {
    rows.into_iter()
        .map(|(n, b)| (n, b.max(0) as u64))
        .collect()
}
