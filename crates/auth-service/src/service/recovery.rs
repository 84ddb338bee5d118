//! Email verification and password reset: one-time tokens (256 random bits,
//! stored as SHA-256, single use, short-lived, superseded by a newer one) that
//! reach their owner only through a notification.

use super::Authenticator;
use super::changes::CredentialChange;
use crate::audit::ClientInfo;
use crate::authz::Principal;
use crate::crypto::refresh;
use crate::domain::Password;
use crate::domain::{Email, NewPassword};
use crate::error::AuthError;
use crate::notify::{
    EMAIL_CHANGE_PENDING, EMAIL_CHANGE_REQUESTED, EMAIL_CHANGED, EMAIL_VERIFICATION_REQUESTED,
    Notification, PASSWORD_CHANGED, PASSWORD_RESET_REQUESTED,
};
use crate::service::{USER_EMAIL_CHANGED, UserEmailChanged};
use crate::storage::{IdentityRecord, NewOneTimeToken, Purpose, StoreError, Verified};
use chrono::{DateTime, Duration, Utc};
use platform::ids::UserId;
use platform::outbox::OutboxEvent;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;

/// Reset requests one client address may make per minute.
const RESETS_PER_ADDRESS: u32 = 10;
/// Mails of one kind one account may be sent per [`MAIL_WINDOW`].
const MAILS_PER_ACCOUNT: u32 = 3;
const MAIL_WINDOW: Duration = Duration::minutes(15);

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

impl Authenticator {
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
            // The cancel link lives as long as the change it stops.
            Purpose::CancelEmailChange => {
                (EMAIL_CHANGE_PENDING, self.recovery.email_verification_ttl)
            }
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

    /// Stores new one-time tokens, each for a purpose and sent to an address,
    /// with their notifications in one transaction, and records `audit`;
    /// false when the identity was disabled (or, but for an email change,
    /// changed address) meanwhile.
    async fn issue_one_time(
        &self,
        user_id: UserId,
        sends: &[(Purpose, &str)],
        (audit, client): (&str, &ClientInfo),
    ) -> Result<bool, AuthError> {
        let now = self.clock.now();
        let (mut tokens, mut events) = (Vec::new(), Vec::new());
        for (purpose, to) in sends {
            let issued = self.one_time((user_id, to), *purpose, now)?;
            tokens.push(issued.token);
            events.push(issued.event);
        }
        let stored = self.stores.recovery.issue_tokens(&tokens, &events).await?;
        if stored {
            self.outbox_wake.notify_one();
            self.audit(self.event(audit, client).subject(user_id)).await;
        }
        Ok(stored)
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
            identity.id,
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
    /// follows through the outbox.
    #[tracing::instrument(skip_all)]
    pub async fn verify_email(
        &self,
        token: &SecretString,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let hash = refresh::parse(token).ok_or(AuthError::InvalidOneTimeToken)?;
        let now = self.clock.now();
        let change = |user_id: UserId, old: &str, _new: &str| {
            let mut events = vec![OutboxEvent::new(
                USER_EMAIL_CHANGED,
                user_id.uuid(),
                serde_json::to_string(&UserEmailChanged { user_id })?,
                now,
            )];
            events.extend(self.notice(EMAIL_CHANGED, (user_id, old), now)?);
            Ok(events)
        };
        let ends = CredentialChange::EmailChanged.ends();
        let verified = match self
            .stores
            .recovery
            .verify_email(&hash, &ends, &change, now)
            .await
        {
            Err(StoreError::EmailTaken) => {
                return Err(AuthError::AlreadyExists(
                    "another account took this address meanwhile".into(),
                ));
            }
            other => other?.ok_or(AuthError::InvalidOneTimeToken)?,
        };
        let (user_id, kind) = match verified {
            Verified::Address(user_id) => (user_id, "email.verified"),
            Verified::Changed { user_id, .. } => {
                self.outbox_wake.notify_one();
                (user_id, "email.changed")
            }
        };
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
        let reserved = self
            .confirm_own_password(caller, &identity, &password, "email.change_failed", client)
            .await?;
        let throttle = self.throttle();
        throttle.succeeded(reserved).await?;
        if new_email.as_str() == identity.email {
            return Err(AuthError::FailedPrecondition(
                "new_email: is already the account's address".into(),
            ));
        }
        if self
            .stores
            .identities
            .identity_by_email(new_email.as_str())
            .await?
            .is_some()
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
            user_id,
            &[
                (Purpose::ChangeEmail, new_email.as_str()),
                (Purpose::CancelEmailChange, &identity.email),
            ],
            ("email_change.requested", client),
        )
        .await
        .map(drop)
    }

    /// Stops a pending email change with the token mailed to the current
    /// address: the change can no longer be verified, and every session and
    /// outstanding token of the account ends (whoever started it had one).
    #[tracing::instrument(skip_all)]
    pub async fn cancel_email_change(
        &self,
        token: &SecretString,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let hash = refresh::parse(token).ok_or(AuthError::InvalidOneTimeToken)?;
        let now = self.clock.now();
        let (user_id, revoked) = self
            .stores
            .recovery
            .cancel_email_change(&hash, &CredentialChange::EmailChangeCancelled.ends(), now)
            .await?
            .ok_or(AuthError::InvalidOneTimeToken)?;
        for s in &revoked {
            self.revoked.insert(*s, now);
        }
        tracing::info!(%user_id, "email change cancelled");
        self.audit(
            self.event("email_change.cancelled", client)
                .actor(user_id)
                .subject(user_id)
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
        self: &Arc<Self>,
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
        let core = self.clone();
        let client = client.clone();
        tokio::spawn(async move {
            if let Err(error) = core.queue_reset(&email, &client).await {
                tracing::warn!(%error, "password reset not queued");
            }
        });
        Ok(())
    }

    async fn queue_reset(&self, email: &Email, client: &ClientInfo) -> Result<(), AuthError> {
        let Some(identity) = self
            .stores
            .identities
            .identity_by_email(email.as_str())
            .await?
            .filter(|i| !i.disabled)
        else {
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
            identity.id,
            &[(Purpose::ResetPassword, &identity.email)],
            ("password_reset.requested", client),
        )
        .await
        .map(drop)
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
        if !self
            .stores
            .recovery
            .is_live(&hash, Purpose::ResetPassword, self.clock.now())
            .await?
        {
            return Err(AuthError::InvalidOneTimeToken);
        }
        let password_hash = self.hasher.hash(password.secret()).await?;
        let now = self.clock.now();
        let notice = |user_id, email: &str| self.notice(PASSWORD_CHANGED, (user_id, email), now);
        let reset = self
            .stores
            .recovery
            .reset_password(
                &hash,
                &password_hash,
                &CredentialChange::PasswordReset.ends(),
                &notice,
                now,
            )
            .await?
            .ok_or(AuthError::InvalidOneTimeToken)?;
        for s in &reset.revoked {
            self.revoked.insert(*s, now);
        }
        // Whoever was guessing the old password has nothing left to guess.
        self.throttle().forgive(&reset.email).await?;
        self.outbox_wake.notify_one();
        tracing::info!(user_id = %reset.user_id, "password reset");
        self.audit(
            self.event("password.reset", client)
                .actor(reset.user_id)
                .subject(reset.user_id)
                .detail("sessions_revoked", reset.revoked.len()),
        )
        .await;
        Ok(())
    }
}
