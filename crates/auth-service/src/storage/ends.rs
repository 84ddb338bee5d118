//! Ending what a credential or address change leaves behind (sessions, one-time
//! tokens, second-factor challenges, a pending enrolment), written in the
//! change's own transaction. What each change ends is decided by the service's
//! table (`service::changes`); this only writes the rows it names.

use super::{Sql, StoreError};
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

/// What one change ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ends {
    pub sessions: SessionsEnded,
    /// Unspent one-time tokens of every purpose (verification, reset, email
    /// change and its cancellation).
    pub one_time_tokens: bool,
    /// Logins waiting for their second factor.
    pub mfa_challenges: bool,
    /// A TOTP secret enrolled but not yet confirmed.
    pub totp_enrolment: bool,
    /// Recorded as the sessions' revoke reason.
    pub reason: &'static str,
}

platform::generic_store! {
    impl<DB> Sql<DB> {
        /// Ends what `ends` names for `user_id`; `current` is the session that
        /// made the change. Returns the sessions revoked.
        pub(super) async fn end_artefacts(
            conn: &mut DB::Connection,
            user_id: UserId,
            ends: &Ends,
            current: Option<SessionId>,
            now: DateTime<Utc>,
        ) -> Result<Vec<SessionId>, StoreError> {
            if ends.one_time_tokens {
                sqlx::query(
                    "UPDATE one_time_tokens SET used_at = $2
                     WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user_id)
                .bind(Timestamp(now))
                .execute(&mut *conn)
                .await?;
            }
            if ends.mfa_challenges {
                sqlx::query(
                    "UPDATE mfa_challenges SET used_at = $2
                     WHERE user_id = $1 AND used_at IS NULL",
                )
                .bind(user_id)
                .bind(Timestamp(now))
                .execute(&mut *conn)
                .await?;
            }
            if ends.totp_enrolment {
                sqlx::query("DELETE FROM mfa_totp WHERE user_id = $1 AND confirmed_at IS NULL")
                    .bind(user_id)
                    .execute(&mut *conn)
                    .await?;
            }
            let except = match ends.sessions {
                SessionsEnded::Keep => return Ok(Vec::new()),
                SessionsEnded::AllButCurrent => current,
                SessionsEnded::All => None,
            };
            Self::revoke_user_sessions(conn, user_id, except, now, ends.reason).await
        }
    }
}
