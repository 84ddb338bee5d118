//! One-time tokens (email verification, password reset): issued with their
//! notification in one transaction, spent with their effect in one transaction.
//! Spending is one conditional UPDATE, so two concurrent uses of a token cannot
//! both succeed.

use super::{Sql, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::ids::{SessionId, UserId};
use platform::outbox::{OutboxEvent, SqlOutbox};
use platform::sql::Timestamp;

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Proves the address it was sent to belongs to the identity.
    VerifyEmail,
    /// Lets its holder set a new password.
    ResetPassword,
    /// Proves a new address belongs to the identity, which then moves to it.
    ChangeEmail,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::ChangeEmail => "change_email",
        }
    }
}

/// A token to store: only its SHA-256.
#[derive(Debug, Clone)]
pub struct NewOneTimeToken {
    pub hash: [u8; 32],
    pub purpose: Purpose,
    pub user_id: UserId,
    /// The address the token was sent to.
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// What spending a verification token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The identity's address is now verified.
    Address(UserId),
    /// The identity moved from `old` to the (verified) address of the token.
    Changed { user_id: UserId, old: String },
}

/// Builds the events a verified email change sends, from the identity, its
/// old and its new address.
pub type ChangeEvents<'a> =
    dyn Fn(UserId, &str, &str) -> Result<Vec<OutboxEvent>, StoreError> + Sync + 'a;

/// What spending a reset token changed.
#[derive(Debug, Clone)]
pub struct PasswordReset {
    pub user_id: UserId,
    pub email: String,
    pub revoked: Vec<SessionId>,
}

/// Builds the notice an effect sends, from the identity and its address.
pub type Notice<'a> = dyn Fn(UserId, &str) -> Result<Option<OutboxEvent>, StoreError> + Sync + 'a;

/// One-time tokens.
#[async_trait]
pub trait RecoveryStore: Send + Sync + std::fmt::Debug {
    /// Stores `token` and its notification `event`; every earlier unspent token
    /// of the same identity and purpose is superseded (spent). Nothing is
    /// written when the identity is disabled or (but for an email change, whose
    /// token names the new address) its email is no longer `token.email`;
    /// returns whether the token was stored.
    async fn issue_token(
        &self,
        token: &NewOneTimeToken,
        event: &OutboxEvent,
    ) -> Result<bool, StoreError>;
    /// Spends a verification token: marks the address it was sent to
    /// verified, if it is still the identity's, or, for an email change, moves
    /// the identity to it (`EmailTaken` if another took it meanwhile: nothing
    /// is spent) and records the `change` events.
    async fn verify_email(
        &self,
        hash: &[u8; 32],
        change: &ChangeEvents<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Verified>, StoreError>;
    /// Spends a reset token of an enabled identity: sets the password hash,
    /// revokes every session, spends every other reset token and records the
    /// notice event `notice` builds from the identity and its email, if any.
    async fn reset_password(
        &self,
        hash: &[u8; 32],
        password_hash: &str,
        notice: &Notice<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<PasswordReset>, StoreError>;
    /// Whether a token with `hash` for `purpose` could be spent now.
    async fn is_live(
        &self,
        hash: &[u8; 32],
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
}

platform::generic_store! {
    impl<DB> Sql<DB> {
        /// Spends the unspent, unexpired token with `hash` for `purpose`;
        /// returns its identity and address.
        async fn spend_token(
            conn: &mut DB::Connection,
            hash: &[u8; 32],
            purpose: Purpose,
            now: DateTime<Utc>,
        ) -> Result<Option<(UserId, String)>, StoreError> {
            Ok(sqlx::query_as(
                "UPDATE one_time_tokens SET used_at = $3
                 WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
                 RETURNING user_id, email",
            )
            .bind(&hash[..])
            .bind(purpose.as_str())
            .bind(Timestamp(now))
            .fetch_optional(conn)
            .await?)
        }

        /// Stores a token.
        pub(super) async fn insert_token(
            conn: &mut DB::Connection,
            token: &NewOneTimeToken,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO one_time_tokens (token_hash, purpose, user_id, email, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&token.hash[..])
            .bind(token.purpose.as_str())
            .bind(token.user_id)
            .bind(&token.email)
            .bind(Timestamp(token.created_at))
            .bind(Timestamp(token.expires_at))
            .execute(conn)
            .await?;
            Ok(())
        }

        /// Spends every unspent token of `user_id` for `purpose`.
        async fn supersede(
            conn: &mut DB::Connection,
            user_id: UserId,
            purpose: Purpose,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE one_time_tokens SET used_at = $3
                 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL",
            )
            .bind(user_id)
            .bind(purpose.as_str())
            .bind(Timestamp(now))
            .execute(conn)
            .await?;
            Ok(())
        }
    }
}

platform::generic_store! {
    #[async_trait]
    impl<DB> RecoveryStore for Sql<DB> {
        async fn issue_token(
            &self,
            token: &NewOneTimeToken,
            event: &OutboxEvent,
        ) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let same_address = if token.purpose == Purpose::ChangeEmail {
                ""
            } else {
                " AND email = $2"
            };
            let current: Option<UserId> = sqlx::query_scalar(&format!(
                "SELECT id FROM identities WHERE id = $1 AND disabled_at IS NULL{same_address}{}",
                DB::FOR_UPDATE
            ))
            .bind(token.user_id)
            .bind(&token.email)
            .fetch_optional(&mut *tx)
            .await?;
            if current.is_none() {
                return Ok(false);
            }
            Self::supersede(&mut tx, token.user_id, token.purpose, token.created_at).await?;
            Self::insert_token(&mut tx, token).await?;
            SqlOutbox::<DB>::insert(&mut tx, event).await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn verify_email(
            &self,
            hash: &[u8; 32],
            change: &ChangeEvents<'_>,
            now: DateTime<Utc>,
        ) -> Result<Option<Verified>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            if let Some((user_id, new)) =
                Self::spend_token(&mut tx, hash, Purpose::ChangeEmail, now).await?
            {
                let old: Option<String> = sqlx::query_scalar(&format!(
                    "SELECT email FROM identities WHERE id = $1 AND disabled_at IS NULL{}",
                    DB::FOR_UPDATE
                ))
                .bind(user_id)
                .fetch_optional(&mut *tx)
                .await?;
                let Some(old) = old else {
                    return Ok(None);
                };
                let moved = sqlx::query(
                    "UPDATE identities SET email = $2, email_verified = TRUE, updated_at = $3
                     WHERE id = $1",
                )
                .bind(user_id)
                .bind(&new)
                .bind(Timestamp(now))
                .execute(&mut *tx)
                .await;
                match moved {
                    Err(e) if DB::violates(&e, super::identities::EMAIL_KEY) => {
                        return Err(StoreError::EmailTaken);
                    }
                    other => other?,
                };
                for purpose in [Purpose::VerifyEmail, Purpose::ChangeEmail] {
                    Self::supersede(&mut tx, user_id, purpose, now).await?;
                }
                SqlOutbox::<DB>::insert_all(&mut tx, &change(user_id, &old, &new)?).await?;
                tx.commit().await?;
                return Ok(Some(Verified::Changed { user_id, old }));
            }
            let Some((user_id, email)) =
                Self::spend_token(&mut tx, hash, Purpose::VerifyEmail, now).await?
            else {
                return Ok(None);
            };
            let done = sqlx::query(
                "UPDATE identities SET email_verified = TRUE, updated_at = $3
                 WHERE id = $1 AND email = $2 AND disabled_at IS NULL",
            )
            .bind(user_id)
            .bind(&email)
            .bind(Timestamp(now))
            .execute(&mut *tx)
            .await?;
            if DB::rows_affected(&done) != 1 {
                // The address changed or the identity was disabled since: the
                // token proves nothing any more, and stays unspent for nobody.
                return Ok(None);
            }
            tx.commit().await?;
            Ok(Some(Verified::Address(user_id)))
        }

        async fn reset_password(
            &self,
            hash: &[u8; 32],
            password_hash: &str,
            notice: &Notice<'_>,
            now: DateTime<Utc>,
        ) -> Result<Option<PasswordReset>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let Some((user_id, _)) =
                Self::spend_token(&mut tx, hash, Purpose::ResetPassword, now).await?
            else {
                return Ok(None);
            };
            let email: Option<String> = sqlx::query_scalar(
                "UPDATE identities SET password_hash = $2, updated_at = $3
                 WHERE id = $1 AND disabled_at IS NULL RETURNING email",
            )
            .bind(user_id)
            .bind(password_hash)
            .bind(Timestamp(now))
            .fetch_optional(&mut *tx)
            .await?;
            let Some(email) = email else {
                return Ok(None);
            };
            Self::supersede(&mut tx, user_id, Purpose::ResetPassword, now).await?;
            let revoked =
                Self::revoke_user_sessions(&mut tx, user_id, None, now, "password_reset").await?;
            SqlOutbox::<DB>::insert_all(&mut tx, notice(user_id, &email)?.as_slice()).await?;
            tx.commit().await?;
            Ok(Some(PasswordReset {
                user_id,
                email,
                revoked,
            }))
        }

        async fn is_live(
            &self,
            hash: &[u8; 32],
            purpose: Purpose,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let found: Option<i32> = sqlx::query_scalar(
                "SELECT 1 FROM one_time_tokens
                 WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
            )
            .bind(&hash[..])
            .bind(purpose.as_str())
            .bind(Timestamp(now))
            .fetch_optional(&self.pool)
            .await?;
            Ok(found.is_some())
        }
    }
}
