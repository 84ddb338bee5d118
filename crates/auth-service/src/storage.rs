//! The Auth Service's database: its migrations, the errors of its SQL, and
//! the connection every feature's SQL (`<feature>/sql.rs`) runs on. One SQL
//! body serves PostgreSQL and SQLite: the queries are generic over
//! [`platform::sql::Dialect`] and called through [`platform::sql!`].

use platform::db::{Database, Migrations};

/// What a storage call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An identity with this email already exists.
    #[error("email already registered")]
    EmailTaken,
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// An outbox event could not be encoded.
    #[error("event encoding error: {0}")]
    Encode(#[from] serde_json::Error),
    /// A stored row is not what this version wrote.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

static MIGRATIONS: Migrations = Migrations {
    postgres: sqlx::migrate!("./migrations/postgres"),
    sqlite: sqlx::migrate!("./migrations/sqlite"),
};

/// Opens the database a URL names: `postgres://` or `postgresql://` for
/// PostgreSQL, `sqlite:` for an embedded SQLite file (created if missing).
pub async fn connect(url: &str) -> Result<Database, StoreError> {
    Ok(Database::connect(url, &MIGRATIONS).await?)
}
