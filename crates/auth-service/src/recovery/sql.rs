//! One-time tokens (email verification, password reset, email change and its
//! cancel link): issued with their notification in one transaction, spent
//! with their effect in one transaction. Spending is one conditional UPDATE,
//! so two concurrent uses of a token cannot both succeed; every transaction
//! locks the identity first (`lock_identity`), so spends and credential
//! changes queue in one order. The use case decides what a spend changes and
//! which events it sends; these functions write the rows.

use super::model::*;
use crate::credentials::Ends;
use crate::credentials::LockedIdentity;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::ids::UserId;
use platform::outbox::{OutboxEvent, SqlOutbox};
use platform::sql::Timestamp;

/// One-time tokens.
pub struct TokenSql<DB>(std::marker::PhantomData<DB>);

platform::generic_store! {
    impl<DB> TokenSql<DB> {
        /// Spends the unspent, unexpired token with `hash` for `purpose`;
        /// returns its identity and address.
        pub async fn spend_token(
            c: &mut DB::Connection,
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
            .fetch_optional(c)
            .await?)
        }

        /// Stores a token.
        pub async fn insert_token(
            c: &mut DB::Connection,
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
            .execute(c)
            .await?;
            Ok(())
        }

        /// Spends every unspent token `token` supersedes: of its identity and
        /// purpose, and for a cancel link only those to the same address (a
        /// later change's link must not end the link that undoes an earlier one).
        pub async fn supersede(
            c: &mut DB::Connection,
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
                query.bind(&token.email).execute(c).await?;
            } else {
                query.execute(c).await?;
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
        impl<DB> TokenSql<DB> {
        /// The unspent, unexpired token with `hash` if it is for one of `purposes`.
        pub async fn live_token(
            c: &mut DB::Connection,
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
            .fetch_optional(&mut *c)
            .await?;
            Ok(found.filter(|t| purposes.iter().any(|p| p.as_str() == t.purpose)))
        }

        /// Whether a live link that can bring an account back to `email` (one it
        /// left less than the revert window ago) reserves it against anyone but
        /// `except`: a thief must not take the address to block the revert.
        pub async fn address_reserved(
            c: &mut DB::Connection,
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
            .fetch_all(&mut *c)
            .await?;
            Ok(holders.iter().any(|h| Some(*h) != except))
        }

        /// Stores `tokens` (of one identity) and their notification `events` if
        /// the identity is enabled, its credentials are still at `version` (the
        /// one the request checked) and, but for an email change (whose token
        /// names the new address), its email is the token's. An earlier unspent
        /// token of the same identity and purpose is superseded (a cancel link
        /// only by a newer one to the same address). Returns whether stored.
        pub async fn issue_tokens(
            c: &mut DB::Connection,
            tokens: &[NewOneTimeToken],
            events: &[OutboxEvent],
            version: i64,
        ) -> Result<bool, StoreError> {
            let Some(first) = tokens.first() else {
                return Ok(false);
            };
            let Some(locked) = crate::credentials::EndsSql::<DB>::lock_identity(&mut *c, first.user_id).await? else {
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
                Self::supersede(&mut *c, token).await?;
                Self::insert_token(&mut *c, token).await?;
            }
            SqlOutbox::<DB>::insert_all(&mut *c, events).await?;
            Ok(true)
        }

        /// Spends a verification or email-change token of an enabled identity
        /// still at address `current`: marks the address verified if it is still
        /// the identity's, or moves the identity to it (`EmailTaken` if another
        /// took it meanwhile: nothing is spent), ends what `ends` names and
        /// records `events` (for a move only).
        pub async fn verify_email(
            c: &mut DB::Connection,
            hash: &[u8; 32],
            current: &str,
            (ends, events): (&Ends, &[OutboxEvent]),
            now: DateTime<Utc>,
        ) -> Result<Option<Verified>, StoreError> {
            let purposes = [Purpose::ChangeEmail.as_str(), Purpose::VerifyEmail.as_str()];
            let Some((_, purpose, locked)) =
                crate::credentials::EndsSql::<DB>::lock_token_owner(&mut *c, hash, &purposes).await?
            else {
                return Ok(None);
            };
            if !still_at(&locked, current) {
                return Ok(None);
            }
            let Some((user_id, address)) = Self::spend_token(&mut *c, hash, &purpose, now).await?
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
                    .execute(&mut *c)
                    .await?;
                return Ok(Some(Verified::Address(user_id)));
            }
            let moved = sqlx::query(
                "UPDATE identities SET email = $2, email_verified = TRUE, updated_at = $3
                 WHERE id = $1",
            )
            .bind(user_id)
            .bind(&address)
            .bind(Timestamp(now))
            .execute(&mut *c)
            .await;
            match moved {
                Err(e) if DB::violates(&e, crate::credentials::sql::EMAIL_KEY) => {
                    return Err(StoreError::EmailTaken);
                }
                other => other?,
            };
            crate::credentials::EndsSql::<DB>::end_artefacts(&mut *c, user_id, ends, None, now).await?;
            SqlOutbox::<DB>::insert_all(&mut *c, events).await?;
            Ok(Some(Verified::Changed(user_id)))
        }

        /// Spends a reset token of an enabled identity that still has the address
        /// it was sent to: sets the password hash, ends what `ends` names and
        /// records `events`.
        pub async fn reset_password(
            c: &mut DB::Connection,
            hash: &[u8; 32],
            password_hash: &str,
            (ends, events): (&Ends, &[OutboxEvent]),
            now: DateTime<Utc>,
        ) -> Result<Option<PasswordReset>, StoreError> {
            let purpose = Purpose::ResetPassword.as_str();
            let Some((_, _, locked)) = crate::credentials::EndsSql::<DB>::lock_token_owner(&mut *c, hash, &[purpose]).await?
            else {
                return Ok(None);
            };
            let Some((user_id, sent_to)) = Self::spend_token(&mut *c, hash, purpose, now).await?
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
                .execute(&mut *c)
                .await?;
            let revoked = crate::credentials::EndsSql::<DB>::end_artefacts(&mut *c, user_id, ends, None, now).await?;
            SqlOutbox::<DB>::insert_all(&mut *c, events).await?;
            Ok(Some(PasswordReset { user_id, revoked }))
        }

        /// Spends a cancel link as `plan` says.
        pub async fn cancel_email_change(
            c: &mut DB::Connection,
            hash: &[u8; 32],
            plan: &CancelPlan<'_>,
            now: DateTime<Utc>,
        ) -> Result<Cancelled, StoreError> {
            let purpose = Purpose::CancelEmailChange.as_str();
            let Some((owner, _, locked)) = crate::credentials::EndsSql::<DB>::lock_token_owner(&mut *c, hash, &[purpose]).await?
            else {
                return Ok(Cancelled::Invalid);
            };
            if owner != plan.user_id || locked.disabled {
                return Ok(Cancelled::Invalid);
            }
            if locked.email != plan.current {
                return Ok(Cancelled::Stale);
            }
            let Some((_, sent_to)) = Self::spend_token(&mut *c, hash, purpose, now).await? else {
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
            .execute(&mut *c)
            .await;
            match restored {
                Err(e) if DB::violates(&e, crate::credentials::sql::EMAIL_KEY) => {
                    return Err(StoreError::EmailTaken);
                }
                other => other?,
            };
            let revoked = crate::credentials::EndsSql::<DB>::end_artefacts(&mut *c, plan.user_id, &plan.ends, None, now).await?;
            sqlx::query(
                "UPDATE one_time_tokens SET used_at = $3
                 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL AND created_at >= $4",
            )
            .bind(plan.user_id)
            .bind(purpose)
            .bind(Timestamp(now))
            .bind(Timestamp(plan.later_links_from))
            .execute(&mut *c)
            .await?;
            Self::insert_token(&mut *c, plan.reset).await?;
            SqlOutbox::<DB>::insert_all(&mut *c, plan.events).await?;
            Ok(Cancelled::Done(revoked))
        }
    }
}
