//! Notifications to people (email verification, password reset, security
//! notices). They never leave from a request: the use case writes an outbox
//! event in its own transaction and the relay delivers it to the configured
//! sink, retried with backoff, at least once. A one-time token travels only in
//! the event's payload (scrubbed once delivered), never in a log line, an
//! audit record or a response.

mod smtp;
mod webhook;

pub use smtp::Smtp;
pub use webhook::{Webhook, WebhookSecret};

use chrono::{DateTime, Utc};
use platform::ids::UserId;
use platform::outbox::OutboxEvent;
use serde::{Deserialize, Serialize};

/// Sent to a new or changed address: prove it is yours.
pub const EMAIL_VERIFICATION_REQUESTED: &str = "identity.email_verification.requested";
/// Sent to the account's address: a link to set a new password.
pub const PASSWORD_RESET_REQUESTED: &str = "identity.password_reset.requested";
/// A notice that the password was changed or reset.
pub const PASSWORD_CHANGED: &str = "identity.password.changed";
/// Sent to a new address: prove it is yours, and the account moves to it.
pub const EMAIL_CHANGE_REQUESTED: &str = "identity.email_change.requested";
/// Sent to the current address when a change to another is requested: a
/// link to stop it.
pub const EMAIL_CHANGE_PENDING: &str = "identity.email_change.pending";
/// A notice to the old address that the account moved to another.
pub const EMAIL_CHANGED: &str = "identity.email.changed";
/// A notice that two-factor login was turned on.
pub const MFA_ENABLED: &str = "identity.mfa.enabled";
/// A notice that authenticator codes were locked after too many wrong ones:
/// someone knows the password.
pub const MFA_LOCKED: &str = "identity.mfa.locked";
/// A notice that two-factor login was turned off (by the user or an admin).
pub const MFA_DISABLED: &str = "identity.mfa.disabled";

/// What a notification says; `email` is the recipient.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Notification {
    pub user_id: UserId,
    pub email: String,
    /// The one-time token, for the events that carry one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<DateTime<Utc>>,
}

impl Notification {
    /// A notice without a token.
    pub fn notice(user_id: UserId, email: &str) -> Self {
        Self {
            user_id,
            email: email.to_owned(),
            token: None,
            expires_at: None,
        }
    }

    /// The outbox event delivering this notification as `topic`.
    pub fn event(&self, topic: &str, now: DateTime<Utc>) -> Result<OutboxEvent, serde_json::Error> {
        Ok(OutboxEvent::new(
            topic,
            self.user_id.uuid(),
            serde_json::to_string(self)?,
            now,
        ))
    }
}

/// Whether an outbox topic is a notification (as opposed to an event for the
/// User Service).
pub fn is_notification(topic: &str) -> bool {
    topic.starts_with(platform::outbox::SECRET_TOPICS)
}

/// The front end's page a notification links to, if it has one.
fn page(topic: &str) -> Option<&'static str> {
    match topic {
        EMAIL_VERIFICATION_REQUESTED | EMAIL_CHANGE_REQUESTED => Some("verify-email"),
        PASSWORD_RESET_REQUESTED => Some("reset-password"),
        EMAIL_CHANGE_PENDING => Some("cancel-email-change"),
        _ => None,
    }
}

/// The link a person follows: `{public_url}/{page}?token=...`.
pub fn link(public_url: Option<&str>, topic: &str, token: Option<&str>) -> Option<String> {
    let (base, page, token) = (public_url?, page(topic)?, token?);
    Some(format!(
        "{}/{page}?token={token}",
        base.trim_end_matches('/')
    ))
}

/// Several sinks (a webhook and SMTP): each gets every notification. A failure
/// of one retries all (delivery is at least once; receivers dedupe).
pub struct Fanout(pub Vec<std::sync::Arc<dyn platform::outbox::Deliver>>);

impl platform::outbox::Deliver for Fanout {
    fn deliver<'a>(
        &'a self,
        event: &'a OutboxEvent,
    ) -> futures::future::BoxFuture<'a, Result<(), platform::outbox::DeliveryError>> {
        Box::pin(async move {
            for sink in &self.0 {
                sink.deliver(event).await?;
            }
            Ok(())
        })
    }
}
