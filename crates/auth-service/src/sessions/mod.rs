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
        let mut tx = self.db.write().await?;
        let ended = platform::sql!(&mut tx, SessionSql::revoke_session(session, now, reason))?;
        tx.commit().await?;
        if ended {
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
        let mut tx = self.db.write().await?;
        let revoked = platform::sql!(
            &mut tx,
            SessionSql::revoke_sessions_of(user, keep, now, "revoked")
        )?;
        tx.commit().await?;
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
        let holder = Holder {
            user_id,
            email_verified,
            amr,
        };
        self.tokens_for(
            holder,
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
        use AuthError::InvalidRefreshToken as Invalid;
        let hash = refresh::parse(presented).ok_or(Invalid)?;
        let now = self.clock.now();
        let minted = refresh::mint().map_err(|_| AuthError::Internal("no randomness".into()))?;
        let mut tx = self.db.write().await?;
        let Some((session_id, expires_at)) =
            platform::sql!(&mut tx, SessionSql::spend_refresh_token(&hash, now))?
        else {
            // Spent before: one of the two presenting it holds a stolen copy,
            // and nothing tells which, so the session ends for both.
            let (session_id, _) =
                platform::sql!(&mut tx, SessionSql::refresh_token_session(&hash))?
                    .ok_or(Invalid)?;
            let reason = "refresh_token_reuse";
            platform::sql!(&mut tx, SessionSql::revoke_session(session_id, now, reason))?;
            tx.commit().await?;
            self.revoked.insert(session_id, now);
            tracing::warn!(%session_id, "refresh token reused; session revoked");
            self.audit(
                self.event("refresh_token.reused", client)
                    .subject(session_id),
            )
            .await;
            return Err(AuthError::RefreshTokenReused);
        };
        // A session ends `session_max_lifetime` after its login, however
        // often it is refreshed; an expired token stays spent.
        let live = platform::sql!(&mut tx, SessionSql::live_session(session_id))?;
        let ends_at = live.map(|l| l.created_at + self.session_max_lifetime);
        let (Some(live), Some(ends_at)) = (live, ends_at) else {
            tx.commit().await?;
            return Err(Invalid);
        };
        if expires_at <= now || ends_at <= now {
            tx.commit().await?;
            return Err(Invalid);
        }
        let mut next = self.refresh_record(minted.hash, session_id, now);
        next.expires_at = next.expires_at.min(ends_at);
        platform::sql!(&mut tx, SessionSql::rotate_to(&next, now))?;
        tx.commit().await?;
        self.tokens_for(live.holder, session_id, minted.token, next.expires_at, now)
            .await
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
        let mut tx = self.db.write().await?;
        let Some((session_id, spent)) =
            platform::sql!(&mut tx, SessionSql::refresh_token_session(&hash))?
        else {
            return Ok(());
        };
        let reason = if spent {
            "refresh_token_reuse"
        } else {
            "logout"
        };
        if platform::sql!(&mut tx, SessionSql::revoke_session(session_id, now, reason))? {
            tx.commit().await?;
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
        Holder {
            user_id,
            email_verified,
            amr,
        }: Holder,
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
