//! Registration, login (throttled), refresh, logout and password change.

mod admin;
pub mod changes;
mod ends;
mod model;
pub(crate) mod sql;

pub use ends::EndsSql;
pub use ends::{Ends, LockedIdentity, SessionsEnded};
pub use model::*;
pub use sql::IdentitySql;

use crate::access::authz::Principal;
use crate::audit::ClientInfo;
use crate::context::{DEFAULT_ROLE, LoginOutcome, USER_REGISTERED, UserRegistered};
use crate::domain::{DisplayName, Email, NewPassword, Password};
use crate::error::AuthError;
use crate::mfa::Mfa;
use crate::mfa::MfaSql;
use crate::notify::PASSWORD_CHANGED;
use crate::recovery::Purpose;
use crate::recovery::Recovery;
use crate::recovery::TokenSql;
use crate::sessions::Amr;
use crate::sessions::SessionSql;
use crate::sessions::Sessions;
use crate::storage::StoreError;
use crate::throttle::{Reserved, Throttle};
use changes::CredentialChange;
use platform::ids::UserId;
use platform::outbox::{OutboxEvent, SqlOutbox};

/// Wrong passwords (with the account's failed logins) that end the session a
/// ChangePassword, ChangeEmail or DisableTotp came from.
const OWN_PASSWORD_FAILURES: i64 = 3;

crate::context::use_cases! {
    /// Registration, login, password change and the administrator's account actions.
    Credentials
}

impl Credentials<'_> {
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

    /// [`Context::register`] with other roles (the first administrator).
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
        let identity = NewIdentity {
            id,
            email: email.as_str().to_owned(),
            display_name: display_name.as_str().to_owned(),
            password_hash,
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            created_at: now,
        };
        let payload = serde_json::to_string(&UserRegistered {
            user_id: id,
            email: identity.email.clone(),
            display_name: identity.display_name.clone(),
            username: None,
        })
        .map_err(|e| AuthError::Internal(e.to_string()))?;
        let mut tx = self.db.write().await?;
        match platform::sql!(&mut tx, IdentitySql::insert_identity(&identity)) {
            Err(StoreError::EmailTaken) => return Err(AuthError::EmailTaken),
            inserted => inserted?,
        }
        let mut events = vec![OutboxEvent::new(USER_REGISTERED, id.uuid(), payload, now)];
        // The first verification goes out with the registration, atomically.
        if self.recovery.notifications {
            let issued =
                Recovery(self.0).one_time((id, &identity.email), Purpose::VerifyEmail, now)?;
            platform::sql!(&mut tx, TokenSql::insert_token(&issued.token))?;
            events.push(issued.event);
        }
        platform::sql!(&mut tx, SqlOutbox::insert_all(&events))?;
        tx.commit().await?;
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
        if platform::sql!(read(&self.db), IdentitySql::identity_by_email(email))?.is_some() {
            return Ok(true);
        }
        Ok(platform::sql!(
            read(&self.db),
            TokenSql::address_reserved(email, by, self.clock.now())
        )?)
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
        let identity = platform::sql!(
            read(&self.db),
            IdentitySql::identity_by_email(email.as_str())
        )?;
        let stored = identity.as_ref().map(|i| i.password_hash.as_str());
        let verified = self.hasher.verify(password.secret(), stored).await?;
        let Some(identity) = identity.filter(|i| verified.matches && !i.disabled) else {
            // The reservation stays: it was a failure.
            tracing::info!("login refused");
            self.audit(self.event("login.failed", client).subject(email.as_str()))
                .await;
            return Err(AuthError::InvalidCredentials);
        };
        if self.recovery.require_verified_email && !identity.email_verified {
            throttle.succeeded(reserved).await?;
            // The only way forward is the link: send a fresh one (rate-limited).
            let sent = Recovery(self.0)
                .send_verification(&identity, client)
                .await?;
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
        // A better hash of the same password when the parameters changed,
        // made before the transaction: Argon2 takes a while.
        let rehashed = match verified.needs_rehash {
            true => (self.hasher.hash(password.secret()).await)
                .inspect_err(|e| tracing::warn!(error = %e, "password re-hash failed"))
                .ok(),
            false => None,
        };
        let (user_id, now) = (identity.id, self.clock.now());
        let mut tx = self.db.write().await?;
        // The identity first, as every transaction that changes what hangs off it.
        platform::sql!(&mut tx, EndsSql::lock_identity(user_id))?;
        let mut credential = identity.password_hash.clone();
        if let Some(hash) = rehashed
            && platform::sql!(
                &mut tx,
                IdentitySql::replace_hash(user_id, &credential, &hash, now)
            )?
        {
            credential = hash;
        }
        if platform::sql!(&mut tx, MfaSql::totp(user_id))?.is_some_and(|f| f.confirmed) {
            let (row, challenge) = Mfa(self.0).new_challenge(&identity, &credential, client)?;
            platform::sql!(&mut tx, MfaSql::insert_challenge(&row))?;
            Throttle::succeeded_in(&mut tx, reserved).await?;
            tx.commit().await?;
            let required = self.event("login.mfa_required", client);
            self.audit(required.actor(user_id).subject(user_id)).await;
            return Ok(LoginOutcome::MfaRequired(challenge));
        }
        let sessions = Sessions(self.0);
        let opening = sessions.new_session(user_id, Amr::Password, client)?;
        let (session, token) = (&opening.session, &opening.token);
        let checked = (credential.as_str(), identity.credential_version);
        if !platform::sql!(
            &mut tx,
            SessionSql::open_session_rows(session, token, checked)
        )? {
            drop(tx);
            return Err(sessions.login_lost_race(user_id, client).await);
        }
        Throttle::succeeded_in(&mut tx, reserved).await?;
        tx.commit().await?;
        sessions
            .session_opened(opening, identity.email_verified, client)
            .await
            .map(LoginOutcome::Tokens)
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
        let mut tx = self.db.write().await?;
        let locked =
            platform::sql!(&mut tx, EndsSql::lock_identity(user_id))?.ok_or(AuthError::Changed)?;
        let old = &identity.password_hash;
        if !platform::sql!(&mut tx, IdentitySql::replace_hash(user_id, old, &hash, now))? {
            // Another change won meanwhile: the old password is no longer current.
            return Err(AuthError::PermissionDenied(
                "old_password: is not the current password".into(),
            ));
        }
        let (change, current) = (CredentialChange::PasswordChanged, caller.session_id);
        let revoked = platform::sql!(
            &mut tx,
            EndsSql::end_artefacts(user_id, change, Some(current), now)
        )?;
        let notice = Recovery(self.0).notice(PASSWORD_CHANGED, (user_id, &locked.email), now)?;
        platform::sql!(&mut tx, SqlOutbox::insert_all(notice.as_slice()))?;
        tx.commit().await?;
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
            Sessions(self.0)
                .end_session(caller.session_id, "password_guessing")
                .await?;
            return Err(AuthError::Unauthenticated(
                "too many wrong passwords: this session has ended; log in again".into(),
            ));
        }
        Err(AuthError::PermissionDenied(
            "the password given is not the current password".into(),
        ))
    }
}
