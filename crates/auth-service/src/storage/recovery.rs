//! One-time tokens (email verification, password reset, email change and its
//! cancel link): issued with their notification in one transaction, spent
//! with their effect in one transaction. Spending is one conditional UPDATE,
//! so two concurrent uses of a token cannot both succeed; every transaction
//! locks the identity first (`lock_identity`), so spends and credential
//! changes queue in one order. The use case decides what a spend changes and
//! which events it sends; these functions write the rows.

use super::{Ends, LockedIdentity, Sql, StoreError};
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
    /// Sent to the old address with an email change: stops the change, or
    /// undoes it once made.
    CancelEmailChange,
}

impl Purpose {
    pub(crate) const fn as_str(self) -> &'static str {
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
    /// The identity moved to the (verified) address of the token.
    Changed(UserId),
}

/// An unspent, unexpired token, as a use case reads it to plan its effect.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LiveToken {
    pub user_id: UserId,
    pub purpose: String,
    /// The address it was sent to.
    pub email: String,
    #[sqlx(try_from = "Timestamp")]
    pub created_at: DateTime<Utc>,
}

/// What spending a reset token changed.
#[derive(Debug, Clone)]
pub struct PasswordReset {
    pub user_id: UserId,
    pub revoked: Vec<SessionId>,
}

/// What a cancel link does, as the use case planned it from the identity's
/// address `current` when it read the token.
#[derive(Debug, Clone)]
pub struct CancelPlan<'a> {
    pub user_id: UserId,
    pub current: &'a str,
    /// The address the link was sent to: the account goes back to it if it
    /// has left it.
    pub restore: &'a str,
    /// The password no longer works (whoever started the change knows it).
    pub no_password: &'a str,
    /// Cancel links issued at or after this end too: they undo changes made
    /// after the state being restored (a thief's own later moves).
    pub later_links_from: DateTime<Utc>,
    pub ends: Ends,
    /// A reset link to `restore`, and the events (its notification, notices).
    pub reset: &'a NewOneTimeToken,
    pub events: &'a [OutboxEvent],
}

/// What a cancel link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// As planned; the sessions revoked.
    Done(Vec<SessionId>),
    /// The identity changed address since the plan was made: plan again.
    Stale,
    /// No such live link (or its identity is disabled).
    Invalid,
}

/// One-time tokens.
#[async_trait]
pub trait RecoveryStore: Send + Sync + std::fmt::Debug {
    /// The unspent, unexpired token with `hash` if it is for one of `purposes`.
    async fn live_token(
        &self,
        hash: &[u8; 32],
        purposes: &[Purpose],
        now: DateTime<Utc>,
    ) -> Result<Option<LiveToken>, StoreError>;
    /// Whether a live link that can bring an account back to `email` (one it
    /// left less than the revert window ago) reserves it against anyone but
    /// `except`: a thief must not take the address to block the revert.
    async fn address_reserved(
        &self,
        email: &str,
        except: Option<UserId>,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;
    /// Stores `tokens` (of one identity) and their notification `events` if
    /// the identity is enabled, its credentials are still at `version` (the
    /// one the request checked) and, but for an email change (whose token
    /// names the new address), its email is the token's. An earlier unspent
    /// token of the same identity and purpose is superseded (a cancel link
    /// only by a newer one to the same address). Returns whether stored.
    async fn issue_tokens(
        &self,
        tokens: &[NewOneTimeToken],
        events: &[OutboxEvent],
        version: i64,
    ) -> Result<bool, StoreError>;
    /// Spends a verification or email-change token of an enabled identity
    /// still at address `current`: marks the address verified if it is still
    /// the identity's, or moves the identity to it (`EmailTaken` if another
    /// took it meanwhile: nothing is spent), ends what `ends` names and
    /// records `events` (for a move only).
    async fn verify_email(
        &self,
        hash: &[u8; 32],
        current: &str,
        (ends, events): (&Ends, &[OutboxEvent]),
        now: DateTime<Utc>,
    ) -> Result<Option<Verified>, StoreError>;
    /// Spends a reset token of an enabled identity that still has the address
    /// it was sent to: sets the password hash, ends what `ends` names and
    /// records `events`.
    async fn reset_password(
        &self,
        hash: &[u8; 32],
        password_hash: &str,
        (ends, events): (&Ends, &[OutboxEvent]),
        now: DateTime<Utc>,
    ) -> Result<Option<PasswordReset>, StoreError>;
    /// Spends a cancel link as `plan` says.
    async fn cancel_email_change(
        &self,
        hash: &[u8; 32],
        plan: &CancelPlan<'_>,
        now: DateTime<Utc>,
    ) -> Result<Cancelled, StoreError>;
}

platform::generic_store! {
    impl<DB> Sql<DB> {
        /// Spends the unspent, unexpired token with `hash` for `purpose`;
        /// returns its identity and address.
        async fn spend_token(
            conn: &mut DB::Connection,
            hash: &[u8; 32],
            purpose: &str,
            now: DateTime<Utc>,
        ) -> Result<Option<(UserId, String)>, StoreError> {
            Ok(sqlx::query_as(
                "UPDATE one_time_tokens SET used_at = $3
                 WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3
                 RETURNING user_id, email",
            )
            .bind(&hash[..])
            .bind(purpose)
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

        /// Spends every unspent token `token` supersedes: of its identity and
        /// purpose, and for a cancel link only those to the same address (a
        /// later change's link must not end the link that undoes an earlier one).
        async fn supersede(
            conn: &mut DB::Connection,
            token: &NewOneTimeToken,
        ) -> Result<(), StoreError> {
            let scoped = token.purpose == Purpose::CancelEmailChange;
            let sql = format!(
                "UPDATE one_time_tokens SET used_at = $3
                 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL{}",
                if scoped { " AND email = $4" } else { "" }
            );
            let query = sqlx::query(&sql)
                .bind(token.user_id)
                .bind(token.purpose.as_str())
                .bind(Timestamp(token.created_at));
            if scoped {
                query.bind(&token.email).execute(conn).await?;
            } else {
                query.execute(conn).await?;
            }
            Ok(())
        }
    }
}

/// Whether `locked` is an enabled identity still at `address`.
fn still_at(locked: &LockedIdentity, address: &str) -> bool {
    !locked.disabled && locked.email == address
}

platform::generic_store! {
    #[async_trait]
    impl<DB> RecoveryStore for Sql<DB> {
        async fn live_token(
            &self,
            hash: &[u8; 32],
            purposes: &[Purpose],
            now: DateTime<Utc>,
        ) -> Result<Option<LiveToken>, StoreError> {
            let found: Option<LiveToken> = sqlx::query_as(
                "SELECT user_id, purpose, email, created_at FROM one_time_tokens
                 WHERE token_hash = $1 AND used_at IS NULL AND expires_at > $2",
            )
            .bind(&hash[..])
            .bind(Timestamp(now))
            .fetch_optional(&self.pool)
            .await?;
            Ok(found.filter(|t| purposes.iter().any(|p| p.as_str() == t.purpose)))
        }

        async fn address_reserved(
            &self,
            email: &str,
            except: Option<UserId>,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let holders: Vec<UserId> = sqlx::query_scalar(
                "SELECT user_id FROM one_time_tokens
                 WHERE email = $1 AND purpose = 'cancel_email_change'
                   AND used_at IS NULL AND expires_at > $2
                 LIMIT 2",
            )
            .bind(email)
            .bind(Timestamp(now))
            .fetch_all(&self.pool)
            .await?;
            Ok(holders.iter().any(|h| Some(*h) != except))
        }

        async fn issue_tokens(
            &self,
            tokens: &[NewOneTimeToken],
            events: &[OutboxEvent],
            version: i64,
        ) -> Result<bool, StoreError> {
            let Some(first) = tokens.first() else {
                return Ok(false);
            };
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let Some(locked) = Self::lock_identity(&mut tx, first.user_id).await? else {
                return Ok(false);
            };
            let sent_where_expected = |t: &NewOneTimeToken| {
                t.user_id == first.user_id
                    && (t.purpose == Purpose::ChangeEmail || t.email == locked.email)
            };
            if locked.disabled
                || locked.credential_version != version
                || !tokens.iter().all(sent_where_expected)
            {
                return Ok(false);
            }
            for token in tokens {
                Self::supersede(&mut tx, token).await?;
                Self::insert_token(&mut tx, token).await?;
            }
            SqlOutbox::<DB>::insert_all(&mut tx, events).await?;
            tx.commit().await?;
            Ok(true)
        }

        async fn verify_email(
            &self,
            hash: &[u8; 32],
            current: &str,
            (ends, events): (&Ends, &[OutboxEvent]),
            now: DateTime<Utc>,
        ) -> Result<Option<Verified>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let purposes = [Purpose::ChangeEmail.as_str(), Purpose::VerifyEmail.as_str()];
            let Some((_, purpose, locked)) =
                Self::lock_token_owner(&mut tx, hash, &purposes).await?
            else {
                return Ok(None);
            };
            if !still_at(&locked, current) {
                return Ok(None);
            }
            let Some((user_id, address)) = Self::spend_token(&mut tx, hash, &purpose, now).await?
            else {
                return Ok(None);
            };
            if purpose == Purpose::VerifyEmail.as_str() {
                if address != locked.email {
                    // Sent to an address the identity has left: it proves nothing.
                    return Ok(None);
                }
                sqlx::query("UPDATE identities SET email_verified = TRUE, updated_at = $2 WHERE id = $1")
                    .bind(user_id)
                    .bind(Timestamp(now))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                return Ok(Some(Verified::Address(user_id)));
            }
            let moved = sqlx::query(
                "UPDATE identities SET email = $2, email_verified = TRUE, updated_at = $3
                 WHERE id = $1",
            )
            .bind(user_id)
            .bind(&address)
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
            SqlOutbox::<DB>::insert_all(&mut tx, events).await?;
            tx.commit().await?;
            Ok(Some(Verified::Changed(user_id)))
        }

        async fn reset_password(
            &self,
            hash: &[u8; 32],
            password_hash: &str,
            (ends, events): (&Ends, &[OutboxEvent]),
            now: DateTime<Utc>,
        ) -> Result<Option<PasswordReset>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let purpose = Purpose::ResetPassword.as_str();
            let Some((_, _, locked)) = Self::lock_token_owner(&mut tx, hash, &[purpose]).await?
            else {
                return Ok(None);
            };
            let Some((user_id, sent_to)) = Self::spend_token(&mut tx, hash, purpose, now).await?
            else {
                return Ok(None);
            };
            // A move ends the reset tokens anyway; the address is checked too,
            // so a link mailed to an address the account has left never works.
            if !still_at(&locked, &sent_to) {
                return Ok(None);
            }
            sqlx::query("UPDATE identities SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(user_id)
                .bind(password_hash)
                .bind(Timestamp(now))
                .execute(&mut *tx)
                .await?;
            let revoked = Self::end_artefacts(&mut tx, user_id, ends, None, now).await?;
            SqlOutbox::<DB>::insert_all(&mut tx, events).await?;
            tx.commit().await?;
            Ok(Some(PasswordReset { user_id, revoked }))
        }

        async fn cancel_email_change(
            &self,
            hash: &[u8; 32],
            plan: &CancelPlan<'_>,
            now: DateTime<Utc>,
        ) -> Result<Cancelled, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let purpose = Purpose::CancelEmailChange.as_str();
            let Some((owner, _, locked)) = Self::lock_token_owner(&mut tx, hash, &[purpose]).await?
            else {
                return Ok(Cancelled::Invalid);
            };
            if owner != plan.user_id || locked.disabled {
                return Ok(Cancelled::Invalid);
            }
            if locked.email != plan.current {
                return Ok(Cancelled::Stale);
            }
            let Some((_, sent_to)) = Self::spend_token(&mut tx, hash, purpose, now).await? else {
                return Ok(Cancelled::Invalid);
            };
            if sent_to != plan.restore {
                return Ok(Cancelled::Invalid);
            }
            let restored = sqlx::query(
                "UPDATE identities SET email = $2, email_verified = TRUE, password_hash = $3,
                                       updated_at = $4
                 WHERE id = $1",
            )
            .bind(plan.user_id)
            .bind(plan.restore)
            .bind(plan.no_password)
            .bind(Timestamp(now))
            .execute(&mut *tx)
            .await;
            match restored {
                Err(e) if DB::violates(&e, super::identities::EMAIL_KEY) => {
                    return Err(StoreError::EmailTaken);
                }
                other => other?,
            };
            let revoked = Self::end_artefacts(&mut tx, plan.user_id, &plan.ends, None, now).await?;
            sqlx::query(
                "UPDATE one_time_tokens SET used_at = $3
                 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL AND created_at >= $4",
            )
            .bind(plan.user_id)
            .bind(purpose)
            .bind(Timestamp(now))
            .bind(Timestamp(plan.later_links_from))
            .execute(&mut *tx)
            .await?;
            Self::insert_token(&mut tx, plan.reset).await?;
            SqlOutbox::<DB>::insert_all(&mut tx, plan.events).await?;
            tx.commit().await?;
            Ok(Cancelled::Done(revoked))
        }
    }
}
