//! A user's sessions: list them, revoke one, revoke all others. Users manage
//! their own; `sessions:admin` manages anyone's.

mod model;
mod sql;

pub use model::*;
pub use sql::SessionSql;

use crate::access::authz::Principal;
use crate::audit::ClientInfo;
use crate::context::IssuedTokens;
use crate::crypto::jwt::TokenSubject;
use crate::crypto::refresh;
use crate::error::AuthError;
use chrono::{DateTime, Utc};
use platform::ids::{SessionId, UserId};
use secrecy::SecretString;
use uuid::Uuid;

const SESSIONS_ADMIN: &str = "sessions:admin";

crate::context::use_cases! {
    /// Opening, refreshing, listing and ending sessions.
    Sessions
}

impl Sessions<'_> {
    /// Revokes one session, here at once and on other replicas within a poll.
    pub(crate) async fn end_session(
        &self,
        session: SessionId,
        reason: &str,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        if platform::sql!(
            read(&self.db),
            SessionSql::revoke_session(session, now, reason)
        )? {
            self.revoked.insert(session, now);
        }
        Ok(())
    }

    fn require_user_or_admin(&self, caller: &Principal, user: UserId) -> Result<(), AuthError> {
        if caller.user_id() == Some(user) {
            Ok(())
        } else {
            self.require(caller, SESSIONS_ADMIN, None)
        }
    }

    /// A page of the active sessions of `user` (the caller when `None`), newest
    /// first, older than `before` (creation time and id).
    pub async fn list_sessions(
        &self,
        caller: &Principal,
        user: Option<UserId>,
        before: Option<(DateTime<Utc>, SessionId)>,
        limit: i64,
    ) -> Result<Vec<SessionRecord>, AuthError> {
        // A service account has no sessions of its own.
        let Some(user) = user.or_else(|| caller.user_id()) else {
            return Ok(Vec::new());
        };
        self.require_user_or_admin(caller, user)?;
        Ok(platform::sql!(
            read(&self.db),
            SessionSql::list_sessions(user, before, limit)
        )?)
    }

    /// Revokes one session of the caller's (or any, for an admin).
    pub async fn revoke_session(
        &self,
        caller: &Principal,
        session: SessionId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let owner = platform::sql!(read(&self.db), SessionSql::session_owner(session))?;
        // An unknown session and someone else's look the same to a non-admin.
        let not_found = || AuthError::NotFound(format!("no active session {session}"));
        let owner = match owner {
            Some(o) if caller.user_id() == Some(o) => o,
            Some(o) => {
                self.require(caller, SESSIONS_ADMIN, None)
                    .map_err(|_| not_found())?;
                o
            }
            None => return Err(not_found()),
        };
        self.end_session(session, "revoked").await?;
        self.audit(
            self.event("session.revoked", client)
                .actor(caller.subject_id)
                .subject(session)
                .detail("user_id", owner),
        )
        .await;
        Ok(())
    }

    /// Revokes every session of the caller but the current one; or, for an admin
    /// naming a user, every session of that user.
    pub async fn revoke_other_sessions(
        &self,
        caller: &Principal,
        user: Option<UserId>,
        client: &ClientInfo,
    ) -> Result<usize, AuthError> {
        let Some(user) = user.or_else(|| caller.user_id()) else {
            return Ok(0);
        };
        let keep = if caller.user_id() == Some(user) {
            Some(caller.session_id)
        } else {
            self.require(caller, SESSIONS_ADMIN, None)?;
            None
        };
        let now = self.clock.now();
        let revoked = platform::sql!(
            read(&self.db),
            SessionSql::revoke_sessions_of(user, keep, now, "revoked")
        )?;
        for s in &revoked {
            self.revoked.insert(*s, now);
        }
        self.audit(
            self.event("sessions.revoked", client)
                .actor(caller.subject_id)
                .subject(user)
                .detail("count", revoked.len()),
        )
        .await;
        Ok(revoked.len())
    }

    /// Opens a session for a login that passed every check, if `credential`
    /// (the password hash and credential version it checked) is still current
    /// and the identity enabled.
    pub(crate) async fn open_session(
        &self,
        (user_id, email_verified): (UserId, bool),
        credential: (&str, i64),
        amr: Amr,
        client: &ClientInfo,
    ) -> Result<IssuedTokens, AuthError> {
        let opening = self.new_session(user_id, amr, client)?;
        if !platform::sql!(
            write(&self.db),
            SessionSql::insert_session(&opening.session, &opening.token, credential)
        )? {
            return Err(self.login_lost_race(user_id, client).await);
        }
        self.session_opened(opening, email_verified, client).await
    }

    /// A session about to be opened and its first refresh token.
    pub(crate) fn new_session(
        &self,
        user_id: UserId,
        amr: Amr,
        client: &ClientInfo,
    ) -> Result<Opening, AuthError> {
        let now = self.clock.now();
        let session = NewSession {
            id: SessionId::generate(),
            user_id,
            created_at: now,
            client_address: client.address.clone(),
            user_agent: client.user_agent.clone(),
            amr,
        };
        let minted = refresh::mint().map_err(|_| AuthError::Internal("no randomness".into()))?;
        let token = self.refresh_record(minted.hash, session.id, now);
        Ok(Opening {
            session,
            token,
            refresh: minted.token,
        })
    }

    /// The password changed, or the identity was disabled or deleted, while
    /// this login was being checked: what it checked no longer holds.
    pub(crate) async fn login_lost_race(&self, user_id: UserId, client: &ClientInfo) -> AuthError {
        tracing::info!(%user_id, "login lost a race with a credential change");
        self.audit(self.event("login.failed", client).subject(user_id))
            .await;
        AuthError::InvalidCredentials
    }

    /// Records a session whose rows are written and signs its tokens.
    pub(crate) async fn session_opened(
        &self,
        Opening {
            session,
            token,
            refresh,
        }: Opening,
        email_verified: bool,
        client: &ClientInfo,
    ) -> Result<IssuedTokens, AuthError> {
        let (user_id, amr) = (session.user_id, session.amr);
        tracing::info!(%user_id, session_id = %session.id, "login succeeded");
        self.audit(
            self.event("login.succeeded", client)
                .actor(user_id)
                .subject(session.id)
                .detail("amr", amr.as_str()),
        )
        .await;
        self.tokens_for(
            (user_id, email_verified, amr),
            session.id,
            refresh,
            token.expires_at,
            self.clock.now(),
        )
        .await
    }

    /// Exchanges a refresh token for new tokens; a reused one revokes its session.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(
        &self,
        presented: &SecretString,
        client: &ClientInfo,
    ) -> Result<IssuedTokens, AuthError> {
        let hash = refresh::parse(presented).ok_or(AuthError::InvalidRefreshToken)?;
        let now = self.clock.now();
        let minted = refresh::mint().map_err(|_| AuthError::Internal("no randomness".into()))?;
        // The session is the spent token's; the store fills it in.
        let next = self.refresh_record(minted.hash, SessionId::from_uuid(Uuid::nil()), now);
        match platform::sql!(
            write(&self.db),
            SessionSql::rotate_refresh_token(&hash, &next, self.session_max_lifetime, now)
        )? {
            Rotation::Rotated {
                session_id,
                user_id,
                expires_at,
                email_verified,
                amr,
            } => {
                self.tokens_for(
                    (user_id, email_verified, amr),
                    session_id,
                    minted.token,
                    expires_at,
                    now,
                )
                .await
            }
            Rotation::Reused { session_id } => {
                self.revoked.insert(session_id, now);
                tracing::warn!(%session_id, "refresh token reused; session revoked");
                self.audit(
                    self.event("refresh_token.reused", client)
                        .subject(session_id),
                )
                .await;
                Err(AuthError::RefreshTokenReused)
            }
            Rotation::Dead | Rotation::Unknown => Err(AuthError::InvalidRefreshToken),
        }
    }

    /// Revokes the session of a refresh token, current or already rotated (the
    /// rotated one may have been stolen and refreshed by the thief). Unknown
    /// tokens are ignored, so that logout is idempotent and reveals nothing.
    #[tracing::instrument(skip_all)]
    pub async fn logout(
        &self,
        presented: &SecretString,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let Some(hash) = refresh::parse(presented) else {
            return Ok(());
        };
        let now = self.clock.now();
        if let Some((session_id, spent)) = platform::sql!(
            write(&self.db),
            SessionSql::revoke_session_by_refresh_token(&hash, now, "logout")
        )? {
            self.revoked.insert(session_id, now);
            // A spent token at logout means someone else refreshed with it: the
            // session is ended all the same, and the reuse is on record.
            let kind = if spent {
                tracing::warn!(%session_id, "spent refresh token at logout; session revoked");
                "refresh_token.reused"
            } else {
                tracing::info!(%session_id, "session revoked by logout");
                "logout"
            };
            self.audit(self.event(kind, client).subject(session_id))
                .await;
        }
        Ok(())
    }

    /// Signs the access token of `user` (its id, whether its email is
    /// verified, and how the session was authenticated).
    pub(crate) async fn tokens_for(
        &self,
        (user_id, email_verified, amr): (UserId, bool, Amr),
        session_id: SessionId,
        refresh_token: SecretString,
        refresh_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<IssuedTokens, AuthError> {
        let (access_token, expires_in) = self
            .sign(
                TokenSubject {
                    id: user_id.into(),
                    session_id,
                    roles: Vec::new(),
                    email_verified,
                    amr: amr.methods(),
                },
                now,
            )
            .await?;
        Ok(IssuedTokens {
            access_token,
            refresh_token,
            expires_in,
            session_id,
            user_id,
            refresh_expires_at,
        })
    }

    fn refresh_record(
        &self,
        hash: [u8; 32],
        session_id: SessionId,
        now: DateTime<Utc>,
    ) -> NewRefreshToken {
        NewRefreshToken {
            hash,
            session_id,
            created_at: now,
            // A login's first token may not outlive the session either.
            expires_at: now + self.refresh_ttl.min(self.session_max_lifetime),
        }
    }
}
