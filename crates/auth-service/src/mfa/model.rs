//! The types of mfa as the use cases and the SQL share them.

use chrono::{DateTime, Utc};
use platform::ids::UserId;
use platform::sql::Timestamp;

/// An identity's TOTP secret as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TotpRecord {
    pub secret: Vec<u8>,
    pub encrypted: bool,
    pub confirmed: bool,
    /// Wrong codes since the last right one (the factor's own counter).
    pub failures: i64,
    pub failed_at: Option<Timestamp>,
}

/// A login waiting for its second factor.
#[derive(Debug, Clone)]
pub struct NewChallenge {
    pub hash: [u8; 32],
    pub user_id: UserId,
    /// SHA-256 of the password hash the login checked.
    pub credential: [u8; 32],
    /// The identity's credential version the login checked.
    pub credential_version: i64,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// A live challenge, as read back.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ChallengeRecord {
    pub user_id: UserId,
    pub credential: Vec<u8>,
    pub credential_version: i64,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}
