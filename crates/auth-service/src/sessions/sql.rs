//! Sessions and their refresh tokens: opening (only while the credential checked
//! still holds), rotation with reuse detection, listing and revocation (each
//! revoked session a `session-revoked` event of the feed, written with it).

use super::model::*;
use crate::signals::{Signal, SignalSql};
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::ids::{SessionId, UserId};
use platform::sql::{SqlType, Timestamp};

/// Sessions and refresh tokens.
pub struct SessionSql<DB>(std::marker::PhantomData<DB>);

platform::generic_store! {
    impl<DB> SessionSql<DB> {
        /// Revokes a user's active sessions but `except`; returns those revoked.
        pub async fn revoke_user_sessions(
            c: &mut DB::Connection,
            user_id: UserId,
            except: Option<SessionId>,
            now: DateTime<Utc>,
            reason: &str,
        ) -> Result<Vec<SessionId>, StoreError> {
            let ended: Vec<SessionId> = sqlx::query_scalar(&format!(
                "UPDATE sessions SET revoked_at = $3, revoke_reason = $4
                 WHERE user_id = $1 AND revoked_at IS NULL AND ({} IS NULL OR id <> $2)
                 RETURNING id",
                DB::typed(2, SqlType::Uuid)
            ))
            .bind(user_id)
            .bind(except.map(SessionId::uuid))
            .bind(Timestamp(now))
            .bind(reason)
            .fetch_all(&mut *c)
            .await?;
            let signals: Vec<Signal> = ended
                .iter()
                .map(|s| Signal::session_revoked(user_id, *s, reason, now))
                .collect();
            SignalSql::<DB>::emit(c, &signals).await?;
            Ok(ended)
        }

        pub async fn insert_refresh_token(
            c: &mut DB::Connection,
            token: &NewRefreshToken,
            session_id: SessionId,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(&token.hash[..])
            .bind(session_id)
            .bind(Timestamp(token.created_at))
            .bind(Timestamp(token.expires_at))
            .execute(c)
            .await?;
            Ok(())
        }
    }
}

platform::generic_store! {
    impl<DB> SessionSql<DB> {



        /// Sessions revoked at or after `since`, with when.
        pub async fn revoked_sessions_since(
            c: &mut DB::Connection,
            since: DateTime<Utc>,
        ) -> Result<Vec<(SessionId, DateTime<Utc>)>, StoreError> {
            let rows: Vec<(SessionId, Timestamp)> =
                sqlx::query_as("SELECT id, revoked_at FROM sessions WHERE revoked_at >= $1")
                    .bind(Timestamp(since))
                    .fetch_all(&mut *c)
                    .await?;
            Ok(rows.into_iter().map(|(id, at)| (id, at.0)).collect())
        }

        /// Up to `limit` active sessions of a user, newest first, older than `before`
        /// (a session's creation time and id) when given: read off one index,
        /// however many sessions the user has (the cursor's condition is only
        /// written when there is one, so a generic plan uses it too).
        pub async fn list_sessions(
            c: &mut DB::Connection,
            user_id: UserId,
            before: Option<(DateTime<Utc>, SessionId)>,
            limit: i64,
        ) -> Result<Vec<SessionRecord>, StoreError> {
            let (before_at, before_id) = before.unzip();
            let after_cursor = match before {
                Some(_) => "AND (created_at, id) < ($2, $3)",
                None => "",
            };
            Ok(sqlx::query_as(&format!(
                "SELECT id, user_id, created_at, last_used_at, client_address, user_agent
                 FROM sessions WHERE user_id = $1 AND revoked_at IS NULL {after_cursor}
                 ORDER BY created_at DESC, id DESC LIMIT $4"
            ))
            .bind(user_id)
            .bind(before_at.map(Timestamp))
            .bind(before_id.map(SessionId::uuid))
            .bind(limit)
            .fetch_all(&mut *c)
            .await?)
        }

        /// The user of an active session.
        pub async fn session_owner(
            c: &mut DB::Connection,
            session_id: SessionId,
        ) -> Result<Option<UserId>, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT user_id FROM sessions WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(session_id)
            .fetch_optional(&mut *c)
            .await?)
        }

        /// Spends the unspent refresh token hashed as `presented`: its session
        /// and expiry. One conditional UPDATE, so two concurrent refreshes with
        /// the same token cannot both spend it.
        pub async fn spend_refresh_token(
            c: &mut DB::Connection,
            presented: &[u8; 32],
            now: DateTime<Utc>,
        ) -> Result<Option<(SessionId, DateTime<Utc>)>, StoreError> {
            let spent: Option<(SessionId, Timestamp)> = sqlx::query_as(
                "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL
                 RETURNING session_id, expires_at",
            )
            .bind(&presented[..])
            .bind(Timestamp(now))
            .fetch_optional(c)
            .await?;
            Ok(spent.map(|(session, expires)| (session, expires.0)))
        }

        /// The session of the refresh token hashed as `presented`, current or
        /// spent, and whether it is spent.
        pub async fn refresh_token_session(
            c: &mut DB::Connection,
            presented: &[u8; 32],
        ) -> Result<Option<(SessionId, bool)>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT session_id, used_at IS NOT NULL FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(&presented[..])
            .fetch_optional(c)
            .await?)
        }

        /// The session if it is not revoked and its identity is enabled.
        pub async fn live_session(
            c: &mut DB::Connection,
            session_id: SessionId,
        ) -> Result<Option<LiveSession>, StoreError> {
            let live: Option<(UserId, Timestamp, bool, String)> = sqlx::query_as(
                "SELECT s.user_id, s.created_at, i.email_verified, s.amr
                 FROM sessions s JOIN identities i ON i.id = s.user_id
                 WHERE s.id = $1 AND s.revoked_at IS NULL AND i.disabled_at IS NULL",
            )
            .bind(session_id)
            .fetch_optional(c)
            .await?;
            Ok(live.map(|(user_id, created_at, email_verified, amr)| LiveSession {
                holder: Holder {
                    user_id,
                    email_verified,
                    amr: Amr::parse(&amr),
                },
                created_at: created_at.0,
            }))
        }

        /// Stores a session's next refresh token and marks the session used.
        pub async fn rotate_to(
            c: &mut DB::Connection,
            next: &NewRefreshToken,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            Self::insert_refresh_token(&mut *c, next, next.session_id).await?;
            sqlx::query("UPDATE sessions SET last_used_at = $2 WHERE id = $1")
                .bind(next.session_id)
                .bind(Timestamp(now))
                .execute(c)
                .await?;
            Ok(())
        }

        /// Revokes one active session; false when there was none. Every
        /// revocation goes through here or `revoke_user_sessions`, and both
        /// tell the security-event feed in the same statement's transaction.
        pub async fn revoke_session(
            c: &mut DB::Connection,
            session_id: SessionId,
            now: DateTime<Utc>,
            reason: &str,
        ) -> Result<bool, StoreError> {
            let owner: Option<UserId> = sqlx::query_scalar(
                "UPDATE sessions SET revoked_at = $2, revoke_reason = $3
                 WHERE id = $1 AND revoked_at IS NULL RETURNING user_id",
            )
            .bind(session_id)
            .bind(Timestamp(now))
            .bind(reason)
            .fetch_optional(&mut *c)
            .await?;
            let Some(user_id) = owner else {
                return Ok(false);
            };
            let signal = Signal::session_revoked(user_id, session_id, reason, now);
            SignalSql::<DB>::emit(c, &[signal]).await?;
            Ok(true)
        }

        /// Revokes a user's active sessions but `except`; returns those revoked.
        pub async fn revoke_sessions_of(
            c: &mut DB::Connection,
            user_id: UserId,
            except: Option<SessionId>,
            now: DateTime<Utc>,
            reason: &str,
        ) -> Result<Vec<SessionId>, StoreError> {
            Self::revoke_user_sessions(&mut *c, user_id, except, now, reason).await
        }
    }
}

platform::generic_store! {
    impl<DB> SessionSql<DB> {
        /// Inserts a session and its first refresh token if the identity's
        /// password hash and credential version are still `credential` (what
        /// the login checked) and it is enabled; false (nothing written) if not.
        pub async fn open_session_rows(
            c: &mut DB::Connection,
            session: &NewSession,
            token: &NewRefreshToken,
            (credential, version): (&str, i64),
        ) -> Result<bool, StoreError> {
            // The identity row stays locked until commit, so a credential
            // change or a disable either happened before (and this finds
            // nothing) or waits and then ends the session opened here.
            let current: Option<UserId> = sqlx::query_scalar(&format!(
                "SELECT id FROM identities
                 WHERE id = $1 AND password_hash = $2 AND credential_version = $3
                   AND disabled_at IS NULL{}",
                DB::FOR_UPDATE
            ))
            .bind(session.user_id)
            .bind(credential)
            .bind(version)
            .fetch_optional(&mut *c)
            .await?;
            if current.is_none() {
                return Ok(false);
            }
            sqlx::query(
                "INSERT INTO sessions (id, user_id, created_at, last_used_at, client_address, user_agent, amr)
                 VALUES ($1, $2, $3, $3, $4, $5, $6)",
            )
            .bind(session.id)
            .bind(session.user_id)
            .bind(Timestamp(session.created_at))
            .bind(&session.client_address)
            .bind(&session.user_agent)
            .bind(session.amr.as_str())
            .execute(&mut *c)
            .await?;
            Self::insert_refresh_token(c, token, session.id).await?;
            Ok(true)
        }
    }
}
