//! Persistence of identities, sessions, refresh tokens and signing keys behind one
//! narrow trait, with a PostgreSQL and an embedded SQLite implementation.

mod access;
mod postgres;
mod sqlite;

pub use access::{
    AccessStore, AuditQuery, AuditRecord, Counter, Outcome, RoleRecord, ServiceAccountRecord,
    SessionRecord, SubjectChange,
};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::outbox::{OutboxEvent, OutboxStore};
use std::sync::Arc;
use uuid::Uuid;

/// What a storage call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// An identity with this email already exists.
    #[error("email already registered")]
    EmailTaken,
    /// The database could not be reached or answered with an error.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// A new identity to insert.
#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
}

/// A stored identity.
#[derive(Debug, Clone)]
pub struct IdentityRecord {
    pub id: Uuid,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub disabled: bool,
}

/// A new session with its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// The client address and user agent the Gateway reported, if any.
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}

/// A refresh token as stored: only the SHA-256 of the token.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub hash: [u8; 32],
    pub session_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The outcome of presenting a refresh token for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current; it is now spent and its successor stored.
    Rotated { session_id: Uuid, user_id: Uuid },
    /// The token was already spent: the session is now revoked.
    Reused { session_id: Uuid },
    /// The token is expired, or its session revoked or its identity disabled.
    Dead,
    /// No such token.
    Unknown,
}

/// A signing key as stored; `private_key` is PKCS#8, sealed when `encrypted`.
#[derive(Debug, Clone)]
pub struct SigningKeyRecord {
    pub generation: i64,
    pub kid: String,
    pub algorithm: String,
    pub public_key: Vec<u8>,
    pub private_key: Vec<u8>,
    pub encrypted: bool,
    pub created_at: DateTime<Utc>,
    pub activates_at: DateTime<Utc>,
}

/// The Auth Service's storage. Every method is one transaction.
#[async_trait]
pub trait AuthStore: AccessStore + std::fmt::Debug + 'static {
    /// Applies the embedded migrations.
    async fn migrate(&self) -> Result<(), StoreError>;
    /// A trivial query, for readiness.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Inserts an identity, its roles and `event` (for the outbox) in one
    /// transaction; `EmailTaken` when the email exists.
    async fn insert_identity(
        &self,
        identity: &NewIdentity,
        event: &OutboxEvent,
    ) -> Result<(), StoreError>;
    /// Disables an identity and revokes all its sessions; returns the sessions
    /// revoked now. Disabling twice changes nothing.
    async fn disable_identity(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Vec<Uuid>, StoreError>;
    /// The outbox of this database.
    fn outbox(&self) -> Arc<dyn OutboxStore>;
    /// The identity with this normalised email.
    async fn identity_by_email(&self, email: &str) -> Result<Option<IdentityRecord>, StoreError>;
    /// Replaces a password hash (re-hashing with new parameters).
    async fn set_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// Opens a session with its first refresh token.
    async fn insert_session(
        &self,
        session: &NewSession,
        token: &NewRefreshToken,
    ) -> Result<(), StoreError>;
    /// Spends the refresh token hashed as `presented` and stores `next` (whose
    /// `session_id` is ignored: the presented token's session is used). A token
    /// spent before revokes its session.
    async fn rotate_refresh_token(
        &self,
        presented: &[u8; 32],
        next: &NewRefreshToken,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError>;
    /// Revokes the session whose current refresh token hashes to `presented`.
    async fn revoke_session_by_refresh_token(
        &self,
        presented: &[u8; 32],
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Option<Uuid>, StoreError>;
    /// Sessions revoked at or after `since`, with when.
    async fn revoked_sessions_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError>;

    /// Every stored signing key, by generation.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Inserts a key unless its generation exists (another replica won); true if inserted.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError>;
    /// Moves a key's activation time (an early rotation).
    async fn set_key_activation(
        &self,
        generation: i64,
        activates_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

/// Opens the store a database URL names: `postgres://` or `postgresql://` for
/// PostgreSQL, `sqlite:` for an embedded SQLite file (created if missing).
pub async fn connect(url: &str) -> Result<Arc<dyn AuthStore>, StoreError> {
    Ok(match platform::db::backend_of(url)? {
        platform::db::Backend::Postgres => Arc::new(PgStore::new(platform::db::pg_pool(url)?)),
        platform::db::Backend::Sqlite => {
            Arc::new(SqliteStore::new(platform::db::sqlite_pool(url).await?))
        }
    })
}
