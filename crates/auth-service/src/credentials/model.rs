//! The types of credentials as the use cases and the SQL share them.

use chrono::{DateTime, Utc};
use platform::ids::UserId;

/// A new identity to insert.
#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A stored identity.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdentityRecord {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub email_verified: bool,
    pub disabled: bool,
    /// Bumped by every credential or address change.
    pub credential_version: i64,
}
