//! Persistence of user profiles behind one narrow trait, each method one
//! transaction. One SQL body serves PostgreSQL and SQLite: the store is generic
//! over [`platform::sql::Dialect`].

mod users;

use crate::domain::Filter;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::db::{Database, Migrations, Pool};
use platform::ids::UserId;
use platform::outbox::{OutboxEvent, OutboxStore, SqlOutbox};
use platform::sql::Timestamp;
use std::sync::Arc;

/// What a storage call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another active user has this username.
    #[error("username already taken")]
    UsernameTaken,
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UserRecord {
    pub id: UserId,
    pub email: String,
    pub username: String,
    pub display_name: String,
    pub avatar_url: String,
    pub bio: String,
    pub locale: String,
    pub time_zone: String,
    pub version: i64,
    #[sqlx(try_from = "Timestamp")]
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "Timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// The outcome of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Written<T> {
    /// Done.
    Done(T),
    /// No active user with this id.
    NotFound,
    /// The user changed since the version the write was based on.
    Stale,
}

/// The User Service's storage. Every method is one transaction.
#[async_trait]
pub trait UserStore: Send + Sync + std::fmt::Debug + 'static {
    /// Inserts `user` unless its id exists; returns the stored user and whether it
    /// was created now. `UsernameTaken` when another active user has the name.
    async fn create_user(&self, user: &UserRecord) -> Result<(UserRecord, bool), StoreError>;
    /// The active user with this id.
    async fn get_user(&self, id: UserId) -> Result<Option<UserRecord>, StoreError>;
    /// The active users among `ids`, in any order.
    async fn get_users(&self, ids: &[UserId]) -> Result<Vec<UserRecord>, StoreError>;
    /// Active users matching `filter` with ids after `after`, in id order.
    async fn list_users(
        &self,
        filter: &Filter,
        after: Option<UserId>,
        limit: i64,
    ) -> Result<Vec<UserRecord>, StoreError>;
    /// Replaces the editable fields if the user is still at `user.version`; the
    /// stored version is then one higher.
    async fn update_user(&self, user: &UserRecord) -> Result<Written<UserRecord>, StoreError>;
    /// Soft-deletes the user if still at `version` (any version when `None`) and
    /// records `event` in the same transaction.
    async fn delete_user(
        &self,
        id: UserId,
        version: Option<i64>,
        now: DateTime<Utc>,
        event: &OutboxEvent,
    ) -> Result<Written<()>, StoreError>;
}

static MIGRATIONS: Migrations = Migrations {
    postgres: sqlx::migrate!("./migrations/postgres"),
    sqlite: sqlx::migrate!("./migrations/sqlite"),
};

/// The stores of one database.
#[derive(Debug, Clone)]
pub struct Stores {
    pub db: Database,
    pub users: Arc<dyn UserStore>,
    pub outbox: Arc<dyn OutboxStore>,
}

/// The SQL of the stores over one pool of either backend.
#[derive(Debug)]
pub(crate) struct Sql<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
}

/// Opens the stores a database URL names (`postgres://...` or `sqlite:<file>`).
pub async fn connect(url: &str) -> Result<Stores, StoreError> {
    let db = Database::connect(url, &MIGRATIONS).await?;
    Ok(match &db.pool {
        Pool::Postgres(p) => Sql { pool: p.clone() }.stores(db.clone()),
        Pool::Sqlite(p) => Sql { pool: p.clone() }.stores(db.clone()),
    })
}

platform::generic_store! {
    impl<DB> Sql<DB> {
        fn stores(self, db: Database) -> Stores {
            Stores {
                db,
                outbox: Arc::new(SqlOutbox::new(self.pool.clone())),
                users: Arc::new(self),
            }
        }
    }
}
