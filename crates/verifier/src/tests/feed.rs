//! What the feed says: readiness and staleness, each event type's effect
//! with its `iat` boundary, resynchronisation, forgetting, forged SETs.

use super::*;

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
