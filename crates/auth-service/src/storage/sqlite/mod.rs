//! The embedded SQLite store: the zero-install default. Times are stored as
//! microseconds since the epoch so that comparisons in SQL are numeric.

mod access;

use super::{
    AuthStore, IdentityRecord, NewIdentity, NewRefreshToken, NewSession, Rotation,
    SigningKeyRecord, StoreError,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::outbox::{OutboxEvent, OutboxStore, SqliteOutbox};
use sqlx::Row;
use sqlx::sqlite::{SqlitePool, SqliteRow};
use std::sync::Arc;
use uuid::Uuid;

/// A pool of connections to an SQLite file.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
}

impl SqliteStore {
    /// A store over `pool`.
    pub fn new(pool: SqlitePool) -> Self {
        Self { pool }
    }
}

/// Microseconds since the epoch: SQLite's representation of a time.
pub(crate) fn micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

use platform::db::sqlite_time as time;

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn key_from_row(r: &SqliteRow) -> Result<SigningKeyRecord, sqlx::Error> {
    Ok(SigningKeyRecord {
        generation: r.try_get("generation")?,
        kid: r.try_get("kid")?,
        algorithm: r.try_get("algorithm")?,
        public_key: r.try_get("public_key")?,
        private_key: r.try_get("private_key")?,
        encrypted: r.try_get("encrypted")?,
        created_at: time(r, "created_at")?,
        activates_at: time(r, "activates_at")?,
    })
}

impl SqliteStore {
    /// The identity whose `column` equals `value`.
    async fn identity_where<V>(
        &self,
        column: &str,
        value: V,
    ) -> Result<Option<IdentityRecord>, StoreError>
    where
        V: for<'q> sqlx::Encode<'q, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite> + Send,
    {
        let sql = format!(
            "SELECT id, email, display_name, password_hash, disabled_at IS NOT NULL AS disabled
             FROM identities WHERE {column} = ?1"
        );
        let row = sqlx::query(&sql)
            .bind(value)
            .fetch_optional(&self.pool)
            .await?;
        Ok(match row {
            None => None,
            Some(r) => Some(IdentityRecord {
                id: r.try_get("id")?,
                email: r.try_get("email")?,
                display_name: r.try_get("display_name")?,
                password_hash: r.try_get("password_hash")?,
                disabled: r.try_get("disabled")?,
            }),
        })
    }
}

#[async_trait]
impl AuthStore for SqliteStore {
    async fn migrate(&self) -> Result<(), StoreError> {
        sqlx::migrate!("./migrations/sqlite")
            .run(&self.pool)
            .await?;
        Ok(())
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    async fn insert_identity(
        &self,
        identity: &NewIdentity,
        event: &OutboxEvent,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(
            "INSERT INTO identities (id, email, display_name, password_hash, created_at, updated_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
        )
        .bind(identity.id)
        .bind(&identity.email)
        .bind(&identity.display_name)
        .bind(&identity.password_hash)
        .bind(micros(identity.created_at))
        .execute(&mut *tx)
        .await;
        match inserted {
            // The only unique key besides the random primary key is the email.
            Err(e) if is_unique_violation(&e) => return Err(StoreError::EmailTaken),
            other => other?,
        };
        for role in &identity.roles {
            sqlx::query("INSERT INTO subject_roles (subject_id, role) VALUES (?1, ?2)")
                .bind(identity.id)
                .bind(role)
                .execute(&mut *tx)
                .await?;
        }
        SqliteOutbox::insert(&mut tx, event).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn identity_by_email(&self, email: &str) -> Result<Option<IdentityRecord>, StoreError> {
        self.identity_where("email", email.to_owned()).await
    }

    async fn set_password_hash(
        &self,
        user_id: Uuid,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE identities SET password_hash = ?2, updated_at = ?3 WHERE id = ?1")
            .bind(user_id)
            .bind(hash)
            .bind(micros(now))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn disable_identity(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Vec<Uuid>, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE identities SET disabled_at = ?2, updated_at = ?2
             WHERE id = ?1 AND disabled_at IS NULL",
        )
        .bind(user_id)
        .bind(micros(now))
        .execute(&mut *tx)
        .await?;
        let revoked = sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = ?2, revoke_reason = ?3
             WHERE user_id = ?1 AND revoked_at IS NULL RETURNING id",
        )
        .bind(user_id)
        .bind(micros(now))
        .bind(reason)
        .fetch_all(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(revoked)
    }

    fn outbox(&self) -> Arc<dyn OutboxStore> {
        Arc::new(SqliteOutbox::new(self.pool.clone()))
    }

    async fn insert_session(
        &self,
        session: &NewSession,
        token: &NewRefreshToken,
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO sessions (id, user_id, created_at, last_used_at, client_address, user_agent)
             VALUES (?1, ?2, ?3, ?3, ?4, ?5)",
        )
        .bind(session.id)
        .bind(session.user_id)
        .bind(micros(session.created_at))
        .bind(&session.client_address)
        .bind(&session.user_agent)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(&token.hash[..])
        .bind(session.id)
        .bind(micros(token.created_at))
        .bind(micros(token.expires_at))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_refresh_token(
        &self,
        presented: &[u8; 32],
        next: &NewRefreshToken,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError> {
        // The first statement writes, so the transaction takes SQLite's write lock at
        // once and concurrent refreshes queue on the busy timeout instead of failing.
        let mut tx = self.pool.begin().await?;
        let spent = sqlx::query(
            "UPDATE refresh_tokens SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL
             RETURNING session_id, expires_at",
        )
        .bind(&presented[..])
        .bind(micros(now))
        .fetch_optional(&mut *tx)
        .await?;
        let Some(spent) = spent else {
            let session_id: Option<Uuid> =
                sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE token_hash = ?1")
                    .bind(&presented[..])
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(session_id) = session_id else {
                return Ok(Rotation::Unknown);
            };
            sqlx::query(
                "UPDATE sessions SET revoked_at = ?2, revoke_reason = 'refresh_token_reuse'
                 WHERE id = ?1 AND revoked_at IS NULL",
            )
            .bind(session_id)
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Rotation::Reused { session_id });
        };
        let session_id: Uuid = spent.try_get("session_id")?;
        let expires_at = time(&spent, "expires_at")?;
        let live = sqlx::query(
            "SELECT s.user_id FROM sessions s JOIN identities i ON i.id = s.user_id
             WHERE s.id = ?1 AND s.revoked_at IS NULL AND i.disabled_at IS NULL",
        )
        .bind(session_id)
        .fetch_optional(&mut *tx)
        .await?;
        let (Some(live), true) = (live, expires_at > now) else {
            tx.commit().await?;
            return Ok(Rotation::Dead);
        };
        let user_id: Uuid = live.try_get("user_id")?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4)",
        )
        .bind(&next.hash[..])
        .bind(session_id)
        .bind(micros(next.created_at))
        .bind(micros(next.expires_at))
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE sessions SET last_used_at = ?2 WHERE id = ?1")
            .bind(session_id)
            .bind(micros(now))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(Rotation::Rotated {
            session_id,
            user_id,
        })
    }

    async fn revoke_session_by_refresh_token(
        &self,
        presented: &[u8; 32],
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        Ok(sqlx::query_scalar(
            "UPDATE sessions SET revoked_at = ?2, revoke_reason = ?3
             WHERE revoked_at IS NULL AND id = (
                 SELECT session_id FROM refresh_tokens WHERE token_hash = ?1 AND used_at IS NULL)
             RETURNING id",
        )
        .bind(&presented[..])
        .bind(micros(now))
        .bind(reason)
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn revoked_sessions_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(Uuid, DateTime<Utc>)>, StoreError> {
        let rows = sqlx::query("SELECT id, revoked_at FROM sessions WHERE revoked_at >= ?1")
            .bind(micros(since))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("id")?, time(r, "revoked_at")?)))
            .collect()
    }

    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let rows = sqlx::query("SELECT * FROM signing_keys ORDER BY generation")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(key_from_row).collect::<Result<_, _>>()?)
    }

    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO signing_keys
               (generation, kid, algorithm, public_key, private_key, encrypted, created_at, activates_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (generation) DO NOTHING",
        )
        .bind(key.generation)
        .bind(&key.kid)
        .bind(&key.algorithm)
        .bind(&key.public_key)
        .bind(&key.private_key)
        .bind(key.encrypted)
        .bind(micros(key.created_at))
        .bind(micros(key.activates_at))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn set_key_activation(
        &self,
        generation: i64,
        activates_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE signing_keys SET activates_at = ?2 WHERE generation = ?1")
            .bind(generation)
            .bind(micros(activates_at))
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
