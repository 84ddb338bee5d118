//! A notification receiver for tests: a real HTTP server that checks every
//! delivery's Standard Webhooks signature with its own HMAC (the `hmac` and
//! `sha2` crates, not the service's aws-lc-rs) and collects the CloudEvents.

use crate::helpers::{TestApp, settings, spawn_with};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use parking_lot::Mutex;
use platform::clock::ManualClock;
use std::sync::Arc;
use std::time::Duration;
use test_support::Backend;

/// A delivery whose signature held.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub webhook_id: String,
    pub event: serde_json::Value,
}

#[derive(Default)]
struct Inbox {
    deliveries: Vec<Delivery>,
    bad_signatures: usize,
}

/// The receiver; stops with the test.
#[derive(Clone)]
pub struct Receiver {
    pub url: String,
    pub secret: String,
    inbox: Arc<Mutex<Inbox>>,
}

impl Receiver {
    pub async fn start() -> Self {
        let key: [u8; 32] = rand_bytes();
        let secret = format!("whsec_{}", STANDARD.encode(key));
        let inbox = Arc::new(Mutex::new(Inbox::default()));
        let state = (key, inbox.clone());
        let app = axum::Router::new().route(
            "/hooks",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| async move {
                receive(&state, &headers, &body)
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hooks", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { url, secret, inbox }
    }

    /// Every delivery so far.
    pub fn deliveries(&self) -> Vec<Delivery> {
        self.inbox.lock().deliveries.clone()
    }

    /// Deliveries with a wrong or missing signature (always 0 if all is well).
    pub fn bad_signatures(&self) -> usize {
        self.inbox.lock().bad_signatures
    }

    /// Events of `kind` to `email`, oldest first.
    pub fn events(&self, kind: &str, email: &str) -> Vec<serde_json::Value> {
        self.deliveries()
            .into_iter()
            .map(|d| d.event)
            .filter(|e| e["type"] == kind && e["data"]["email"] == email)
            .collect()
    }

    /// Waits (up to 10 s) until there are `n` events of `kind` to `email`.
    pub async fn wait_for(&self, kind: &str, email: &str, n: usize) -> Vec<serde_json::Value> {
        for _ in 0..200 {
            let found = self.events(kind, email);
            if found.len() >= n {
                return found;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("no {n} `{kind}` events to {email}: {:?}", self.deliveries());
    }

    /// The one-time token of the latest `kind` event to `email`.
    pub async fn token(&self, kind: &str, email: &str, n: usize) -> String {
        let events = self.wait_for(kind, email, n).await;
        events[n - 1]["data"]["token"].as_str().unwrap().to_owned()
    }
}

fn rand_bytes() -> [u8; 32] {
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(16) {
        chunk.copy_from_slice(&uuid::Uuid::new_v4().as_u128().to_le_bytes());
    }
    out
}

fn receive(state: &([u8; 32], Arc<Mutex<Inbox>>), headers: &HeaderMap, body: &[u8]) -> StatusCode {
    let (key, inbox) = state;
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(id), Some(timestamp), Some(signatures)) = (
        header("webhook-id"),
        header("webhook-timestamp"),
        header("webhook-signature"),
    ) else {
        inbox.lock().bad_signatures += 1;
        return StatusCode::BAD_REQUEST;
    };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()));
    let signed = signatures.split(' ').any(|s| s == expected);
    let cloudevents = header("content-type") == Some("application/cloudevents+json");
    let mut inbox = inbox.lock();
    if !signed || !cloudevents {
        inbox.bad_signatures += 1;
        return StatusCode::UNAUTHORIZED;
    }
    let event: serde_json::Value = serde_json::from_slice(body).unwrap();
    inbox.deliveries.push(Delivery {
        webhook_id: id.to_owned(),
        event,
    });
    StatusCode::NO_CONTENT
}

/// An Auth Service that sends notifications to a fresh receiver.
pub async fn spawn_notifying(
    backend: Backend,
    tweak: impl FnOnce(&mut auth_service::config::Settings),
) -> (TestApp, Receiver) {
    let receiver = Receiver::start().await;
    let db = backend.fresh_database().await;
    let mut s = settings(&db.url);
    s.notify_url = Some(receiver.url.clone());
    s.notify_secret = Some(receiver.secret.clone());
    s.public_url = Some("https://app.example".into());
    tweak(&mut s);
    let mut app = spawn_with(s, ManualClock::default(), true).await;
    app._db = Some(db);
    (app, receiver)
}
