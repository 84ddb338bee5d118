//! One-time tokens (email verification, password reset, email change and its
//! cancel link): issued with their notification in one transaction, spent
//! with their effect in one transaction. Spending is one conditional UPDATE,
//! so two concurrent uses of a token cannot both succeed; every transaction
//! locks the identity first (`lock_identity`), so spends and credential
//! changes queue in one order. The use case decides what a spend changes and
//! which events it sends; these functions write the rows.

use super::model::*;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::ids::UserId;
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

        /// Spends the unspent tokens of `purpose` the identity was issued from
        /// `from` on.
        pub async fn spend_links_since(
            c: &mut DB::Connection,
            user_id: UserId,
            purpose: Purpose,
            from: DateTime<Utc>,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE one_time_tokens SET used_at = $3
                 WHERE user_id = $1 AND purpose = $2 AND used_at IS NULL AND created_at >= $4",
            )
            .bind(user_id)
            .bind(purpose.as_str())
            .bind(Timestamp(now))
            .bind(Timestamp(from))
            .execute(c)
            .await?;
            Ok(())
        }
    }
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
    }
}
