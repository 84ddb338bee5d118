//! The webhook sink: one HTTP POST per notification, a CloudEvents 1.0 event in
//! structured form, signed per the Standard Webhooks specification
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC>`).
//! Receivers dedupe on `webhook-id` (the outbox event id): delivery is at least once.

use super::{Notification, link};
use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use futures::future::BoxFuture;
use platform::clock::SharedClock;
use platform::outbox::{DELIVERY_TIMEOUT, Deliver, DeliveryError, OutboxEvent};

/// A `whsec_` signing secret, never printed.
#[derive(Clone)]
pub struct WebhookSecret(hmac::Key);

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(..)")
    }
}

impl WebhookSecret {
    /// Parses `whsec_<base64>` (the prefix is optional, as the specification's
    /// libraries accept); at least 16 bytes of key.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let encoded = raw.strip_prefix("whsec_").unwrap_or(raw);
        let key = STANDARD
            .decode(encoded)
            .map_err(|_| "the notify secret must be whsec_ followed by base64")?;
        if key.len() < 16 {
            return Err("the notify secret must hold at least 16 bytes");
        }
        Ok(Self(hmac::Key::new(hmac::HMAC_SHA256, &key)))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
    pub fn sign(&self, id: &str, timestamp: i64, body: &str) -> String {
        let content = format!("{id}.{timestamp}.{body}");
        let tag = hmac::sign(&self.0, content.as_bytes());
        format!("v1,{}", STANDARD.encode(tag.as_ref()))
    }
}

/// Delivers notifications to one URL.
#[derive(Clone, Debug)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    secret: WebhookSecret,
    /// The CloudEvents `source`: the issuer.
    source: String,
    /// The front end, for links.
    public_url: Option<String>,
    clock: SharedClock,
}

impl Webhook {
    pub fn new(
        url: &str,
        secret: WebhookSecret,
        source: &str,
        public_url: Option<String>,
        clock: SharedClock,
    ) -> Result<Self, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("--notify-url: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err("--notify-url must be an http:// or https:// URL".into());
        }
        let client = reqwest::Client::builder()
            .timeout(DELIVERY_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            client,
            url: url.to_owned(),
            secret,
            source: source.to_owned(),
            public_url,
            clock,
        })
    }

    /// The CloudEvent for an outbox event.
    fn body(&self, event: &OutboxEvent) -> Result<String, DeliveryError> {
        let n: Notification = serde_json::from_str(&event.payload)?;
        let mut data = serde_json::to_value(&n)?;
        if let Some(link) = link(self.public_url.as_deref(), &event.topic, n.token.as_deref()) {
            data["link"] = link.into();
        }
        Ok(serde_json::json!({
            "specversion": "1.0",
            "id": event.id.to_string(),
            "source": self.source,
            "type": event.topic,
            "subject": n.user_id.to_string(),
            "time": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "datacontenttype": "application/json",
            "data": data,
        })
        .to_string())
    }
}

impl Deliver for Webhook {
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            let body = self.body(event)?;
            let id = event.id.to_string();
            let timestamp = self.clock.now().timestamp();
            let signature = self.secret.sign(&id, timestamp, &body);
            let response = self
                .client
                .post(&self.url)
                .header("content-type", "application/cloudevents+json")
                .header("webhook-id", &id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(body)
                .send()
                .await
                // Without the URL: it may carry a credential of its own.
                .map_err(|e| DeliveryError::Unreachable(e.without_url().to_string()))?;
            let status = response.status();
            if status.is_success() {
                Ok(())
            } else {
                Err(DeliveryError::HttpStatus(status.as_u16()))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signs_like_the_specification_example() {
        // The Standard Webhooks specification's published example.
        let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn refuses_malformed_secrets() {
        assert!(WebhookSecret::parse("whsec_not base64!").is_err());
        assert!(WebhookSecret::parse("whsec_c2hvcnQ=").is_err());
    }
}
