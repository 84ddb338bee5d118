//! The verifier's rules driven by hand: a real P-256 key made here signs
//! tokens and SETs, which go through the same `verify` and `handle` paths the
//! feed uses; both clocks are moved by the test. This file holds the bench;
//! `tokens`, `feed` and `layer` the tests.

mod feed;
mod layer;
mod tokens;

use crate::config::Config;
use crate::event::{EventType, SetError};
use crate::keys::parse_jwks;
use crate::rejection::Rejection;
use crate::verifier::{Handled, Monotonic, Shared, Verifier};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity_proto::auth::v1::{SubjectKind, SubscribeSecurityEventsResponse as SecurityEvent};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use platform::clock::{Clock, ManualClock};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use uuid::Uuid;

const ISS: &str = "identity-auth";
const AUD: &str = "identity-platform";
const CLIENT: &str = "sa-verifier-test";

/// A signing key and its public JWK.
struct Key {
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl Key {
    fn generate(kid: &str) -> Self {
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new())
                .unwrap();
        let pair =
            EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let point = pair.public_key().as_ref();
        assert_eq!(point.len(), 65);
        Self {
            kid: kid.to_owned(),
            encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": kid,
                "x": URL_SAFE_NO_PAD.encode(&point[1..33]),
                "y": URL_SAFE_NO_PAD.encode(&point[33..]),
            }),
        }
    }

    fn sign(&self, typ: &str, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_owned());
        jsonwebtoken::encode(&header, claims, &self.encoding).unwrap()
    }
}

fn jwks(keys: &[&Key]) -> String {
    json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() }).to_string()
}

/// A verifier with no network, a manual wall clock and a movable monotonic one.
struct Bench {
    verifier: Verifier,
    shared: Arc<Shared>,
    clock: ManualClock,
    mono: Arc<parking_lot::Mutex<Instant>>,
    key: Key,
}

impl Bench {
    fn new() -> Self {
        let clock = ManualClock::default();
        let mut config = Config::new(
            "http://127.0.0.1:1",
            CLIENT,
            secrecy::SecretString::from("s"),
            ISS,
            AUD,
        );
        config.clock = Arc::new(clock.clone());
        config.cache_capacity = 1024;
        let mut shared = Shared::new(&config).unwrap();
        let mono = Arc::new(parking_lot::Mutex::new(platform::clock::monotonic_now()));
        let m = mono.clone();
        shared.monotonic = Monotonic(Arc::new(move || *m.lock()));
        let shared = Arc::new(shared);
        let key = Key::generate("k1");
        shared.keys.replace(parse_jwks(&jwks(&[&key])).unwrap());
        shared.state.set_roles(
            [
                ("user".to_owned(), vec!["profile:read".to_owned()]),
                (
                    "editor".to_owned(),
                    vec!["users:read".to_owned(), "users:write".to_owned()],
                ),
                ("admin".to_owned(), vec!["*".to_owned()]),
            ]
            .into_iter()
            .collect(),
        );
        let bench = Self {
            verifier: Verifier::offline(shared.clone()),
            shared,
            clock,
            mono,
            key,
        };
        bench.heartbeat();
        bench
    }

    fn now(&self) -> i64 {
        self.clock.now().timestamp()
    }

    fn advance_mono(&self, by: Duration) {
        *self.mono.lock() += by;
    }

    fn heartbeat(&self) {
        let h = SecurityEvent {
            heartbeat: true,
            cursor: "c".into(),
            ..Default::default()
        };
        assert_eq!(self.shared.handle(&h), Handled::Heartbeat);
    }

    fn claims(&self, subject: Uuid, service: bool, sid: Uuid, roles: &[&str], iat: i64) -> Value {
        let mut c = json!({
            "iss": ISS, "aud": AUD, "sub": subject, "sid": sid, "jti": Uuid::new_v4(),
            "iat": iat, "nbf": iat, "exp": iat + 900, "roles": roles,
            "email_verified": true, "amr": ["pwd"],
        });
        if service {
            c["kind"] = "service".into();
        }
        c
    }

    /// A user's token with `roles`, issued at `iat`.
    fn token(&self, user: Uuid, sid: Uuid, roles: &[&str], iat: i64) -> String {
        self.key
            .sign("JWT", &self.claims(user, false, sid, roles, iat))
    }

    fn set_claims(&self, kind: EventType, sub_id: Value, body: Value) -> Value {
        json!({
            "iss": ISS, "aud": CLIENT, "jti": Uuid::new_v4().to_string(), "iat": self.now(),
            "sub_id": sub_id, "events": { kind.uri(): body },
        })
    }

    /// A feed message about `subject` (and `session`) at `at`, with its SET.
    fn event(
        &self,
        kind: EventType,
        subject: &str,
        subject_kind: SubjectKind,
        session: Option<Uuid>,
        at: i64,
        extra: Value,
    ) -> SecurityEvent {
        let sub_id = match session {
            Some(sid) => json!({"format": "complex",
                "user": {"format": "opaque", "id": subject},
                "session": {"format": "opaque", "id": sid.to_string()}}),
            None => json!({"format": "opaque", "id": subject}),
        };
        let mut body = json!({"event_timestamp": at});
        if let (Value::Object(b), Value::Object(e)) = (&mut body, extra) {
            b.extend(e);
        }
        let set = self
            .key
            .sign("secevent+jwt", &self.set_claims(kind, sub_id, body));
        SecurityEvent {
            cursor: format!("cursor-{}", Uuid::new_v4()),
            heartbeat: false,
            event_type: kind.uri(),
            subject_id: subject.to_owned(),
            subject_kind: subject_kind as i32,
            session_id: session.map(|s| s.to_string()).unwrap_or_default(),
            event_time: Some(prost_types::Timestamp {
                seconds: at,
                nanos: 0,
            }),
            set,
            roles: vec![],
            permissions: vec![],
        }
    }

    fn user_event(&self, kind: EventType, user: Uuid, at: i64) -> SecurityEvent {
        self.event(
            kind,
            &user.to_string(),
            SubjectKind::User,
            None,
            at,
            json!({}),
        )
    }

    fn apply(&self, msg: &SecurityEvent) {
        match self.shared.handle(msg) {
            Handled::Applied(_) => {}
            other => panic!("not applied: {other:?}"),
        }
    }
}
