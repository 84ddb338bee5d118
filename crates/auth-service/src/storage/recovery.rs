//! One-time tokens (email verification, password reset): issued with their
//! notification in one transaction, spent with their effect in one transaction.
//! Spending is one conditional UPDATE, so two concurrent uses of a token cannot
//! both succeed.

use super::{Ends, Sql, StoreError};
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
    /// Sent to the old address with an email change: stops the change.
    CancelEmailChange,
}

impl Purpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::ChangeEmail => "change_email",
            Self::CancelEmailChange => "cancel_email_change",
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
    /// Stores `tokens` (of one identity) and their notification `events`;
    /// every earlier unspent token of the same identity and purpose is
    /// superseded (spent). Nothing is written when the identity is disabled
    /// or (but for an email change, whose token names the new address) its
    /// email is no longer the token's; returns whether the tokens were stored.
    async fn issue_tokens(
        &self,
        tokens: &[NewOneTimeToken],
        events: &[OutboxEvent],
    ) -> Result<bool, StoreError>;
    /// Spends a verification token: marks the address it was sent to
    /// verified, if it is still the identity's, or, for an email change, moves
    /// the identity to it (`EmailTaken` if another took it meanwhile: nothing
    /// is spent), ends what `ends` names and records the `change` events.
    async fn verify_email(
        &self,
        hash: &[u8; 32],
        ends: &Ends,
        change: &ChangeEvents<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<Verified>, StoreError>;
    /// Spends a reset token of an enabled identity: sets the password hash,
    /// ends what `ends` names and records the notice event `notice` builds
    /// from the identity and its email, if any.
    async fn reset_password(
        &self,
        hash: &[u8; 32],
        password_hash: &str,
        ends: &Ends,
        notice: &Notice<'_>,
        now: DateTime<Utc>,
    ) -> Result<Option<PasswordReset>, StoreError>;
    /// Spends a cancellation token sent to the old address with an email
    /// change, and ends what `ends` names (the pending change among it);
    /// returns the identity and the sessions revoked.
    async fn cancel_email_change(
        &self,
        hash: &[u8; 32],
        ends: &Ends,
        now: DateTime<Utc>,
    ) -> Result<Option<(UserId, Vec<SessionId>)>, StoreError>;
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
        async fn issue_tokens(
            &self,
            tokens: &[NewOneTimeToken],
            events: &[OutboxEvent],
        ) -> Result<bool, StoreError> {
            let Some(first) = tokens.first() else {
                return Ok(false);
            };
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let current: Option<String> = sqlx::query_scalar(&format!(
                "SELECT email FROM identities WHERE id = $1 AND disabled_at IS NULL{}",
                DB::FOR_UPDATE
            ))
            .bind(first.user_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(current) = current else {
                return Ok(false);
            };
            let sent_where_expected = |t: &NewOneTimeToken| {
                t.user_id == first.user_id
                    && (t.purpose == Purpose::ChangeEmail || t.email == current)
            };
            if !tokens.iter().all(sent_where_expected) {
                return Ok(false);
            }
            for token in tokens {
                Self::supersede(&mut tx, token.user_id, token.purpose, token.created_at).await?;
                Self::insert_token(&mut tx, token).await?;
            }
            SqlOutbox::<DB>::insert_all(&mut tx, events).await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn verify_email(
            &self,
            hash: &[u8; 32],
            ends: &Ends,
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
                Self::end_artefacts(&mut tx, user_id, ends, None, now).await?;
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
            ends: &Ends,
            notice: &Notice<'_>,
            now: DateTime<Utc>,
        ) -> Result<Option<PasswordReset>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let Some((user_id, sent_to)) =
                Self::spend_token(&mut tx, hash, Purpose::ResetPassword, now).await?
            else {
                return Ok(None);
            };
            // A move ends the reset tokens anyway; the address is checked too,
            // so a link mailed to an address the account has left never works.
            let email: Option<String> = sqlx::query_scalar(
                "UPDATE identities SET password_hash = $2, updated_at = $3
                 WHERE id = $1 AND email = $4 AND disabled_at IS NULL RETURNING email",
            )
            .bind(user_id)
            .bind(password_hash)
            .bind(Timestamp(now))
            .bind(&sent_to)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(email) = email else {
                return Ok(None);
            };
            let revoked = Self::end_artefacts(&mut tx, user_id, ends, None, now).await?;
            SqlOutbox::<DB>::insert_all(&mut tx, notice(user_id, &email)?.as_slice()).await?;
            tx.commit().await?;
            Ok(Some(PasswordReset {
                user_id,
                email,
                revoked,
            }))
        }

        async fn cancel_email_change(
            &self,
            hash: &[u8; 32],
            ends: &Ends,
            now: DateTime<Utc>,
        ) -> Result<Option<(UserId, Vec<SessionId>)>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let Some((user_id, sent_to)) =
                Self::spend_token(&mut tx, hash, Purpose::CancelEmailChange, now).await?
            else {
                return Ok(None);
            };
            // Only from the address the account still has.
            let current: Option<UserId> = sqlx::query_scalar(&format!(
                "SELECT id FROM identities WHERE id = $1 AND email = $2{}",
                DB::FOR_UPDATE
            ))
            .bind(user_id)
            .bind(&sent_to)
            .fetch_optional(&mut *tx)
            .await?;
            if current.is_none() {
                return Ok(None);
            }
            let revoked = Self::end_artefacts(&mut tx, user_id, ends, None, now).await?;
            tx.commit().await?;
            Ok(Some((user_id, revoked)))
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
