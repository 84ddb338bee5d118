//! Sessions and their refresh tokens: opening (only while the credential checked
//! still holds), rotation with reuse detection, listing and revocation.

use super::{Sql, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use platform::ids::{SessionId, UserId};
use platform::sql::{SqlType, Timestamp};

/// A new session with its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    /// The client address and user agent the Gateway reported, if any.
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// How the login was authenticated (RFC 8176 `amr` values).
    pub amr: Amr,
}

/// Authentication methods of a session: `pwd`, or `pwd` and `otp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amr {
    Password,
    PasswordAndOtp,
}

impl Amr {
    /// As stored: space-separated.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::PasswordAndOtp => "pwd otp",
        }
    }

    /// From storage; anything unknown is the weaker `pwd`.
    pub fn parse(stored: &str) -> Self {
        if stored == "pwd otp" {
            Self::PasswordAndOtp
        } else {
            Self::Password
        }
    }

    /// The claim's values.
    pub fn methods(self) -> Vec<String> {
        self.as_str().split(' ').map(str::to_owned).collect()
    }
}

/// A refresh token as stored: only the SHA-256 of the token.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub hash: [u8; 32],
    pub session_id: SessionId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// The outcome of presenting a refresh token for rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rotation {
    /// The token was current; it is now spent and its successor stored.
    Rotated {
        session_id: SessionId,
        user_id: UserId,
        /// When the new token expires: its lifetime, cut at the session's end.
        expires_at: DateTime<Utc>,
        /// The identity's address is verified (now).
        email_verified: bool,
        /// How the session's login was authenticated.
        amr: Amr,
    },
    /// The token was already spent: the session is now revoked.
    Reused { session_id: SessionId },
    /// The token is expired, or its session revoked or its identity disabled.
    Dead,
    /// No such token.
    Unknown,
}

/// An active session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    #[sqlx(try_from = "Timestamp")]
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "Timestamp")]
    pub last_used_at: DateTime<Utc>,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}

/// Sessions and refresh tokens.
#[async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug {
    /// Opens a session with its first refresh token, if the identity is still
    /// enabled and its password hash is still `credential` (the one the login
    /// checked); false, with nothing written, otherwise.
    async fn insert_session(
        &self,
        session: &NewSession,
        token: &NewRefreshToken,
        credential: (&str, i64),
    ) -> Result<bool, StoreError>;
    /// Spends the refresh token hashed as `presented` and stores `next` (whose
    /// `session_id` is ignored: the presented token's session is used), never
    /// valid beyond the session's `max_lifetime` from login. A token spent
    /// before revokes its session; a session past its lifetime is dead.
    async fn rotate_refresh_token(
        &self,
        presented: &[u8; 32],
        next: &NewRefreshToken,
        max_lifetime: Duration,
        now: DateTime<Utc>,
    ) -> Result<Rotation, StoreError>;
    /// Revokes the session of the refresh token hashing to `presented`, current
    /// or already spent; returns it and whether the token was spent (a reuse).
    async fn revoke_session_by_refresh_token(
        &self,
        presented: &[u8; 32],
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Option<(SessionId, bool)>, StoreError>;
    /// Sessions revoked at or after `since`, with when.
    async fn revoked_sessions_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<(SessionId, DateTime<Utc>)>, StoreError>;
    /// A user's active sessions, newest first.
    /// Up to `limit` active sessions of a user, newest first, older than `before`
    /// (a session's creation time and id) when given.
    async fn list_sessions(
        &self,
        user_id: UserId,
        before: Option<(DateTime<Utc>, SessionId)>,
        limit: i64,
    ) -> Result<Vec<SessionRecord>, StoreError>;
    /// The user of an active session.
    async fn session_owner(&self, session_id: SessionId) -> Result<Option<UserId>, StoreError>;
    /// Revokes one active session; false when there was none.
    async fn revoke_session(
        &self,
        session_id: SessionId,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<bool, StoreError>;
    /// Revokes a user's active sessions but `except`; returns those revoked.
    async fn revoke_sessions_of(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Vec<SessionId>, StoreError>;
}

platform::generic_store! {
    impl<DB> Sql<DB> {
        /// Revokes a user's active sessions but `except`; returns those revoked.
        pub(super) async fn revoke_user_sessions(
            conn: &mut DB::Connection,
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
            .fetch_all(conn)
            .await?)
        }

        async fn insert_refresh_token(
            conn: &mut DB::Connection,
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
            .execute(conn)
            .await?;
            Ok(())
        }
    }
}

platform::generic_store! {
    #[async_trait]
    impl<DB> SessionStore for Sql<DB> {
        async fn insert_session(
            &self,
            session: &NewSession,
            token: &NewRefreshToken,
            credential: (&str, i64),
        ) -> Result<bool, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            if !Self::open_session_rows(&mut tx, session, token, credential).await? {
                return Ok(false);
            }
            tx.commit().await?;
            Ok(true)
        }

        async fn rotate_refresh_token(
            &self,
            presented: &[u8; 32],
            next: &NewRefreshToken,
            max_lifetime: Duration,
            now: DateTime<Utc>,
        ) -> Result<Rotation, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            // Spending is one conditional UPDATE, so two concurrent refreshes with
            // the same token cannot both succeed.
            let spent: Option<(SessionId, Timestamp)> = sqlx::query_as(
                "UPDATE refresh_tokens SET used_at = $2 WHERE token_hash = $1 AND used_at IS NULL
                 RETURNING session_id, expires_at",
            )
            .bind(&presented[..])
            .bind(Timestamp(now))
            .fetch_optional(&mut *tx)
            .await?;
            let Some((session_id, expires_at)) = spent else {
                let session_id: Option<SessionId> =
                    sqlx::query_scalar("SELECT session_id FROM refresh_tokens WHERE token_hash = $1")
                        .bind(&presented[..])
                        .fetch_optional(&mut *tx)
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
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                return Ok(Rotation::Reused { session_id });
            };
            let live: Option<(UserId, Timestamp, bool, String)> = sqlx::query_as(
                "SELECT s.user_id, s.created_at, i.email_verified, s.amr
                 FROM sessions s JOIN identities i ON i.id = s.user_id
                 WHERE s.id = $1 AND s.revoked_at IS NULL AND i.disabled_at IS NULL",
            )
            .bind(session_id)
            .fetch_optional(&mut *tx)
            .await?;
            let ends_at = live.as_ref().map(|(_, created, ..)| created.0 + max_lifetime);
            let (Some((user_id, _, email_verified, amr)), Some(ends_at)) = (live, ends_at) else {
                tx.commit().await?;
                return Ok(Rotation::Dead);
            };
            if expires_at.0 <= now || ends_at <= now {
                tx.commit().await?;
                return Ok(Rotation::Dead);
            }
            let next = NewRefreshToken {
                expires_at: next.expires_at.min(ends_at),
                ..next.clone()
            };
            Self::insert_refresh_token(&mut tx, &next, session_id).await?;
            sqlx::query("UPDATE sessions SET last_used_at = $2 WHERE id = $1")
                .bind(session_id)
                .bind(Timestamp(now))
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Rotation::Rotated {
                session_id,
                user_id,
                expires_at: next.expires_at,
                email_verified,
                amr: Amr::parse(&amr),
            })
        }

        async fn revoke_session_by_refresh_token(
            &self,
            presented: &[u8; 32],
            now: DateTime<Utc>,
            reason: &str,
        ) -> Result<Option<(SessionId, bool)>, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let token: Option<(SessionId, bool)> = sqlx::query_as(
                "SELECT session_id, used_at IS NOT NULL FROM refresh_tokens WHERE token_hash = $1",
            )
            .bind(&presented[..])
            .fetch_optional(&mut *tx)
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
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok((DB::rows_affected(&revoked) > 0).then_some((session_id, spent)))
        }

        async fn revoked_sessions_since(
            &self,
            since: DateTime<Utc>,
        ) -> Result<Vec<(SessionId, DateTime<Utc>)>, StoreError> {
            let rows: Vec<(SessionId, Timestamp)> =
                sqlx::query_as("SELECT id, revoked_at FROM sessions WHERE revoked_at >= $1")
                    .bind(Timestamp(since))
                    .fetch_all(&self.pool)
                    .await?;
            Ok(rows.into_iter().map(|(id, at)| (id, at.0)).collect())
        }

        async fn list_sessions(
            &self,
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
            .fetch_all(&self.pool)
            .await?)
        }

        async fn session_owner(&self, session_id: SessionId) -> Result<Option<UserId>, StoreError> {
            Ok(
                sqlx::query_scalar("SELECT user_id FROM sessions WHERE id = $1 AND revoked_at IS NULL")
                    .bind(session_id)
                    .fetch_optional(&self.pool)
                    .await?,
            )
        }

        async fn revoke_session(
            &self,
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
            .execute(&self.pool)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }

        async fn revoke_sessions_of(
            &self,
            user_id: UserId,
            except: Option<SessionId>,
            now: DateTime<Utc>,
            reason: &str,
        ) -> Result<Vec<SessionId>, StoreError> {
            let mut conn = self.pool.acquire().await?;
            Self::revoke_user_sessions(&mut conn, user_id, except, now, reason).await
        }
    }
}

platform::generic_store! {
    impl<DB> Sql<DB> {
        /// Inserts a session and its first refresh token if the identity's
        /// password hash and credential version are still `credential` (what
        /// the login checked) and it is enabled; false (nothing written) if not.
        pub(crate) async fn open_session_rows(
            conn: &mut DB::Connection,
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
            .fetch_optional(&mut *conn)
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
            .execute(&mut *conn)
            .await?;
            Self::insert_refresh_token(conn, token, session.id).await?;
            Ok(true)
        }
    }
}
