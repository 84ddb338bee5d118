//! Ending what a credential or address change leaves behind (sessions, one-time
//! tokens, second-factor challenges, a pending enrolment), written in the
//! change's own transaction. What each change ends is decided by the service's
//! table (`service::changes`); this only writes the rows it names.

use super::changes::CredentialChange;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::ids::{SessionId, UserId};
use platform::sql::Timestamp;

/// Which of the identity's sessions a change ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionsEnded {
    /// None: the change does not alter who holds the account.
    Keep,
    /// Every one but the session that made the change.
    AllButCurrent,
    /// Every one.
    All,
}

/// The identity as a transaction locked it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LockedIdentity {
    pub email: String,
    pub credential_version: i64,
    pub disabled: bool,
}

/// What one change ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    pub sessions: SessionsEnded,
    /// Unspent one-time tokens of every purpose (verification, reset, email
    /// change) but the links that undo an email change.
    pub one_time_tokens: bool,
    /// The links mailed to an address an email change leaves, which stop or
    /// undo that change: they must outlive what the change's author does next.
    pub revert_links: bool,
    /// Logins waiting for their second factor.
    pub mfa_challenges: bool,
    /// A TOTP secret enrolled but not yet confirmed.
    pub totp_enrolment: bool,
    /// Recorded as the sessions' revoke reason.
    pub reason: &'static str,
}

/// The rows every change locks and ends.
pub struct EndsSql<DB>(std::marker::PhantomData<DB>);

platform::generic_store! {
    impl<DB> EndsSql<DB> {
        /// Locks the identity's row until the transaction ends. Every
        /// transaction that changes an identity or its tokens, challenges or
        /// factor takes this lock first, so they queue in one order (no
        /// deadlock between a spend and a change) and what one read still
        /// holds when it writes.
        pub async fn lock_identity(
            c: &mut DB::Connection,
            user_id: UserId,
        ) -> Result<Option<LockedIdentity>, StoreError> {
            Ok(sqlx::query_as(&format!(
                "SELECT email, credential_version, disabled_at IS NOT NULL AS disabled
                 FROM identities WHERE id = $1{}",
                DB::FOR_UPDATE
            ))
            .bind(user_id)
            .fetch_optional(c)
            .await?)
        }

        /// Locks the identity an unspent token of `purpose` belongs to.
        pub async fn lock_token_owner(
            c: &mut DB::Connection,
            hash: &[u8; 32],
            purposes: &[&str],
        ) -> Result<Option<(UserId, String, LockedIdentity)>, StoreError> {
            let found: Option<(UserId, String)> = sqlx::query_as(
                "SELECT user_id, purpose FROM one_time_tokens
                 WHERE token_hash = $1 AND used_at IS NULL",
            )
            .bind(&hash[..])
            .fetch_optional(&mut *c)
            .await?;
            let Some((user_id, purpose)) = found.filter(|(_, p)| purposes.contains(&p.as_str()))
            else {
                return Ok(None);
            };
            Ok(Self::lock_identity(c, user_id)
                .await?
                .map(|locked| (user_id, purpose, locked)))
        }

        /// Ends what `change` ends for `user_id` (its row of the table in
        /// `changes`) and tells the security-event feed; `current` is the
        /// session that made the change. Returns the sessions revoked.
        pub async fn end_artefacts(
            c: &mut DB::Connection,
            user_id: UserId,
            change: CredentialChange,
            current: Option<SessionId>,
            now: DateTime<Utc>,
        ) -> Result<Vec<SessionId>, StoreError> {
            let ends = &change.ends();
            if let Some(signal) = change.signal(user_id, now) {
                crate::signals::SignalSql::<DB>::emit(&mut *c, &[signal]).await?;
            }
            // Locks the identity too, if the change has not already.
            sqlx::query(
                "UPDATE identities SET credential_version = credential_version + 1 WHERE id = $1",
            )
            .bind(user_id)
            .execute(&mut *c)
            .await?;
            if ends.one_time_tokens {
                let kept = if ends.revert_links {
                    String::new()
                } else {
                    format!(
                        " AND purpose <> '{}'",
                        super::Purpose::CancelEmailChange.as_str()
                    )
                };
                sqlx::query(&format!(
                    "UPDATE one_time_tokens SET used_at = $2
                     WHERE user_id = $1 AND used_at IS NULL{kept}"
                ))
                .bind(user_id)
                .bind(Timestamp(now))
                .execute(&mut *c)
                .await?;
            }
            if ends.mfa_challenges {
                sqlx::query(
                    "UPDATE mfa_challenges SET used_at = $2
                     WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user_id)
                .bind(Timestamp(now))
                .execute(&mut *c)
                .await?;
            }
            if ends.totp_enrolment {
                sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NULL")
                    .bind(user_id)
                    .execute(&mut *c)
                    .await?;
            }
            let except = match ends.sessions {
                SessionsEnded::Keep => return Ok(Vec::new()),
                SessionsEnded::AllButCurrent => current,
                SessionsEnded::All => None,
            };
            crate::sessions::SessionSql::<DB>::revoke_user_sessions(
                c,
                user_id,
                except,
                now,
                ends.reason,
            )
            .await
        }
    }
}
