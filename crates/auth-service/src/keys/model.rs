//! The types of keys as the use cases and the SQL share them.

use chrono::{DateTime, Utc};
use platform::sql::Timestamp;

/// A signing key as stored; `private_key` is PKCS#8, sealed when `encrypted`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRecord {
    pub generation: i64,
    pub kid: String,
    pub algorithm: String,
    pub public_key: Vec<u8>,
    pub private_key: Vec<u8>,
    pub encrypted: bool,
    #[sqlx(try_from = "Timestamp")]
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "Timestamp")]
    pub activates_at: DateTime<Utc>,
}
