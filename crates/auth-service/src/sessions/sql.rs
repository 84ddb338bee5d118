//! Sessions and their refresh tokens: opening (only while the credential checked
//! still holds), rotation with reuse detection, listing and revocation.

use super::model::*;
use crate::storage::StoreError;
use chrono::{DateTime, Duration, Utc};
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
            Ok(sqlx::query_scalar(&format!(
                "UPDATE sessions SET revoked_at = $3, revoke_reason = $4
                 WHERE user_id = $1 AND revoked_at IS NULL AND ({} IS NULL OR id <> $2)
                 RETURNING id",
                DB::typed(2, SqlType::Uuid)
            ))
            .bind(user_id)
            .bind(except.map(SessionId::uuid))
            .bind(Timestamp(now))
            .bind(reason)
            .fetch_all(c)
            .await?)
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
        /// Opens a session with its first refresh token, if the identity is still
        /// enabled and its password hash is still `credential` (the one the login
        /// checked); false, with nothing written, otherwise.
        pub async fn insert_session(
            c: &mut DB::Connection,
            session: &NewSession,
            token: &NewRefreshToken,
            credential: (&str, i64),
        ) -> Result<bool, StoreError> {
            if !Self::open_session_rows(&mut *c, session, token, credential).await? {
                return Ok(false);
            }
            Ok(true)
        }

        /// Spends the refresh token hashed as `presented` and stores `next` (whose
        /// `session_id` is ignored: the presented token's session is used), never
        /// valid beyond the session's `max_lifetime` from login. A token spent
        /// before revokes its session; a session past its lifetime is dead.
        pub async fn rotate_refresh_token(
            c: &mut DB::Connection,
            presented: &[u8; 32],
            next: &NewRefreshToken,
            max_lifetime: Duration,
            now: DateTime<Utc>,
        ) -> Result<Rotation, StoreError> {
            // Spending is one conditional UPDATE, so two concurrent refreshes with
            // the same token cannot both succeed.
            let spent: Option<(SessionId, Timestamp)> = sqlx::query_as(
                "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL
                 RETURNING session_id, expires_at",
            )
            .bind(&presented[..])
            .bind(Timestamp(now))
            .fetch_optional(&mut *c)
            .await?;
            let Some((session_id, expires_at)) = spent else {
                let session_id: Option<SessionId> = sqlx::query_scalar(
                    "SELECT session_id FROM refresh_tokens WHERE token_hash = $1",
                )
                .bind(&presented[..])
                .fetch_optional(&mut *c)
                .await?;
                let Some(session_id) = session_id else {
                    return Ok(Rotation::Unknown);
                };
                sqlx::query(
                    "UPDATE sessions SET revoked_at = $2, revoke_reason = 'refresh_token_reuse'
                     WHERE id = $1 AND revoked_at IS NULL",
                )
                .bind(session_id)
                .bind(Timestamp(now))
                .execute(&mut *c)
                .await?;
                return Ok(Rotation::Reused { session_id });
            };
            let live: Option<(UserId, Timestamp, bool, String)> = sqlx::query_as(
                "SELECT s.user_id, s.created_at, i.email_verified, s.amr
                 FROM sessions s JOIN identities i ON i.id = s.user_id
                 WHERE s.id = $1 AND s.revoked_at IS NULL AND i.disabled_at IS NULL",
            )
            .bind(session_id)
            .fetch_optional(&mut *c)
            .await?;
            let ends_at = live
                .as_ref()
                .map(|(_, created, ..)| created.0 + max_lifetime);
            let (Some((user_id, _, email_verified, amr)), Some(ends_at)) = (live, ends_at) else {
                return Ok(Rotation::Dead);
            };
            if expires_at.0 <= now || ends_at <= now {
                return Ok(Rotation::Dead);
            }
            let next = NewRefreshToken {
                expires_at: next.expires_at.min(ends_at),
                ..next.clone()
            };
            Self::insert_refresh_token(&mut *c, &next, session_id).await?;
            sqlx::query("UPDATE sessions SET last_used_at = $2 WHERE id = $1")
                .bind(session_id)
                .bind(Timestamp(now))
                .execute(&mut *c)
                .await?;
            Ok(Rotation::Rotated {
                session_id,
                user_id,
                expires_at: next.expires_at,
                email_verified,
                amr: Amr::parse(&amr),
            })
        }

        /// Revokes the session of the refresh token hashing to `presented`, current
        /// or already spent; returns it and whether the token was spent (a reuse).
        pub async fn revoke_session_by_refresh_token(
            c: &mut DB::Connection,
            presented: &[u8; 32],
            now: DateTime<Utc>,
            reason: &str,
        ) -> Result<Option<(SessionId, bool)>, StoreError> {
            let token: Option<(SessionId, bool)> = sqlx::query_as(
                "SELECT session_id, used_at IS NOT NULL FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(&presented[..])
            .fetch_optional(&mut *c)
            .await?;
            let Some((session_id, spent)) = token else {
                return Ok(None);
            };
            let revoked = sqlx::query(
                "UPDATE sessions SET revoked_at = $2, revoke_reason = $3
                 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(session_id)
            .bind(Timestamp(now))
            .bind(if spent { "refresh_token_reuse" } else { reason })
            .execute(&mut *c)
            .await?;
            Ok((DB::rows_affected(&revoked) > 0).then_some((session_id, spent)))
        }

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

        /// A user's active sessions, newest first.
        /// Up to `limit` active sessions of a user, newest first, older than `before`
        /// (a session's creation time and id) when given.
        pub async fn list_sessions(
            c: &mut DB::Connection,
            user_id: UserId,
            before: Option<(DateTime<Utc>, SessionId)>,
            limit: i64,
        ) -> Result<Vec<SessionRecord>, StoreError> {
            let (before_at, before_id) = before.unzip();
            Ok(sqlx::query_as(&format!(
                "SELECT id, user_id, created_at, last_used_at, client_address, user_agent
                 FROM sessions WHERE user_id = $1 AND revoked_at IS NULL
                   AND ({} IS NULL OR (created_at, id) < ($2, $3))
                 ORDER BY created_at DESC, id DESC LIMIT $4",
                DB::typed(2, SqlType::Timestamp),
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

        /// Revokes one active session; false when there was none.
        pub async fn revoke_session(
            c: &mut DB::Connection,
            session_id: SessionId,
            now: DateTime<Utc>,
            reason: &str,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE sessions SET revoked_at = $2, revoke_reason = $3
                 WHERE id = $1 AND revoked_at IS NULL",
            )
            .bind(session_id)
            .bind(Timestamp(now))
            .bind(reason)
            .execute(&mut *c)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
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
