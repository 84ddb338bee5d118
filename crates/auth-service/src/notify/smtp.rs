//! The SMTP sink, for small deployments without a notification service: one
//! plain-text mail per notification, its link built from the front end's
//! public URL. Plain SMTP (`smtp://host:port`, optionally `user:pass@`): meant
//! for a relay on the same host or network, which does TLS onwards.

use super::{
    EMAIL_CHANGE_PENDING, EMAIL_CHANGE_REQUESTED, EMAIL_CHANGED, EMAIL_VERIFICATION_REQUESTED,
    MFA_DISABLED, MFA_ENABLED, MFA_LOCKED, Notification, PASSWORD_CHANGED,
    PASSWORD_RESET_REQUESTED, link,
};
use futures::future::BoxFuture;
use lettre::message::{Mailbox, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use platform::outbox::{DELIVERY_TIMEOUT, Deliver, DeliveryError, OutboxEvent};

/// Delivers notifications as mail.
#[derive(Clone)]
pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    public_url: Option<String>,
}

impl std::fmt::Debug for Smtp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Smtp").field("from", &self.from).finish()
    }
}

impl Smtp {
    /// Mail through the server at `url` (`smtp://[user:pass@]host[:port]`),
    /// from `from`.
    pub fn new(url: &str, from: &str, public_url: Option<String>) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("--smtp-url: {e}"))?;
        if parsed.scheme() != "smtp" {
            return Err("--smtp-url must be smtp://host:port (plain SMTP to a relay)".into());
        }
        let host = parsed
            .host_str()
            .ok_or("--smtp-url has no host")?
            .to_owned();
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host)
            .port(parsed.port().unwrap_or(25))
            .timeout(Some(DELIVERY_TIMEOUT));
        if !parsed.username().is_empty() {
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(s)
                    .decode_utf8_lossy()
                    .into_owned()
            };
            builder = builder.credentials(Credentials::new(
                decode(parsed.username()),
                decode(parsed.password().unwrap_or_default()),
            ));
        }
        let from = from
            .parse()
            .map_err(|e| format!("--smtp-from is not an address: {e}"))?;
        Ok(Self {
            transport: builder.build(),
            from,
            public_url,
        })
    }

    /// The subject and body of a notification.
    fn compose(&self, topic: &str, n: &Notification) -> Result<(String, String), DeliveryError> {
        let link = link(self.public_url.as_deref(), topic, n.token.as_deref());
        let token = n.token.as_deref().unwrap_or_default();
        let expires = n
            .expires_at
            .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default();
        // Without a front end, the token itself is what the person pastes.
        let action = |what: &str| match &link {
            Some(link) => format!("{what}, open this link before {expires}:\n\n{link}\n"),
            None => format!("{what}, use this code before {expires}:\n\n{token}\n"),
        };
        let ignore = "If you did not ask for this, you can ignore this message.";
        let (subject, body) = match topic {
            EMAIL_VERIFICATION_REQUESTED => (
                "Verify your email address",
                format!("{}\n{ignore}\n", action("To verify this address")),
            ),
            EMAIL_CHANGE_REQUESTED => (
                "Confirm your new email address",
                format!(
                    "{}\n{ignore}\n",
                    action("To move your account to this address")
                ),
            ),
            EMAIL_CHANGE_PENDING => (
                "Your email address is about to change",
                format!(
                    "Someone signed in to your account asked to move it to another \
                     email address. Nothing has changed yet.\n\n\
                     If this was you, there is nothing to do.\n\n{}\n\
                     Then reset your password: whoever asked knows it.\n",
                    action("If this was not you, stop the change and sign every session out")
                ),
            ),
            PASSWORD_RESET_REQUESTED => (
                "Reset your password",
                format!("{}\n{ignore}\n", action("To choose a new password")),
            ),
            PASSWORD_CHANGED => (
                "Your password was changed",
                "Your password was just changed and your other sessions were ended.\n\
                 If this was not you, reset your password now.\n"
                    .to_owned(),
            ),
            EMAIL_CHANGED => (
                "Your email address was changed",
                "Your account no longer uses this address.\n\
                 If this was not you, contact your administrator now.\n"
                    .to_owned(),
            ),
            MFA_ENABLED => (
                "Two-factor login is on",
                "Two-factor login was turned on for your account.\n".to_owned(),
            ),
            MFA_LOCKED => (
                "Someone is trying to sign in to your account",
                "Someone who knows your password entered too many wrong codes from your \
                 authenticator app, so those codes are locked.\n\
                 Reset your password now. To sign in, use one of your recovery codes \
                 (it unlocks the app's codes), or ask your administrator.\n"
                    .to_owned(),
            ),
            MFA_DISABLED => (
                "Two-factor login is off",
                "Two-factor login was turned off for your account.\n\
                 If this was not you, change your password now.\n"
                    .to_owned(),
            ),
            other => return Err(DeliveryError::UnknownTopic(other.to_owned())),
        };
        Ok((subject.to_owned(), body))
    }
}

impl Deliver for Smtp {
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let n: Notification = serde_json::from_str(&event.payload)?;
            let (subject, body) = self.compose(&event.topic, &n)?;
            let to: Mailbox = n
                .email
                .parse()
                .map_err(|_| DeliveryError::NotConfigured("the recipient is not an address"))?;
            let mail = Message::builder()
                .from(self.from.clone())
                .to(to)
                // The event id: a receiver (or a person) can tell redeliveries apart.
                .message_id(Some(format!("<{}@identity>", event.id)))
                .subject(subject)
                .header(ContentType::TEXT_PLAIN)
                .body(body)
                .map_err(|e| DeliveryError::Unreachable(e.to_string()))?;
            self.transport
                .send(mail)
                .await
                .map(drop)
                .map_err(|e| DeliveryError::Unreachable(e.to_string()))
        })
    }
}
