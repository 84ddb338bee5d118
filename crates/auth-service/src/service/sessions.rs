//! A user's sessions: list them, revoke one, revoke all others. Users manage
//! their own; `sessions:admin` manages anyone's.

use super::Authenticator;
use crate::audit::ClientInfo;
use crate::authz::Principal;
use crate::error::AuthError;
use crate::storage::SessionRecord;
use chrono::{DateTime, Utc};
use platform::ids::{SessionId, UserId};

const SESSIONS_ADMIN: &str = "sessions:admin";

impl Authenticator {
    /// Revokes one session, here at once and on other replicas within a poll.
    pub(crate) async fn end_session(
        &self,
        session: SessionId,
        reason: &str,
    ) -> Result<(), AuthError> {
        let now = self.clock.now();
        if self
            .stores
            .sessions
            .revoke_session(session, now, reason)
            .await?
        {
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
        Ok(self
            .stores
            .sessions
            .list_sessions(user, before, limit)
            .await?)
    }

    /// Revokes one session of the caller's (or any, for an admin).
    pub async fn revoke_session(
        &self,
        caller: &Principal,
        session: SessionId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let owner = self.stores.sessions.session_owner(session).await?;
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
        let revoked = self
            .stores
            .sessions
            .revoke_sessions_of(user, keep, now, "revoked")
            .await?;
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

    /// Audit events, newest first; needs `audit:read`.
    pub async fn list_audit(
        &self,
        caller: &Principal,
        query: &crate::storage::AuditQuery,
    ) -> Result<Vec<crate::storage::AuditRecord>, AuthError> {
        self.require(caller, "audit:read", None)?;
        Ok(self.stores.audit.list_audit(query).await?)
    }
}
