//! The verifier's rules driven by hand: a real P-256 key made here signs
//! tokens and SETs, which go through the same `verify` and `handle` paths the
//! feed uses; both clocks are moved by the test.

use crate::config::Config;
use crate::event::{EventType, SetError};
use crate::keys::parse_jwks;
use crate::rejection::Rejection;
use crate::verifier::{Handled, Monotonic, Shared, Verifier};
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use identity_proto::auth::v1::{SecurityEvent, SubjectKind};
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

#[test]
fn a_valid_token_gives_its_claims_and_its_roles_permissions() {
    let b = Bench::new();
    let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
    let token = b.token(user, sid, &["user", "editor"], b.now());
    let claims = b.verifier.verify(&token).unwrap();
    assert_eq!(claims.subject.uuid(), user);
    assert_eq!(claims.user_id().map(|u| u.uuid()), Some(user));
    assert_eq!(claims.session_id.uuid(), sid);
    assert_eq!(claims.roles, ["user", "editor"]);
    assert_eq!(
        claims.permissions,
        ["profile:read", "users:read", "users:write"]
    );
    assert!(claims.allows("users:write") && !claims.allows("roles:admin"));
    assert!(claims.email_verified);
    assert_eq!(claims.amr, ["pwd"]);
    // The second time comes from the cache, with the same answer.
    assert_eq!(b.verifier.verify(&token).unwrap(), claims);
    assert_eq!(b.shared.cache.len(), 1);

    let service = b.key.sign(
        "JWT",
        &b.claims(Uuid::new_v4(), true, Uuid::new_v4(), &["admin"], b.now()),
    );
    let claims = b.verifier.verify(&service).unwrap();
    assert!(claims.user_id().is_none());
    assert!(claims.allows("anything:at-all"), "`*` grants everything");
}

#[test]
fn the_token_itself_is_checked_signature_issuer_audience_time_size() {
    let b = Bench::new();
    let (user, sid, now) = (Uuid::new_v4(), Uuid::new_v4(), b.now());
    let mut c = b.claims(user, false, sid, &["user"], now);
    let check = |claims: &Value, want: Rejection| {
        let token = b.key.sign("JWT", claims);
        assert_eq!(b.verifier.verify(&token), Err(want), "{claims}");
    };
    c["iss"] = "someone-else".into();
    check(&c, Rejection::Issuer);
    c["iss"] = ISS.into();
    c["aud"] = "another-platform".into();
    check(&c, Rejection::Audience);
    c["aud"] = AUD.into();
    // Leeway: 5 s either side, as the Auth Service.
    c["exp"] = (now - 5).into();
    check(&c, Rejection::Expired);
    c["exp"] = (now - 4).into();
    b.verifier.verify(&b.key.sign("JWT", &c)).unwrap();
    c["exp"] = (now + 900).into();
    c["nbf"] = (now + 6).into();
    check(&c, Rejection::NotYetValid);
    c["nbf"] = (now + 5).into();
    c["iat"] = (now + 5).into();
    b.verifier.verify(&b.key.sign("JWT", &c)).unwrap();

    // Another key under our kid: the signature fails.
    let forger = Key::generate("k1");
    let forged = forger.sign("JWT", &b.claims(user, false, sid, &["admin"], now));
    assert_eq!(b.verifier.verify(&forged), Err(Rejection::Signature));
    // HS256 is refused before any key is looked at.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(&h, &c, &EncodingKey::from_secret(b"k")).unwrap();
    assert_eq!(b.verifier.verify(&hs), Err(Rejection::Algorithm));
    assert_eq!(b.verifier.verify("garbage"), Err(Rejection::Malformed));
    let long = format!("{}{}", b.token(user, sid, &[], now), "A".repeat(9000));
    assert_eq!(b.verifier.verify(&long), Err(Rejection::Malformed));

    // An expired token that was cached is still refused: time is checked every call.
    let token = b.token(user, sid, &["user"], now);
    b.verifier.verify(&token).unwrap();
    b.clock.advance(chrono::Duration::seconds(905));
    assert_eq!(b.verifier.verify(&token), Err(Rejection::Expired));
    assert!(b.shared.metrics.rejected_count(Rejection::Expired) >= 2);
}

#[test]
fn not_ready_until_a_heartbeat_and_stale_after_max_staleness() {
    let b = Bench::new();
    let token = b.token(Uuid::new_v4(), Uuid::new_v4(), &["user"], b.now());
    b.verifier.verify(&token).unwrap();
    b.advance_mono(Duration::from_secs(10));
    b.verifier.verify(&token).unwrap();
    b.advance_mono(Duration::from_millis(1));
    assert_eq!(b.verifier.verify(&token), Err(Rejection::Stale));
    assert!(!b.verifier.is_ready());
    b.heartbeat();
    b.verifier.verify(&token).unwrap();

    // A fresh verifier: not ready before its first heartbeat.
    let fresh = Shared::new(&Config::new("http://x", CLIENT, "s".into(), ISS, AUD)).unwrap();
    fresh.keys.replace(parse_jwks(&jwks(&[&b.key])).unwrap());
    fresh.state.set_roles(Default::default());
    assert_eq!(fresh.verify(&token), Err(Rejection::Stale));
    // Events of the backlog do not make it current; the heartbeat does.
    fresh.handle(&b.user_event(EventType::CredentialChange, Uuid::new_v4(), b.now()));
    assert_eq!(fresh.verify(&token), Err(Rejection::Stale));
    fresh.handle(&SecurityEvent {
        heartbeat: true,
        ..Default::default()
    });
    assert!(fresh.verify(&token).is_ok());
}

#[test]
fn events_on_a_caught_up_stream_keep_it_current() {
    let b = Bench::new();
    let token = b.token(Uuid::new_v4(), Uuid::new_v4(), &["user"], b.now());
    for _ in 0..5 {
        b.advance_mono(Duration::from_secs(4));
        b.apply(&b.user_event(EventType::CredentialChange, Uuid::new_v4(), b.now()));
        b.verifier.verify(&token).unwrap();
    }
    // A new stream must deliver its backlog (a heartbeat) before its events count.
    b.shared.state.stream_started();
    b.advance_mono(Duration::from_secs(8));
    b.apply(&b.user_event(EventType::CredentialChange, Uuid::new_v4(), b.now()));
    b.advance_mono(Duration::from_secs(3));
    assert_eq!(b.verifier.verify(&token), Err(Rejection::Stale));
}

#[test]
fn a_revoked_session_is_refused_others_are_not() {
    let b = Bench::new();
    let (user, sid, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    let token = b.token(user, sid, &["user"], b.now());
    let second = b.token(user, other, &["user"], b.now());
    b.verifier.verify(&token).unwrap();
    b.apply(&b.event(
        EventType::SessionRevoked,
        &user.to_string(),
        SubjectKind::User,
        Some(sid),
        b.now(),
        json!({}),
    ));
    assert_eq!(b.verifier.verify(&token), Err(Rejection::Revoked));
    b.verifier.verify(&second).unwrap();
    // A token of that session issued later is still refused: the session is over.
    b.clock.advance(chrono::Duration::seconds(30));
    assert_eq!(
        b.verifier.verify(&b.token(user, sid, &["user"], b.now())),
        Err(Rejection::Revoked)
    );
    assert_eq!(b.shared.metrics.rejected_count(Rejection::Revoked), 2);
}

#[test]
fn disable_refuses_tokens_issued_up_to_its_second_and_enable_lifts_nothing_older() {
    for kind in [EventType::AccountDisabled, EventType::AccountPurged] {
        let b = Bench::new();
        let (user, t) = (Uuid::new_v4(), b.now());
        let at = |iat: i64| b.token(user, Uuid::new_v4(), &["user"], iat);
        let (before, same, after) = (at(t - 1), at(t), at(t + 1));
        b.apply(&b.user_event(kind, user, t));
        assert_eq!(b.verifier.verify(&before), Err(Rejection::Disabled));
        assert_eq!(
            b.verifier.verify(&same),
            Err(Rejection::Disabled),
            "fail closed within the event's second"
        );
        b.verifier.verify(&after).unwrap();
        b.apply(&b.user_event(EventType::AccountEnabled, user, t + 1));
        assert_eq!(b.verifier.verify(&before), Err(Rejection::Disabled));
        b.verifier.verify(&after).unwrap();
        // Someone else is not affected.
        b.verifier
            .verify(&b.token(Uuid::new_v4(), Uuid::new_v4(), &[], t - 1))
            .unwrap();
    }
}

#[test]
fn service_accounts_are_disabled_by_their_own_kind() {
    let b = Bench::new();
    let (id, t) = (Uuid::new_v4(), b.now());
    let token = b
        .key
        .sign("JWT", &b.claims(id, true, Uuid::new_v4(), &["admin"], t));
    b.apply(&b.event(
        EventType::AccountPurged,
        &id.to_string(),
        SubjectKind::ServiceAccount,
        None,
        t,
        json!({}),
    ));
    assert_eq!(b.verifier.verify(&token), Err(Rejection::Disabled));
    // A user token with the same id (impossible in practice) is another subject.
    b.verifier
        .verify(&b.token(id, Uuid::new_v4(), &[], t))
        .unwrap();
}

#[test]
fn credential_and_claims_changes_ask_older_tokens_to_refresh() {
    for kind in [EventType::CredentialChange, EventType::TokenClaimsChange] {
        let b = Bench::new();
        let (user, t) = (Uuid::new_v4(), b.now());
        let at = |iat: i64| b.token(user, Uuid::new_v4(), &["admin"], iat);
        let (same, after) = (at(t), at(t + 1));
        b.apply(&b.user_event(kind, user, t));
        assert_eq!(b.verifier.verify(&same), Err(Rejection::Refresh));
        assert!(
            Rejection::Refresh
                .to_string()
                .contains("refresh your token")
        );
        b.verifier.verify(&after).unwrap();
        // An older event never lowers the floor.
        b.apply(&b.user_event(kind, user, t - 100));
        assert_eq!(b.verifier.verify(&same), Err(Rejection::Refresh));
    }
}

#[test]
fn role_events_update_the_table_and_refresh_its_holders() {
    let b = Bench::new();
    let (user, t) = (Uuid::new_v4(), b.now());
    let old = b.token(user, Uuid::new_v4(), &["editor"], t);
    let bystander = b.token(user, Uuid::new_v4(), &["user"], t);
    b.apply(&b.event(
        EventType::TokenClaimsChange,
        "editor",
        SubjectKind::Role,
        None,
        t,
        json!({"claims": {"permissions": ["users:read"]}}),
    ));
    assert_eq!(b.verifier.verify(&old), Err(Rejection::Refresh));
    b.verifier.verify(&bystander).unwrap();
    let new = b.token(user, Uuid::new_v4(), &["editor"], t + 1);
    let claims = b.verifier.verify(&new).unwrap();
    assert_eq!(claims.permissions, ["users:read"]);
    assert!(
        !claims.allows("users:write"),
        "the removed permission is gone"
    );

    // A new role, then its deletion.
    b.apply(&b.event(
        EventType::TokenClaimsChange,
        "auditor",
        SubjectKind::Role,
        None,
        t + 1,
        json!({"claims": {"permissions": ["audit:read"]}}),
    ));
    let auditor = b.token(user, Uuid::new_v4(), &["auditor"], t + 2);
    assert!(b.verifier.verify(&auditor).unwrap().allows("audit:read"));
    b.apply(&b.event(
        EventType::TokenClaimsChange,
        "auditor",
        SubjectKind::Role,
        None,
        t + 2,
        json!({"claims": {"permissions": []}}),
    ));
    assert_eq!(b.verifier.verify(&auditor), Err(Rejection::Refresh));
    let later = b.token(user, Uuid::new_v4(), &["auditor"], t + 3);
    assert!(b.verifier.verify(&later).unwrap().permissions.is_empty());
}

#[test]
fn a_role_event_without_signed_permissions_asks_for_the_table() {
    let b = Bench::new();
    let msg = b.event(
        EventType::TokenClaimsChange,
        "editor",
        SubjectKind::Role,
        None,
        b.now(),
        json!({}),
    );
    let Handled::Applied(event) = b.shared.handle(&msg) else {
        panic!("not applied")
    };
    assert!(crate::verifier::needs_roles(&event));
    // The unsigned proto field is never taken: the table is unchanged.
    let later = b.token(Uuid::new_v4(), Uuid::new_v4(), &["editor"], b.now() + 1);
    assert!(b.verifier.verify(&later).unwrap().allows("users:write"));
}

#[test]
fn a_resync_refuses_every_older_token_and_is_stale_until_caught_up() {
    let b = Bench::new();
    let t = b.now();
    let old = b.token(Uuid::new_v4(), Uuid::new_v4(), &["user"], t);
    b.verifier.verify(&old).unwrap();
    b.shared.state.resync(t);
    assert_eq!(b.verifier.verify(&old), Err(Rejection::Stale));
    b.heartbeat();
    assert_eq!(b.verifier.verify(&old), Err(Rejection::Refresh));
    b.verifier
        .verify(&b.token(Uuid::new_v4(), Uuid::new_v4(), &["user"], t + 1))
        .unwrap();
}

#[test]
fn entries_are_forgotten_after_retention() {
    let b = Bench::new();
    let (user, sid, t) = (Uuid::new_v4(), Uuid::new_v4(), b.now());
    b.apply(&b.event(
        EventType::SessionRevoked,
        &user.to_string(),
        SubjectKind::User,
        Some(sid),
        t,
        json!({}),
    ));
    b.apply(&b.user_event(EventType::AccountDisabled, Uuid::new_v4(), t));
    b.shared.state.resync(t);
    b.heartbeat();
    assert_eq!(b.shared.state.prune(t, crate::DEFAULT_RETENTION), 2);
    b.clock
        .advance(chrono::Duration::minutes(16) + chrono::Duration::seconds(1));
    b.shared.housekeeping();
    assert_eq!(b.verifier.live_revocations(), 0);
    assert_eq!(b.shared.metrics.revocations.get(), 0);
    // The resync floor went with them.
    b.verifier
        .verify(&b.token(user, Uuid::new_v4(), &[], b.now()))
        .unwrap();
}

#[test]
fn an_unknown_kid_is_refused_and_asks_for_one_refetch() {
    use futures::FutureExt;
    let b = Bench::new();
    let other = Key::generate("k2");
    let token = other.sign(
        "JWT",
        &b.claims(Uuid::new_v4(), false, Uuid::new_v4(), &["user"], b.now()),
    );
    assert_eq!(b.verifier.verify(&token), Err(Rejection::UnknownKey));
    assert!(b.shared.keys.refetch.notified().now_or_never().is_some());
    assert_eq!(b.verifier.verify(&token), Err(Rejection::UnknownKey));
    assert!(
        b.shared.keys.refetch.notified().now_or_never().is_none(),
        "a second unknown kid within the interval asks nothing"
    );
    // Rotation: the new key is published beside the old one, both verify.
    let old = b.token(Uuid::new_v4(), Uuid::new_v4(), &["user"], b.now());
    b.verifier.verify(&old).unwrap();
    b.shared
        .keys
        .replace(parse_jwks(&jwks(&[&b.key, &other])).unwrap());
    b.verifier.verify(&token).unwrap();
    b.verifier.verify(&old).unwrap();
    // The old key leaves the JWKS: its tokens go, even cached ones.
    b.shared.keys.replace(parse_jwks(&jwks(&[&other])).unwrap());
    assert_eq!(b.verifier.verify(&old), Err(Rejection::UnknownKey));
    // An empty or foreign JWKS is never taken.
    assert!(parse_jwks(r#"{"keys":[]}"#).is_err());
    assert!(parse_jwks(r#"{"keys":[{"kty":"oct","k":"AA","kid":"x"}]}"#).is_err());
}

#[test]
fn sets_that_do_not_verify_are_ignored_and_counted() {
    let b = Bench::new();
    let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
    let token = b.token(user, sid, &["user"], b.now());
    let genuine = b.event(
        EventType::SessionRevoked,
        &user.to_string(),
        SubjectKind::User,
        Some(sid),
        b.now(),
        json!({}),
    );
    let resign = |key: &Key, typ: &str, edit: &dyn Fn(&mut Value)| {
        let mut c = b.set_claims(
            EventType::SessionRevoked,
            json!({"format": "complex",
                "user": {"format": "opaque", "id": user.to_string()},
                "session": {"format": "opaque", "id": sid.to_string()}}),
            json!({"event_timestamp": b.now()}),
        );
        edit(&mut c);
        SecurityEvent {
            set: key.sign(typ, &c),
            ..genuine.clone()
        }
    };
    let forger = Key::generate("k1");
    let cases: Vec<(SecurityEvent, SetError)> = vec![
        (
            resign(&forger, "secevent+jwt", &|_| {}),
            SetError::Signature,
        ),
        (
            resign(&b.key, "secevent+jwt", &|c| {
                c["aud"] = "sa-someone-else".into()
            }),
            SetError::Audience,
        ),
        (
            resign(&b.key, "secevent+jwt", &|c| c["iss"] = "evil".into()),
            SetError::Issuer,
        ),
        (resign(&b.key, "JWT", &|_| {}), SetError::Type),
        (
            resign(&b.key, "secevent+jwt", &|c| {
                c["sub_id"] = json!({"format": "opaque", "id": Uuid::new_v4().to_string()});
            }),
            SetError::Mismatch("its sub_id does not name the subject"),
        ),
        (
            resign(&b.key, "secevent+jwt", &|c| {
                c["events"] = json!({EventType::CredentialChange.uri(): {}});
            }),
            SetError::Mismatch("its events do not name the message's type"),
        ),
        (
            SecurityEvent {
                set: String::new(),
                ..genuine.clone()
            },
            SetError::Malformed,
        ),
        (
            SecurityEvent {
                event_type: "https://example.com/unknown".into(),
                ..genuine.clone()
            },
            SetError::UnknownType,
        ),
        (
            resign(&Key::generate("k9"), "secevent+jwt", &|_| {}),
            SetError::UnknownKey,
        ),
    ];
    for (msg, want) in cases {
        match b.shared.handle(&msg) {
            Handled::Ignored(e) => {
                assert_eq!(e, want);
                b.shared.ignore(&msg, &e);
            }
            other => panic!("{want:?}: {other:?}"),
        }
        b.verifier.verify(&token).unwrap();
    }
    assert_eq!(b.shared.metrics.ignored_count("signature"), 1);
    assert_eq!(b.shared.metrics.ignored_count("audience"), 1);
    // A session id in the message the SET does not name is not revoked either.
    let other = SecurityEvent {
        session_id: Uuid::new_v4().to_string(),
        ..genuine.clone()
    };
    assert!(matches!(
        b.shared.handle(&other),
        Handled::Ignored(SetError::Mismatch(_))
    ));
    b.apply(&genuine);
    assert_eq!(b.verifier.verify(&token), Err(Rejection::Revoked));
}

/// The layer in an axum router: claims in, refusals out with what to do.
#[tokio::test]
async fn the_layer_puts_claims_in_extensions_and_refuses_with_a_reason() {
    use axum::body::Body;
    use http::{Request, StatusCode, header};
    use tower::ServiceExt;
    let b = Bench::new();
    let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
    let token = b.token(user, sid, &["editor"], b.now());
    let app = axum::Router::new()
        .route(
            "/me",
            axum::routing::get(|claims: axum::Extension<crate::Claims>| async move {
                format!("{} {}", claims.subject, claims.allows("users:write"))
            }),
        )
        .layer(b.verifier.layer());
    let call = |auth: Option<String>, grpc: bool| {
        let app = app.clone();
        async move {
            let mut req = Request::get("/me");
            if let Some(a) = auth {
                req = req.header(header::AUTHORIZATION, a);
            }
            if grpc {
                req = req.header(header::CONTENT_TYPE, "application/grpc");
            }
            app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap()
        }
    };
    let ok = call(Some(format!("Bearer {token}")), false).await;
    assert_eq!(ok.status(), StatusCode::OK);
    let body = axum::body::to_bytes(ok.into_body(), 1024).await.unwrap();
    assert_eq!(body, format!("{user} true").as_bytes());

    let missing = call(None, false).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let too_long = call(Some(format!("Bearer {}", "a".repeat(9000))), false).await;
    assert_eq!(too_long.status(), StatusCode::UNAUTHORIZED);

    b.apply(&b.event(
        EventType::SessionRevoked,
        &user.to_string(),
        SubjectKind::User,
        Some(sid),
        b.now(),
        json!({}),
    ));
    let revoked = call(Some(format!("Bearer {token}")), false).await;
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
    let challenge = revoked.headers()[header::WWW_AUTHENTICATE]
        .to_str()
        .unwrap();
    assert!(
        challenge.contains("invalid_token") && challenge.contains("log in again"),
        "{challenge}"
    );
    let grpc = call(Some(format!("Bearer {token}")), true).await;
    assert_eq!(
        grpc.status(),
        StatusCode::OK,
        "gRPC errors travel in headers"
    );
    assert_eq!(grpc.headers()["grpc-status"], "16");
    assert!(
        grpc.headers()["grpc-message"]
            .to_str()
            .unwrap()
            .contains("revoked")
    );

    b.advance_mono(Duration::from_secs(11));
    let other = b.token(Uuid::new_v4(), Uuid::new_v4(), &[], b.now());
    let stale = call(Some(format!("Bearer {other}")), false).await;
    assert_eq!(stale.status(), StatusCode::SERVICE_UNAVAILABLE);
    let stale = call(Some(format!("Bearer {other}")), true).await;
    assert_eq!(stale.headers()["grpc-status"], "14");
}

#[test]
fn the_interceptor_puts_claims_in_extensions() {
    use tonic::service::Interceptor;
    let b = Bench::new();
    let token = b.token(Uuid::new_v4(), Uuid::new_v4(), &["user"], b.now());
    let mut interceptor = b.verifier.interceptor();
    let mut req = tonic::Request::new(());
    req.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let req = interceptor.call(req).unwrap();
    assert!(req.extensions().get::<crate::Claims>().is_some());
    let refused = interceptor.call(tonic::Request::new(())).unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let mut req = tonic::Request::new(());
    req.metadata_mut()
        .insert("authorization", "Bearer garbage".parse().unwrap());
    let refused = interceptor.call(req).unwrap_err();
    assert_eq!(refused.message(), "access token is malformed");
}

/// The same layer in a tonic server: a refused call never reaches the service.
#[tokio::test]
async fn the_layer_guards_a_tonic_server() {
    use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
    use identity_proto::auth::v1::auth_service_server::{AuthService, AuthServiceServer};
    struct Unimplemented;
    impl AuthService for Unimplemented {}
    let b = Bench::new();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tonic::transport::Server::builder()
        .layer(b.verifier.layer())
        .add_service(AuthServiceServer::new(Unimplemented))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    let test = async {
        let mut client = AuthServiceClient::connect(format!("http://{addr}"))
            .await
            .unwrap();
        let call = |token: Option<String>| {
            let mut client = client.clone();
            async move {
                let mut req = tonic::Request::new(identity_proto::auth::v1::GetJwksRequest {});
                if let Some(t) = token {
                    req.metadata_mut()
                        .insert("authorization", format!("Bearer {t}").parse().unwrap());
                }
                client.get_jwks(req).await.unwrap_err()
            }
        };
        let token = b.token(Uuid::new_v4(), Uuid::new_v4(), &["user"], b.now());
        assert_eq!(call(Some(token)).await.code(), tonic::Code::Unimplemented);
        let refused = call(None).await;
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert!(
            refused.message().contains("authorization"),
            "{}",
            refused.message()
        );
        let _ = &mut client;
    };
    tokio::select! {
        stopped = server => panic!("server stopped: {stopped:?}"),
        () = test => {}
    }
}

proptest::proptest! {
    /// Whatever a caller sends, and whatever is flipped in a genuine token or
    /// SET: never a panic, never a pass for a changed token.
    #[test]
    fn forged_input_never_panics_nor_passes(
        junk in "(?s).{0,300}",
        at in 0usize..2000,
        byte in proptest::num::u8::ANY,
    ) {
        let b = Bench::new();
        let _ = b.verifier.verify(&junk);
        let token = b.token(Uuid::new_v4(), Uuid::new_v4(), &["admin"], b.now());
        let mut bytes = token.clone().into_bytes();
        let i = at % bytes.len();
        if bytes[i] != byte {
            bytes[i] = byte;
            if let Ok(changed) = String::from_utf8(bytes) {
                // base64url decoders may ignore a final sub-byte change; the
                // signature input (header.payload) is what must be exact.
                if changed.rsplit_once('.').map(|(signed, _)| signed) != token.rsplit_once('.').map(|(signed, _)| signed) {
                    proptest::prop_assert!(b.verifier.verify(&changed).is_err());
                }
            }
        }
        let msg = b.user_event(EventType::AccountDisabled, Uuid::new_v4(), b.now());
        let forged = SecurityEvent { set: junk.clone(), ..msg };
        proptest::prop_assert!(matches!(b.shared.handle(&forged), Handled::Ignored(_)));
    }
}
