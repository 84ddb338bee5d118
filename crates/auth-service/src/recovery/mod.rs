//! Email verification and password reset: one-time tokens (256 random bits,
//! stored as SHA-256, single use, short-lived, superseded by a newer one) that
//! reach their owner only through a notification.

mod model;
mod sql;

pub use model::*;
pub use sql::TokenSql;

use crate::access::authz::Principal;
use crate::audit::ClientInfo;
use crate::context::{USER_EMAIL_CHANGED, UserEmailChanged};
use crate::credentials::Credentials;
use crate::credentials::EndsSql;
use crate::credentials::IdentityRecord;
use crate::credentials::IdentitySql;
use crate::credentials::changes::CredentialChange;
use crate::crypto::hasher::NO_PASSWORD;
use crate::crypto::refresh;
use crate::domain::Password;
use crate::domain::{Email, NewPassword};
use crate::error::AuthError;
use crate::notify::{
    EMAIL_CHANGE_PENDING, EMAIL_CHANGE_REQUESTED, EMAIL_CHANGED, EMAIL_VERIFICATION_REQUESTED,
    Notification, PASSWORD_CHANGED, PASSWORD_RESET_REQUESTED,
};
use crate::storage::StoreError;
use chrono::{DateTime, Duration, Utc};
use platform::ids::UserId;
use platform::outbox::OutboxEvent;
use platform::outbox::SqlOutbox;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

/// Reset requests one client address may make per minute.
const RESETS_PER_ADDRESS: u32 = 10;
/// Mails of one kind one account may be sent per [`MAIL_WINDOW`].
const MAILS_PER_ACCOUNT: u32 = 3;
const MAIL_WINDOW: Duration = Duration::minutes(15);
/// How long the address an email change leaves can stop or undo it.
pub const EMAIL_REVERT_WINDOW: Duration = Duration::days(7);

/// How one-time tokens behave in this deployment.
#[derive(Debug, Clone)]
pub struct RecoverySettings {
    /// Whether a notification sink is configured: without one nothing is
    /// queued, and the requests that need one say so.
    pub notifications: bool,
    pub email_verification_ttl: Duration,
    pub password_reset_ttl: Duration,
    /// How long a login may take to answer its second-factor challenge.
    pub mfa_challenge_ttl: Duration,
    /// Refuse logins until the address is verified.
    pub require_verified_email: bool,
}

/// A token ready to be stored with the notification carrying it.
pub(crate) struct Issued {
    pub token: NewOneTimeToken,
    pub event: OutboxEvent,
}

crate::context::use_cases! {
    /// Email verification, address change and password reset.
    Recovery
}

impl Recovery<'_> {
    /// A new one-time token for `identity`'s address and the event sending it.
    pub(crate) fn one_time(
        &self,
        (user_id, email): (UserId, &str),
        purpose: Purpose,
        now: DateTime<Utc>,
    ) -> Result<Issued, AuthError> {
        let (topic, ttl) = match purpose {
            Purpose::VerifyEmail => (
                EMAIL_VERIFICATION_REQUESTED,
                self.recovery.email_verification_ttl,
            ),
            Purpose::ResetPassword => (PASSWORD_RESET_REQUESTED, self.recovery.password_reset_ttl),
            Purpose::ChangeEmail => (EMAIL_CHANGE_REQUESTED, self.recovery.email_verification_ttl),
            // The link stops the change, or undoes it once made: it must
            // outlive a thief's instant verification by the days an owner
            // may take to read mail.
            Purpose::CancelEmailChange => (EMAIL_CHANGE_PENDING, EMAIL_REVERT_WINDOW),
        };
        let minted = refresh::mint().map_err(|_| AuthError::Internal("no randomness".into()))?;
        let expires_at = now + ttl;
        let event = Notification {
            user_id,
            email: email.to_owned(),
            token: Some(minted.token.expose_secret().to_owned()),
            expires_at: Some(expires_at),
        }
        .event(topic, now)
        .map_err(StoreError::from)?;
        Ok(Issued {
            token: NewOneTimeToken {
                hash: minted.hash,
                purpose,
                user_id,
                email: email.to_owned(),
                created_at: now,
                expires_at,
            },
            event,
        })
    }

    /// A notice (no token) to `identity`'s address, if notifications are on.
    pub(crate) fn notice(
        &self,
        topic: &str,
        (user_id, email): (UserId, &str),
        now: DateTime<Utc>,
    ) -> Result<Option<OutboxEvent>, StoreError> {
        if !self.recovery.notifications {
            return Ok(None);
        }
        Ok(Some(
            Notification::notice(user_id, email).event(topic, now)?,
        ))
    }

    /// Stores new one-time tokens for `identity`, each for a purpose and sent
    /// to an address, with their notifications in one transaction, and
    /// records `audit`. `Changed` when the identity was disabled, changed
    /// address or had any credential change since it was read: a token must
    /// not outlive the state it was asked for under.
    async fn issue_one_time(
        &self,
        identity: &IdentityRecord,
        sends: &[(Purpose, &str)],
        (audit, client): (&str, &ClientInfo),
    ) -> Result<(), AuthError> {
        let user_id = identity.id;
        let now = self.clock.now();
        let mut tx = self.db.write().await?;
        let locked = platform::sql!(&mut tx, EndsSql::lock_identity(user_id))?
            .filter(|l| !l.disabled && l.credential_version == identity.credential_version)
            .ok_or(AuthError::Changed)?;
        for (purpose, to) in sends {
            // Only an email change's token goes anywhere but the address.
            if *purpose != Purpose::ChangeEmail && *to != locked.email {
                return Err(AuthError::Changed);
            }
            let issued = self.one_time((user_id, to), *purpose, now)?;
            platform::sql!(&mut tx, TokenSql::supersede(&issued.token))?;
            platform::sql!(&mut tx, TokenSql::insert_token(&issued.token))?;
            platform::sql!(&mut tx, SqlOutbox::insert(&issued.event))?;
        }
        tx.commit().await?;
        self.outbox_wake.notify_one();
        self.audit(self.event(audit, client).subject(user_id)).await;
        Ok(())
    }

    /// The events of an identity moving off address `left`: the User Service
    /// follows (with the address current at delivery) and `left` is told.
    fn moved(
        &self,
        (user_id, left): (UserId, &str),
        now: DateTime<Utc>,
    ) -> Result<Vec<OutboxEvent>, StoreError> {
        let mut events = vec![OutboxEvent::new(
            USER_EMAIL_CHANGED,
            user_id.uuid(),
            serde_json::to_string(&UserEmailChanged { user_id })?,
            now,
        )];
        events.extend(self.notice(EMAIL_CHANGED, (user_id, left), now)?);
        Ok(events)
    }

    fn require_notifications(&self) -> Result<(), AuthError> {
        if self.recovery.notifications {
            Ok(())
        } else {
            Err(AuthError::FailedPrecondition(
                "this deployment sends no notifications (AUTH_NOTIFY_URL is not set)".into(),
            ))
        }
    }

    /// Sends `identity` a new verification, unless it had [`MAILS_PER_ACCOUNT`]
    /// lately; the wait otherwise.
    pub(crate) async fn send_verification(
        &self,
        identity: &IdentityRecord,
        client: &ClientInfo,
    ) -> Result<Result<(), Duration>, AuthError> {
        let now = self.clock.now();
        let throttle = self.throttle();
        let key = format!("verify:account:{}", identity.id);
        if let Err(wait) = throttle
            .limit(&key, MAILS_PER_ACCOUNT, MAIL_WINDOW, now)
            .await?
        {
            return Ok(Err(wait));
        }
        self.issue_one_time(
            identity,
            &[(Purpose::VerifyEmail, &identity.email)],
            ("email_verification.requested", client),
        )
        .await?;
        Ok(Ok(()))
    }

    /// Sends the caller a new verification of their address.
    #[tracing::instrument(skip_all, fields(user_id = %caller.subject_id))]
    pub async fn request_email_verification(
        &self,
        caller: &Principal,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require_notifications()?;
        let identity = self.own_identity(caller).await?;
        if identity.email_verified {
            return Err(AuthError::FailedPrecondition(
                "the email address is already verified".into(),
            ));
        }
        self.send_verification(&identity, client)
            .await?
            .map_err(AuthError::Throttled)
    }

    /// Marks the address a verification token was sent to verified; for an
    /// email change, moves the identity to it, and the User Service's profile
    /// follows through the outbox. One transaction, the identity locked first.
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(
        &self,
        token: &SecretString,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        use AuthError::InvalidOneTimeToken as Invalid;
        let hash = refresh::parse(token).ok_or(Invalid)?;
        let now = self.clock.now();
        let purposes = [Purpose::ChangeEmail.as_str(), Purpose::VerifyEmail.as_str()];
        let mut tx = self.db.write().await?;
        let (_, purpose, locked) =
            platform::sql!(&mut tx, EndsSql::lock_token_owner(&hash, &purposes))?
                .filter(|(.., locked)| !locked.disabled)
                .ok_or(Invalid)?;
        let (user_id, address) =
            platform::sql!(&mut tx, TokenSql::spend_token(&hash, &purpose, now))?.ok_or(Invalid)?;
        let kind = if purpose == Purpose::VerifyEmail.as_str() {
            // Sent to an address the identity has left: it proves nothing.
            if address != locked.email {
                return Err(Invalid);
            }
            platform::sql!(&mut tx, IdentitySql::mark_verified(user_id, now))?;
            "email.verified"
        } else {
            match platform::sql!(&mut tx, IdentitySql::move_to(user_id, &address, now)) {
                Err(StoreError::EmailTaken) => {
                    return Err(AuthError::AlreadyExists(
                        "another account took this address meanwhile".into(),
                    ));
                }
                moved => moved?,
            }
            platform::sql!(
                &mut tx,
                EndsSql::end_artefacts(user_id, CredentialChange::EmailChanged, None, now)
            )?;
            let events = self.moved((user_id, &locked.email), now)?;
            platform::sql!(&mut tx, SqlOutbox::insert_all(&events))?;
            "email.changed"
        };
        tx.commit().await?;
        self.outbox_wake.notify_one();
        tracing::info!(%user_id, kind, "email verified");
        self.audit(self.event(kind, client).actor(user_id).subject(user_id))
            .await;
        Ok(())
    }

    /// Moves the caller to a new address once they prove it is theirs: a
    /// verification goes to the new address and, at once, a notice with a
    /// cancel link to the current one, so a hijacked session's owner hears of
    /// it before it happens; when the verification is followed the old
    /// address is told again. A wrong password answers as ChangePassword's does.
    #[tracing::instrument(skip_all, fields(user_id = %caller.subject_id))]
    pub async fn change_email(
        &self,
        caller: &Principal,
        new_email: Email,
        password: Password,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require_notifications()?;
        let identity = self.own_identity(caller).await?;
        let user_id = identity.id;
        let reserved = Credentials(self.0)
            .confirm_own_password(caller, &identity, &password, "email.change_failed", client)
            .await?;
        let throttle = self.throttle();
        throttle.succeeded(reserved).await?;
        if new_email.as_str() == identity.email {
            return Err(AuthError::FailedPrecondition(
                "new_email: is already the account's address".into(),
            ));
        }
        if Credentials(self.0)
            .address_taken(new_email.as_str(), Some(user_id))
            .await?
        {
            return Err(AuthError::EmailTaken);
        }
        let now = self.clock.now();
        let key = format!("change_email:account:{user_id}");
        throttle
            .limit(&key, MAILS_PER_ACCOUNT, MAIL_WINDOW, now)
            .await?
            .map_err(AuthError::Throttled)?;
        self.issue_one_time(
            &identity,
            &[
                (Purpose::ChangeEmail, new_email.as_str()),
                (Purpose::CancelEmailChange, &identity.email),
            ],
            ("email_change.requested", client),
        )
        .await
    }

    /// Stops a pending email change, or undoes one already made, with the
    /// link mailed to the address it leaves ("this wasn't me"): the account is
    /// (back) at that address, its password no longer works (whoever started
    /// the change knows it), every session and outstanding token ends, and a
    /// reset link goes to the address, all in one transaction.
    #[tracing::instrument(skip_all)]
    pub async fn cancel_email_change(
        &self,
        token: &SecretString,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        use AuthError::InvalidOneTimeToken as Invalid;
        let hash = refresh::parse(token).ok_or(Invalid)?;
        let now = self.clock.now();
        let purpose = Purpose::CancelEmailChange;
        let mut tx = self.db.write().await?;
        let (user_id, _, locked) = platform::sql!(
            &mut tx,
            EndsSql::lock_token_owner(&hash, &[purpose.as_str()])
        )?
        .filter(|(.., locked)| !locked.disabled)
        .ok_or(Invalid)?;
        let link = platform::sql!(&mut tx, TokenSql::live_token(&hash, &[purpose], now))?
            .ok_or(Invalid)?;
        platform::sql!(&mut tx, TokenSql::spend_token(&hash, purpose.as_str(), now))?
            .ok_or(Invalid)?;
        let reverted = locked.email != link.email;
        let (restore, no_password) = (&link.email, NO_PASSWORD);
        let restored = platform::sql!(
            &mut tx,
            IdentitySql::restore(user_id, restore, no_password, now)
        );
        match restored {
            Err(StoreError::EmailTaken) => {
                return Err(AuthError::FailedPrecondition(
                    "the address this link was sent to now belongs to another account; \
                     ask an administrator"
                        .into(),
                ));
            }
            restored => restored?,
        }
        let revoked = platform::sql!(
            &mut tx,
            EndsSql::end_artefacts(user_id, CredentialChange::EmailChangeCancelled, None, now)
        )?;
        // The state restored is the one this link was issued in: the links of
        // every later change (a thief's own moves) end, the owner's stay.
        let from = link.created_at;
        platform::sql!(
            &mut tx,
            TokenSql::spend_links_since(user_id, purpose, from, now)
        )?;
        let reset = self.one_time((user_id, &link.email), Purpose::ResetPassword, now)?;
        platform::sql!(&mut tx, TokenSql::insert_token(&reset.token))?;
        let mut events = vec![reset.event];
        if reverted {
            events.extend(self.moved((user_id, &locked.email), now)?);
        }
        platform::sql!(&mut tx, SqlOutbox::insert_all(&events))?;
        tx.commit().await?;
        for s in &revoked {
            self.revoked.insert(*s, now);
        }
        self.outbox_wake.notify_one();
        tracing::info!(%user_id, reverted, "email change cancelled");
        self.audit(
            self.event("email_change.cancelled", client)
                .actor(user_id)
                .subject(user_id)
                .detail("reverted", reverted)
                .detail("sessions_revoked", revoked.len()),
        )
        .await;
        Ok(())
    }

    /// Queues a reset for the identity with `email`, if there is an enabled
    /// one. The answer is the same, and as fast, either way: only the address
    /// limit is checked before answering; the lookup and the write happen after.
    #[tracing::instrument(skip_all)]
    pub async fn request_password_reset(
        &self,
        email: Email,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require_notifications()?;
        let throttle = self.throttle();
        if let Err(wait) = throttle
            .per_address(
                "reset",
                client.address.as_deref(),
                RESETS_PER_ADDRESS,
                self.clock.now(),
            )
            .await?
        {
            self.audit(self.event("password_reset.throttled", client))
                .await;
            return Err(AuthError::Throttled(wait));
        }
        let core = Arc::clone(self.0);
        let client = client.clone();
        self.jobs.spawn("password reset", async move {
            if let Err(error) = Recovery(&core).queue_reset(&email, &client).await {
                tracing::warn!(%error, "password reset not queued");
            }
        });
        Ok(())
    }

    async fn queue_reset(&self, email: &Email, client: &ClientInfo) -> Result<(), AuthError> {
        let Some(identity) = platform::sql!(
            read(&self.db),
            IdentitySql::identity_by_email(email.as_str())
        )?
        .filter(|i| !i.disabled) else {
            self.audit(
                self.event("password_reset.unknown_email", client)
                    .subject(email.as_str()),
            )
            .await;
            return Ok(());
        };
        let now = self.clock.now();
        let throttle = self.throttle();
        let key = format!("reset:account:{}", identity.id);
        if throttle
            .limit(&key, MAILS_PER_ACCOUNT, MAIL_WINDOW, now)
            .await?
            .is_err()
        {
            self.audit(
                self.event("password_reset.throttled", client)
                    .subject(identity.id),
            )
            .await;
            return Ok(());
        }
        self.issue_one_time(
            &identity,
            &[(Purpose::ResetPassword, &identity.email)],
            ("password_reset.requested", client),
        )
        .await
    }

    /// Sets a new password with a reset token: every session of the account
    /// ends, every outstanding token and challenge dies, and the owner is told.
    #[tracing::instrument(skip_all)]
    pub async fn reset_password(
        &self,
        token: &SecretString,
        password: NewPassword,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let hash = refresh::parse(token).ok_or(AuthError::InvalidOneTimeToken)?;
        // A cheap look first, so random tokens cost no Argon2 hash; spending
        // the token below checks again in the same transaction as its effect.
        platform::sql!(
            read(&self.db),
            TokenSql::live_token(&hash, &[Purpose::ResetPassword], self.clock.now())
        )?
        .ok_or(AuthError::InvalidOneTimeToken)?;
        let password_hash = self.hasher.hash(password.secret()).await?;
        let now = self.clock.now();
        let purpose = Purpose::ResetPassword.as_str();
        let mut tx = self.db.write().await?;
        let (_, _, locked) = platform::sql!(&mut tx, EndsSql::lock_token_owner(&hash, &[purpose]))?
            .ok_or(AuthError::InvalidOneTimeToken)?;
        let (user_id, sent_to) =
            platform::sql!(&mut tx, TokenSql::spend_token(&hash, purpose, now))?
                .ok_or(AuthError::InvalidOneTimeToken)?;
        // A move ends the reset tokens anyway; the address is checked too,
        // so a link mailed to an address the account has left never works.
        if locked.disabled || locked.email != sent_to {
            return Err(AuthError::InvalidOneTimeToken);
        }
        platform::sql!(
            &mut tx,
            IdentitySql::set_password(user_id, &password_hash, now)
        )?;
        let revoked = platform::sql!(
            &mut tx,
            EndsSql::end_artefacts(user_id, CredentialChange::PasswordReset, None, now)
        )?;
        let notice = self.notice(PASSWORD_CHANGED, (user_id, &sent_to), now)?;
        platform::sql!(&mut tx, SqlOutbox::insert_all(notice.as_slice()))?;
        tx.commit().await?;
        for s in &revoked {
            self.revoked.insert(*s, now);
        }
        // Whoever was guessing the old password has nothing left to guess.
        self.throttle().forgive(&sent_to).await?;
        self.outbox_wake.notify_one();
        tracing::info!(%user_id, "password reset");
        self.audit(
            self.event("password.reset", client)
                .actor(user_id)
                .subject(user_id)
                .detail("sessions_revoked", revoked.len()),
        )
        .await;
        Ok(())
    }
}
