//! Persistence of user profiles behind one narrow trait, with a PostgreSQL and an
//! embedded SQLite implementation.

mod postgres;
mod sqlite;

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use crate::domain::Filter;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::outbox::{OutboxEvent, OutboxStore};
use std::sync::Arc;
use uuid::Uuid;

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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub email: String,
    pub username: String,
    pub display_name: String,
    pub avatar_url: String,
    pub bio: String,
    pub locale: String,
    pub time_zone: String,
    pub version: i64,
    pub created_at: DateTime<Utc>,
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
    /// Applies the embedded migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// A trivial query, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Inserts `user` unless its id exists; returns the stored user and whether it
    /// was created now. `UsernameTaken` when another active user has the name.
    async fn create_user(&self, user: &UserRecord) -> Result<(UserRecord, bool), StoreError>;
    /// The active user with this id.
    async fn get_user(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError>;
    /// The active users among `ids`, in any order.
    async fn get_users(&self, ids: &[Uuid]) -> Result<Vec<UserRecord>, StoreError>;
    /// Active users matching `filter` with ids after `after`, in id order.
    async fn list_users(
        &self,
        filter: &Filter,
        after: Option<Uuid>,
        limit: i64,
    ) -> Result<Vec<UserRecord>, StoreError>;
    /// Replaces the editable fields if the user is still at `user.version`; the
    /// stored version is then one higher.
    async fn update_user(&self, user: &UserRecord) -> Result<Written<UserRecord>, StoreError>;
    /// Soft-deletes the user if still at `version` (any version when `None`) and
    /// records `event` in the same transaction.
    async fn delete_user(
        &self,
        id: Uuid,
        version: Option<i64>,
        now: DateTime<Utc>,
        event: &OutboxEvent,
    ) -> Result<Written<()>, StoreError>;
    /// The outbox of this database.
    fn outbox(&self) -> Arc<dyn OutboxStore>;
}

/// Opens the store a database URL names (`postgres://...` or `sqlite:<file>`).
pub async fn connect(url: &str) -> Result<Arc<dyn UserStore>, StoreError> {
    Ok(match platform::db::backend_of(url)? {
        platform::db::Backend::Postgres => Arc::new(PgStore::new(platform::db::pg_pool(url)?)),
        platform::db::Backend::Sqlite => {
            Arc::new(SqliteStore::new(platform::db::sqlite_pool(url).await?))
        }
    })
}
