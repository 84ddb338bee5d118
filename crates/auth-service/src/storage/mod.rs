//! Persistence of the Auth Service, one narrow store per aggregate (identities,
//! sessions, roles, service accounts, signing keys, throttle counters, audit,
//! one-time tokens, second factors, retention),
//! each method one transaction. One SQL body serves PostgreSQL and SQLite: the
//! stores are generic over [`platform::sql::Dialect`].

mod accounts;
mod audit;
mod ends;
mod identities;
mod keys;
mod mfa;
mod recovery;
mod retention;
mod roles;
mod sessions;
mod throttle;

pub use accounts::{ServiceAccountRecord, ServiceAccountStore};
pub use audit::{AuditQuery, AuditRecord, AuditStore};
pub use ends::{Ends, LockedIdentity, SessionsEnded};
pub use identities::{IdentityRecord, IdentityStore, NewIdentity};
pub use keys::{KeyStore, SigningKeyRecord};
pub use mfa::{ChallengeRecord, MfaStore, NewChallenge, TotpRecord};
pub use recovery::{
    CancelPlan, Cancelled, LiveToken, NewOneTimeToken, PasswordReset, Purpose, RecoveryStore,
    Verified,
};
pub use retention::RetentionStore;
pub use roles::{Outcome, RoleRecord, RoleStore, SubjectChange};
pub use sessions::{Amr, NewRefreshToken, NewSession, Rotation, SessionRecord, SessionStore};
pub use throttle::{Counter, ThrottleStore};

use platform::db::{Database, Migrations, Pool};
use platform::outbox::{OutboxStore, SqlOutbox};
use std::sync::Arc;

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
    /// Migrations could not be applied.
    #[error("migration error: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

static MIGRATIONS: Migrations = Migrations {
    postgres: sqlx::migrate!("./migrations/postgres"),
    sqlite: sqlx::migrate!("./migrations/sqlite"),
};

/// Every store of one database, as the core uses them.
#[derive(Debug, Clone)]
pub struct Stores {
    pub db: Database,
    pub identities: Arc<dyn IdentityStore>,
    pub sessions: Arc<dyn SessionStore>,
    pub roles: Arc<dyn RoleStore>,
    pub accounts: Arc<dyn ServiceAccountStore>,
    pub keys: Arc<dyn KeyStore>,
    pub throttle: Arc<dyn ThrottleStore>,
    pub audit: Arc<dyn AuditStore>,
    pub retention: Arc<dyn RetentionStore>,
    pub recovery: Arc<dyn RecoveryStore>,
    pub mfa: Arc<dyn MfaStore>,
    pub outbox: Arc<dyn OutboxStore>,
}

/// The SQL of every store over one pool of either backend.
#[derive(Debug)]
pub(crate) struct Sql<DB: sqlx::Database> {
    pool: sqlx::Pool<DB>,
}

/// Opens the stores a database URL names: `postgres://` or `postgresql://` for
/// PostgreSQL, `sqlite:` for an embedded SQLite file (created if missing).
pub async fn connect(url: &str) -> Result<Stores, StoreError> {
    let db = Database::connect(url, &MIGRATIONS).await?;
    Ok(match &db.pool {
        Pool::Postgres(p) => Sql { pool: p.clone() }.stores(db.clone()),
        Pool::Sqlite(p) => Sql { pool: p.clone() }.stores(db.clone()),
    })
}

platform::generic_store! {
    types(sqlx::types::Json<Vec<String>>, sqlx::types::Json<std::collections::BTreeMap<String, String>>);
    impl<DB> Sql<DB> {
        fn stores(self, db: Database) -> Stores {
            let outbox = Arc::new(SqlOutbox::new(self.pool.clone()));
            let sql = Arc::new(self);
            Stores {
                db,
                identities: sql.clone(),
                sessions: sql.clone(),
                roles: sql.clone(),
                accounts: sql.clone(),
                keys: sql.clone(),
                throttle: sql.clone(),
                audit: sql.clone(),
                recovery: sql.clone(),
                mfa: sql.clone(),
                retention: sql,
                outbox,
            }
        }
    }
}
