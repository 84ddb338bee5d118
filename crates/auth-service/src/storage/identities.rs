//! Identities and their credentials: registration, lookups, password changes and
//! disabling, each with its effect on sessions in the same transaction.

use super::{Ends, NewOneTimeToken, Sql, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::ids::{SessionId, UserId};
use platform::outbox::{OutboxEvent, SqlOutbox};
use platform::sql::{Timestamp, UniqueKey};

pub(super) const EMAIL_KEY: UniqueKey = UniqueKey {
    name: "identities_email_key",
    columns: "identities.email",
};

const IDENTITY: &str = "SELECT id, email, display_name, password_hash, email_verified,
                               disabled_at IS NOT NULL AS disabled, credential_version
                        FROM identities";

/// A new identity to insert.
#[derive(Debug, Clone)]
pub struct NewIdentity {
    pub id: UserId,
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub roles: Vec<String>,
    pub created_at: DateTime<Utc>,
    /// The first email verification, sent with the registration.
    pub verification: Option<NewOneTimeToken>,
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

/// Identities and credentials.
#[async_trait]
pub trait IdentityStore: Send + Sync + std::fmt::Debug {
    /// Inserts an identity, its roles, its first verification token and
    /// `events` (for the outbox); `EmailTaken` when the email exists.
    async fn insert_identity(
        &self,
        identity: &NewIdentity,
        events: &[OutboxEvent],
    ) -> Result<(), StoreError>;
    /// The identity with this normalised email.
    async fn identity_by_email(&self, email: &str) -> Result<Option<IdentityRecord>, StoreError>;
    /// The identity with this id.
    async fn identity_by_id(&self, id: UserId) -> Result<Option<IdentityRecord>, StoreError>;
    /// Replaces the password hash if it is still `expected` (a re-hash with new
    /// parameters never overwrites a password changed meanwhile); true if replaced.
    async fn rehash_password(
        &self,
        user_id: UserId,
        expected: &str,
        hash: &str,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Sets a new password hash if the current one is still `expected`, ends
    /// what `ends` names (`current` is the session that asked) and records the
    /// `notice` events; returns the sessions revoked, or `None` when the
    /// password changed meanwhile (nothing written).
    async fn change_password(
        &self,
        (user_id, current): (UserId, Option<SessionId>),
        expected: &str,
        hash: &str,
        ends: &Ends,
        notice: &[OutboxEvent],
        now: DateTime<Utc>,
    ) -> Result<Option<Vec<SessionId>>, StoreError>;
    /// Disables an identity and ends what `ends` names; returns the sessions
    /// revoked now. Disabling twice changes nothing.
    async fn disable_identity(
        &self,
        user_id: UserId,
        ends: &Ends,
        now: DateTime<Utc>,
    ) -> Result<Vec<SessionId>, StoreError>;
}

platform::generic_store! {
    impl<DB> Sql<DB> {
        /// Sets the password hash if it is still `expected`; true if it was.
        async fn replace_hash(
            conn: &mut DB::Connection,
            user_id: UserId,
            expected: &str,
            hash: &str,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE identities SET password_hash = $3, updated_at = $4
                 WHERE id = $1 AND password_hash = $2",
            )
            .bind(user_id)
            .bind(expected)
            .bind(hash)
            .bind(Timestamp(now))
            .execute(conn)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }
    }
}

platform::generic_store! {
    #[async_trait]
    impl<DB> IdentityStore for Sql<DB> {
        async fn insert_identity(
            &self,
            identity: &NewIdentity,
            events: &[OutboxEvent],
        ) -> Result<(), StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let inserted = sqlx::query(
                "INSERT INTO identities (id, email, display_name, password_hash, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(identity.id)
            .bind(&identity.email)
            .bind(&identity.display_name)
            .bind(&identity.password_hash)
            .bind(Timestamp(identity.created_at))
            .execute(&mut *tx)
            .await;
            match inserted {
                Err(e) if DB::violates(&e, EMAIL_KEY) => return Err(StoreError::EmailTaken),
                other => other?,
            };
            for role in &identity.roles {
                sqlx::query("INSERT INTO subject_roles (subject_id, role) VALUES ($1, $2)")
                    .bind(identity.id)
                    .bind(role)
                    .execute(&mut *tx)
                    .await?;
            }
            if let Some(token) = &identity.verification {
                Self::insert_token(&mut tx, token).await?;
            }
            SqlOutbox::<DB>::insert_all(&mut tx, events).await?;
            tx.commit().await?;
            Ok(())
        }

        async fn identity_by_email(
            &self,
            email: &str,
        ) -> Result<Option<IdentityRecord>, StoreError> {
            Ok(sqlx::query_as(&format!("{IDENTITY} WHERE email = $1"))
                .bind(email)
                .fetch_optional(&self.pool)
                .await?)
        }

        async fn identity_by_id(&self, id: UserId) -> Result<Option<IdentityRecord>, StoreError> {
            Ok(sqlx::query_as(&format!("{IDENTITY} WHERE id = $1"))
                .bind(id)
                .fetch_optional(&self.pool)
                .await?)
        }

        async fn rehash_password(
            &self,
            user_id: UserId,
            expected: &str,
            hash: &str,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let mut conn = self.pool.acquire().await?;
            Self::replace_hash(&mut conn, user_id, expected, hash, now).await
        }

        async fn change_password(
            &self,
            (user_id, current): (UserId, Option<SessionId>),
            expected: &str,
            hash: &str,
            ends: &Ends,
            notice: &[OutboxEvent],
            now: DateTime<Utc>,
        ) -> Result<Option<Vec<SessionId>>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            if !Self::replace_hash(&mut tx, user_id, expected, hash, now).await? {
                return Ok(None);
            }
            let revoked = Self::end_artefacts(&mut tx, user_id, ends, current, now).await?;
            SqlOutbox::<DB>::insert_all(&mut tx, notice).await?;
            tx.commit().await?;
            Ok(Some(revoked))
        }

        async fn disable_identity(
            &self,
            user_id: UserId,
            ends: &Ends,
            now: DateTime<Utc>,
        ) -> Result<Vec<SessionId>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            sqlx::query(
                "UPDATE identities SET disabled_at = $2, updated_at = $2
                 WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(user_id)
            .bind(Timestamp(now))
            .execute(&mut *tx)
            .await?;
            let revoked = Self::end_artefacts(&mut tx, user_id, ends, None, now).await?;
            tx.commit().await?;
            Ok(revoked)
        }
    }
}
