//! The types of accounts as the use cases and the SQL share them.

use chrono::{DateTime, Utc};
use platform::ids::ServiceAccountId;
use platform::sql::Timestamp;

/// A service account as stored (the secret only as its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ServiceAccountRecord {
    pub id: ServiceAccountId,
    pub name: String,
    pub client_id: String,
    pub secret_hash: Vec<u8>,
    #[sqlx(try_from = "Timestamp")]
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
    #[sqlx(skip)]
    pub roles: Vec<String>,
}
