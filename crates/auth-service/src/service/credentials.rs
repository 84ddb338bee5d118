//! Registration, login (throttled), refresh, logout and password change.

use super::changes::CredentialChange;
use super::{
    Authenticator, DEFAULT_ROLE, IssuedTokens, LoginOutcome, USER_REGISTERED, UserRegistered,
};
use crate::audit::ClientInfo;
use crate::authz::{Principal, SubjectKind};
use crate::crypto::jwt::TokenSubject;
use crate::crypto::refresh;
use crate::domain::{DisplayName, Email, NewPassword, Password};
use crate::error::AuthError;
use crate::notify::PASSWORD_CHANGED;
use crate::storage::{
    Amr, IdentityRecord, NewIdentity, NewRefreshToken, NewSession, Purpose, Rotation, StoreError,
};
use crate::throttle::Reserved;
use chrono::{DateTime, Utc};
use platform::ids::{SessionId, UserId};
use platform::outbox::OutboxEvent;
use secrecy::SecretString;
use uuid::Uuid;

/// A session about to be opened: its rows and the refresh token its owner gets.
#[derive(Debug)]
pub(crate) struct Opening {
    pub session: NewSession,
    pub token: NewRefreshToken,
    pub refresh: SecretString,
}

/// Wrong passwords (with the account's failed logins) that end the session a
/// ChangePassword, ChangeEmail or DisableTotp came from.
const OWN_PASSWORD_FAILURES: i64 = 3;

impl Authenticator {
    /// Creates an identity holding `roles`; its id is returned.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        email: Email,
        password: NewPassword,
        display_name: DisplayName,
        client: &ClientInfo,
    ) -> Result<UserId, AuthError> {
        let throttle = self.throttle();
        if let Err(wait) = throttle
            .per_address(
                "register",
                client.address.as_deref(),
                self.registrations_per_minute,
                self.clock.now(),
            )
            .await?
        {
            self.audit(self.event("register.throttled", client)).await;
            return Err(AuthError::Throttled(wait));
        }
        self.register_with_roles(email, password, display_name, &[DEFAULT_ROLE], client)
            .await
    }

    /// [`Authenticator::register`] with other roles (the first administrator).
    pub async fn register_with_roles(
        &self,
        email: Email,
        password: NewPassword,
        display_name: DisplayName,
        roles: &[&str],
        client: &ClientInfo,
    ) -> Result<UserId, AuthError> {
        // Registration reveals whether an email exists by design (ALREADY_EXISTS),
        // so checking first only saves a hash; the unique key still decides races.
        if self.address_taken(email.as_str(), None).await? {
            return Err(AuthError::EmailTaken);
        }
        let password_hash = self.hasher.hash(password.secret()).await?;
        let id = UserId::generate();
        let now = self.clock.now();
        let mut identity = NewIdentity {
            id,
            email: email.as_str().to_owned(),
            display_name: display_name.as_str().to_owned(),
            password_hash,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            created_at: now,
            verification: None,
        };
        let payload = serde_json::to_string(&UserRegistered {
            user_id: id,
            email: identity.email.clone(),
            display_name: identity.display_name.clone(),
        })
        .map_err(|e| AuthError::Internal(e.to_string()))?;
        let mut events = vec![OutboxEvent::new(USER_REGISTERED, id.uuid(), payload, now)];
        // The first verification goes out with the registration, atomically.
        if self.recovery.notifications {
            let issued = self.one_time((id, &identity.email), Purpose::VerifyEmail, now)?;
            identity.verification = Some(issued.token);
            events.push(issued.event);
        }
        self.stores
            .identities
            .insert_identity(&identity, &events)
            .await
            .map_err(|e| match e {
                StoreError::EmailTaken => AuthError::EmailTaken,
                other => other.into(),
            })?;
        self.outbox_wake.notify_one();
        tracing::info!(user_id = %id, "identity registered");
        self.audit(
            self.event("user.registered", client)
                .actor(id)
                .subject(id)
                .detail("roles", roles.join(" ")),
        )
        .await;
        Ok(id)
    }

    /// Whether `email` belongs to an identity, or is reserved for one that
    /// left it lately and may come back (its cancel link lives): then no one
    /// but `by` may take it.
    pub(crate) async fn address_taken(
        &self,
        email: &str,
        by: Option<UserId>,
    ) -> Result<bool, AuthError> {
        if self
            .stores
            .identities
            .identity_by_email(email)
            .await?
            .is_some()
        {
            return Ok(true);
        }
        Ok(self
            .stores
            .recovery
            .address_reserved(email, by, self.clock.now())
            .await?)
    }

    /// Checks credentials and opens a session; refuses while throttled.
    #[tracing::instrument(skip_all)]
    pub async fn login(
        &self,
        email: Email,
        password: Password,
        client: &ClientInfo,
    ) -> Result<LoginOutcome, AuthError> {
        let throttle = self.throttle();
        let address = client.address.as_deref();
        let reserved = match throttle
            .reserve(email.as_str(), address, self.clock.now())
            .await?
        {
            Ok(reserved) => reserved,
            Err(wait) => {
                self.audit(
                    self.event("login.throttled", client)
                        .subject(email.as_str()),
                )
                .await;
                return Err(AuthError::Throttled(wait));
            }
        };
        let identity = self
            .stores
            .identities
            .identity_by_email(email.as_str())
            .await?;
        let stored = identity.as_ref().map(|i| i.password_hash.as_str());
        let verified = self.hasher.verify(password.secret(), stored).await?;
        let Some(identity) = identity.filter(|i| verified.matches && !i.disabled) else {
            // The reservation stays: it was a failure.
            tracing::info!("login refused");
            self.audit(self.event("login.failed", client).subject(email.as_str()))
                .await;
            return Err(AuthError::InvalidCredentials);
        };
        throttle.succeeded(reserved).await?;
        if self.recovery.require_verified_email && !identity.email_verified {
            // The only way forward is the link: send a fresh one (rate-limited).
            let sent = self.send_verification(&identity, client).await?;
            self.audit(
                self.event("login.unverified_email", client)
                    .actor(identity.id)
                    .subject(identity.id),
            )
            .await;
            return Err(AuthError::FailedPrecondition(match sent {
                Ok(()) => "the email address is not verified yet: a new verification link has \
                           been sent to it; follow it, then log in again"
                    .into(),
                Err(_) => "the email address is not verified yet: follow the verification link \
                           sent to it, then log in again"
                    .into(),
            }));
        }
        let mut credential = identity.password_hash.clone();
        if verified.needs_rehash
            && let Some(rehashed) = self
                .rehash(identity.id, &credential, password.secret())
                .await
        {
            credential = rehashed;
        }
        if let Some(challenge) = self.mfa_challenge(&identity, &credential, client).await? {
            return Ok(LoginOutcome::MfaRequired(challenge));
        }
        self.open_session(
            (identity.id, identity.email_verified),
            (&credential, identity.credential_version),
            Amr::Password,
            client,
        )
        .await
        .map(LoginOutcome::Tokens)
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
        if !self
            .stores
            .sessions
            .insert_session(&opening.session, &opening.token, credential)
            .await?
        {
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
        match self
            .stores
            .sessions
            .rotate_refresh_token(&hash, &next, self.session_max_lifetime, now)
            .await?
        {
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
        if let Some((session_id, spent)) = self
            .stores
            .sessions
            .revoke_session_by_refresh_token(&hash, now, "logout")
            .await?
        {
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

    /// Replaces the caller's password and revokes every other session.
    #[tracing::instrument(skip_all, fields(user_id = %caller.subject_id))]
    pub async fn change_password(
        &self,
        caller: &Principal,
        old: Password,
        new: NewPassword,
        client: &ClientInfo,
    ) -> Result<usize, AuthError> {
        let identity = self.own_identity(caller).await?;
        let user_id = identity.id;
        let reserved = self
            .confirm_own_password(caller, &identity, &old, "password.change_failed", client)
            .await?;
        self.throttle().succeeded(reserved).await?;
        let hash = self.hasher.hash(new.secret()).await?;
        let now = self.clock.now();
        let notice = self.notice(PASSWORD_CHANGED, (user_id, &identity.email), now)?;
        let revoked = self
            .stores
            .identities
            .change_password(
                (user_id, Some(caller.session_id)),
                &identity.password_hash,
                &hash,
                &CredentialChange::PasswordChanged.ends(),
                notice.as_slice(),
                now,
            )
            .await?
            // Another change won meanwhile: the old password is no longer current.
            .ok_or_else(|| {
                AuthError::PermissionDenied("old_password: is not the current password".into())
            })?;
        for s in &revoked {
            self.revoked.insert(*s, now);
        }
        self.outbox_wake.notify_one();
        self.audit(
            self.event("password.changed", client)
                .actor(caller.subject_id)
                .subject(caller.subject_id)
                .detail("sessions_revoked", revoked.len()),
        )
        .await;
        Ok(revoked.len())
    }

    /// Checks the caller's own password before a sensitive change. A wrong one
    /// is a failed login (the same throttle, so a stolen access token is no
    /// unlimited password oracle); the third in a row ends the calling session.
    /// The reservation is returned: released by the caller once all is well.
    pub(crate) async fn confirm_own_password(
        &self,
        caller: &Principal,
        identity: &IdentityRecord,
        password: &Password,
        failure: &str,
        client: &ClientInfo,
    ) -> Result<Reserved, AuthError> {
        let throttle = self.throttle();
        let reserved = throttle
            .reserve(&identity.email, client.address.as_deref(), self.clock.now())
            .await?
            .map_err(AuthError::Throttled)?;
        let verified = self
            .hasher
            .verify(password.secret(), Some(&identity.password_hash))
            .await?;
        if verified.matches {
            return Ok(reserved);
        }
        self.audit(self.event(failure, client).actor(caller.subject_id))
            .await;
        if reserved.failures >= OWN_PASSWORD_FAILURES {
            self.end_session(caller.session_id, "password_guessing")
                .await?;
            return Err(AuthError::Unauthenticated(
                "too many wrong passwords: this session has ended; log in again".into(),
            ));
        }
        Err(AuthError::PermissionDenied(
            "the password given is not the current password".into(),
        ))
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
                    id: user_id.uuid(),
                    session_id,
                    kind: SubjectKind::User,
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

    /// Upgrades a hash made with older parameters, unless the password changed
    /// meanwhile; returns the new hash if stored. A failure only costs the upgrade.
    async fn rehash(
        &self,
        user_id: UserId,
        current: &str,
        password: &SecretString,
    ) -> Option<String> {
        let result = match self.hasher.hash(password).await {
            Ok(hash) => self
                .stores
                .identities
                .rehash_password(user_id, current, &hash, self.clock.now())
                .await
                .map(|stored| stored.then_some(hash))
                .map_err(AuthError::from),
            Err(e) => Err(e.into()),
        };
        result.unwrap_or_else(|e| {
            tracing::warn!(%user_id, error = %e, "password re-hash failed");
            None
        })
    }
}
