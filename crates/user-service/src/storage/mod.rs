//! The User Service's SQL: plain functions over a connection of either backend,
//! one body for both ([`Sql`], generic over [`platform::sql::Dialect`]). They
//! read and write rows; what a change means (which version it needs, which
//! event it sends) is decided by the use cases, which call them through a
//! write transaction ([`platform::sql::Tx`] and [`platform::sql!`]) or, for a
//! read or a single statement, a pooled connection (`Database::read`).

mod users;

pub use users::Sql;

use chrono::{DateTime, Utc};
use platform::db::Migrations;
use platform::ids::UserId;

use platform::sql::Timestamp;

/// What a storage call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another active user has this username.
    #[error("username already taken")]
    UsernameTaken,
    /// The database failed.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
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

/// A user as a list reads it: with the text the list is ordered by (empty
/// when it is ordered by id), which the next page's cursor carries.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Listed {
    #[sqlx(flatten)]
    pub user: UserRecord,
    pub sort_key: String,
}

/// Where a page of users starts: after this user, in the list's order.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListCursor {
    #[serde(rename = "k")]
    pub key: String,
    #[serde(rename = "i")]
    pub id: UserId,
}

/// The User Service's migrations, one folder per backend.
pub static MIGRATIONS: Migrations = Migrations {
    postgres: sqlx::migrate!("./migrations/postgres"),
    sqlite: sqlx::migrate!("./migrations/sqlite"),
};
