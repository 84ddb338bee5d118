//! The security-event feed (Signals): every cause produces its event once, in
//! the same transaction; SETs verify with the JWKS; a subscriber resumes from
//! its cursor on any replica without loss or duplicates; an old cursor asks
//! for a resync; only service accounts with `events:subscribe` subscribe.

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_code, bearer, both_backends, settings, spawn_replica,
    spawn_with, unique_email,
};
use identity_proto::auth::v1 as pb;
use platform::clock::ManualClock;
use std::collections::HashMap;
use std::time::Duration;
use tonic::{Code, Streaming};

both_backends!(
    every_cause_produces_its_event_once_as_a_verifiable_set,
    a_subscriber_resumes_on_any_replica_without_loss_or_duplicates,
    concurrent_revocations_reach_every_subscriber_exactly_once_in_order,
    old_and_malformed_cursors_and_unknown_types_are_refused,
    only_service_accounts_holding_the_permission_subscribe,
    a_filtered_subscription_gets_its_types_and_heartbeats,
    a_stream_ends_when_its_account_is_deleted,
);

const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";

async fn spawn(backend: Backend) -> TestApp {
    spawn_feed(backend, Duration::from_secs(25)).await
}

/// An Auth Service whose feed beats and polls fast, its SSF long poll bounded
/// by `long_poll`.
pub(crate) async fn spawn_feed(backend: Backend, long_poll: Duration) -> TestApp {
    let db = backend.fresh_database().await;
    let mut s = settings(&db.url);
    s.events_heartbeat = Duration::from_millis(200);
    s.events_poll = Duration::from_millis(20);
    s.events_long_poll = long_poll;
    let mut app = spawn_with(s, ManualClock::default(), true).await;
    app._db = Some(db);
    app
}

/// A subscriber's account: (client id, token).
async fn subscriber(app: &TestApp) -> (String, String) {
    let (client_id, _, token) = app.service_account(&["identity-service"]).await;
    (client_id, token)
}

async fn subscribe(
    app: &TestApp,
    token: &str,
    cursor: &str,
    types: &[&str],
) -> Result<Streaming<pb::SubscribeSecurityEventsResponse>, tonic::Status> {
    app.grpc
        .clone()
        .subscribe_security_events(bearer(
            pb::SubscribeSecurityEventsRequest {
                cursor: cursor.into(),
                event_types: types.iter().map(|t| (*t).to_owned()).collect(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Events until `done` holds of them and a heartbeat came after (so nothing
/// more is on its way); the last cursor seen.
async fn read_until(
    stream: &mut Streaming<pb::SubscribeSecurityEventsResponse>,
    done: impl Fn(&[pb::SubscribeSecurityEventsResponse]) -> bool,
) -> (Vec<pb::SubscribeSecurityEventsResponse>, String) {
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let next = tokio::time::timeout_at(deadline, stream.message())
            .await
            .unwrap_or_else(|_| panic!("feed stalled after {} events: {events:#?}", events.len()))
            .expect("stream error")
            .expect("stream ended");
        if next.heartbeat {
            if done(&events) {
                return (events, next.cursor);
            }
        } else {
            events.push(next);
        }
    }
}

/// The backlog up to the first heartbeat.
async fn caught_up(
    stream: &mut Streaming<pb::SubscribeSecurityEventsResponse>,
) -> (Vec<pb::SubscribeSecurityEventsResponse>, String) {
    read_until(stream, |_| true).await
}

fn kind(e: &pb::SubscribeSecurityEventsResponse) -> String {
    e.event_type
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// The id of the service account with `client_id`.
async fn account_id(app: &TestApp, admin: &str, client_id: &str) -> String {
    let accounts = app
        .grpc
        .clone()
        .list_service_accounts(bearer(pb::ListServiceAccountsRequest::default(), admin))
        .await
        .unwrap()
        .into_inner()
        .accounts;
    let account = accounts.iter().find(|a| a.client_id == client_id);
    account.unwrap().id.clone()
}

async fn role(app: &TestApp, admin: &str, name: &str, permissions: &[&str]) {
    app.grpc
        .clone()
        .create_role(bearer(
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: name.into(),
                    description: String::new(),
                    permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
                    ..Default::default()
                }),
            },
            admin,
        ))
        .await
        .unwrap();
}

async fn every_cause_produces_its_event_once_as_a_verifiable_set(backend: Backend) {
    let app = spawn(backend).await;
    let admin = app.admin_token().await;
    let (client_id, token) = subscriber(&app).await;
    let mut stream = subscribe(&app, &token, "", &[]).await.unwrap();
    caught_up(&mut stream).await;
    let mut grpc = app.grpc.clone();

    // A user with three sessions: one logs out, one is revoked, then the
    // password change ends the third but the current one.
    let email = unique_email();
    let user = app.register(&email, PASSWORD).await.unwrap().user_id;
    let s1 = app.login(&email, PASSWORD).await.unwrap();
    let s2 = app.login(&email, PASSWORD).await.unwrap();
    let s3 = app.login(&email, PASSWORD).await.unwrap();
    let s4 = app.login(&email, PASSWORD).await.unwrap();
    app.logout(&s1.refresh_token).await.unwrap();
    grpc.revoke_session(bearer(
        pb::RevokeSessionRequest {
            session_id: s2.session_id.clone(),
        },
        &s4.access_token,
    ))
    .await
    .unwrap();
    grpc.change_password(bearer(
        pb::ChangePasswordRequest {
            old_password: PASSWORD.into(),
            new_password: "another long passphrase".into(),
        },
        &s4.access_token,
    ))
    .await
    .unwrap();
    // Refresh-token reuse ends the session it belongs to.
    let fresh = app.refresh(&s4.refresh_token).await.unwrap();
    assert_code(app.refresh(&s4.refresh_token).await, Code::Unauthenticated);
    // Roles: a role is created, assigned, changed, deleted.
    role(&app, &admin, "signals-editor", &["docs:write"]).await;
    grpc.assign_role(bearer(
        pb::AssignRoleRequest {
            subject_id: user.clone(),
            role: "signals-editor".into(),
        },
        &admin,
    ))
    .await
    .unwrap();
    grpc.delete_role(bearer(
        pb::DeleteRoleRequest {
            name: "signals-editor".into(),
        },
        &admin,
    ))
    .await
    .unwrap();
    // The account: disabled, enabled, deleted.
    let disable = |purged| pb::DisableUserRequest {
        user_id: user.clone(),
        reason: String::new(),
        purged,
    };
    grpc.disable_user(bearer(disable(false), &admin))
        .await
        .unwrap();
    // Disabling again says nothing new.
    grpc.disable_user(bearer(disable(false), &admin))
        .await
        .unwrap();
    grpc.enable_user(bearer(
        pb::EnableUserRequest {
            user_id: user.clone(),
        },
        &admin,
    ))
    .await
    .unwrap();
    grpc.disable_user(bearer(disable(true), &admin))
        .await
        .unwrap();
    assert_code(
        grpc.enable_user(bearer(
            pb::EnableUserRequest {
                user_id: user.clone(),
            },
            &admin,
        ))
        .await,
        Code::FailedPrecondition,
    );
    drop(fresh);

    let expected: Vec<(&str, &str)> = vec![
        ("session-revoked", "logout"),
        ("session-revoked", "revoked"),
        ("credential-change", ""),
        ("session-revoked", "password_changed"),
        ("session-revoked", "refresh_token_reuse"),
        ("token-claims-change", "role"),
        ("token-claims-change", "user"),
        ("token-claims-change", "role"),
        ("account-disabled", ""),
        ("account-enabled", ""),
        ("account-purged", ""),
    ];
    let (events, _) = read_until(&mut stream, |e| e.len() >= expected.len()).await;
    let got: Vec<String> = events.iter().map(kind).collect();
    let want: Vec<&str> = expected.iter().map(|(k, _)| *k).collect();
    assert_eq!(got, want, "{events:#?}");

    // Session events name the user and the session, in the order they ended.
    let sessions: Vec<&str> = events
        .iter()
        .filter(|e| kind(e) == "session-revoked")
        .map(|e| e.session_id.as_str())
        .collect();
    assert_eq!(
        sessions,
        [
            &s1.session_id,
            &s2.session_id,
            &s3.session_id,
            &s4.session_id
        ]
    );
    let claims: Vec<&pb::SubscribeSecurityEventsResponse> = events
        .iter()
        .filter(|e| kind(e) == "token-claims-change")
        .collect();
    assert_eq!(claims[0].subject_id, "signals-editor");
    assert_eq!(claims[0].subject_kind, pb::SubjectKind::Role as i32);
    assert_eq!(claims[0].permissions, ["docs:write"]);
    assert_eq!(claims[1].subject_id, user);
    assert!(
        claims[1].roles.contains(&"signals-editor".to_owned()),
        "{:?}",
        claims[1]
    );
    assert!(claims[2].permissions.is_empty());

    // Every SET verifies with the published JWKS and says the same.
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(app.jwks().await).unwrap();
    let mut seen = HashMap::new();
    for e in &events {
        let header = jsonwebtoken::decode_header(&e.set).unwrap();
        assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
        assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
        let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        validation.set_audience(&[&client_id]);
        validation.set_required_spec_claims(&["iss", "aud"]);
        validation.validate_exp = false;
        let set = jsonwebtoken::decode::<serde_json::Value>(&e.set, &key, &validation)
            .unwrap()
            .claims;
        let body = &set["events"][&e.event_type];
        assert!(body.is_object(), "{set}");
        assert_eq!(body["event_timestamp"], e.event_time.unwrap().seconds);
        let sub_id = &set["sub_id"];
        if e.session_id.is_empty() {
            assert!(
                sub_id["id"] == e.subject_id.as_str()
                    || sub_id["group"]["id"] == e.subject_id.as_str(),
                "{set}"
            );
        } else {
            assert_eq!(sub_id["format"], "complex");
            assert_eq!(sub_id["user"]["id"], e.subject_id.as_str());
            assert_eq!(sub_id["session"]["id"], e.session_id.as_str());
        }
        assert!(
            seen.insert(set["jti"].as_str().unwrap().to_owned(), ())
                .is_none()
        );
        assert!(e.event_type.starts_with(CAEP) || e.event_type.starts_with(RISC));
    }
    let change = events
        .iter()
        .find(|e| kind(e) == "credential-change")
        .unwrap();
    let set = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&change.set)
        .unwrap()
        .claims;
    let body = &set["events"][&change.event_type];
    assert_eq!(body["credential_type"], "password");
    assert_eq!(body["change_type"], "update");
}

/// Logs `n` sessions in and out; returns their ids in logout order.
pub(crate) async fn logouts(app: &TestApp, n: usize) -> Vec<String> {
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        let s = app.login(&email, PASSWORD).await.unwrap();
        app.logout(&s.refresh_token).await.unwrap();
        ids.push(s.session_id);
    }
    ids
}

async fn a_subscriber_resumes_on_any_replica_without_loss_or_duplicates(backend: Backend) {
    let app = spawn(backend).await;
    let (_, token) = subscriber(&app).await;
    let mut stream = subscribe(&app, &token, "", &[]).await.unwrap();
    caught_up(&mut stream).await;
    let first = logouts(&app, 6).await;
    // Read three, then hang up.
    let mut cursor = String::new();
    let mut got = Vec::new();
    while got.len() < 3 {
        let m = stream.message().await.unwrap().unwrap();
        cursor = m.cursor.clone();
        if !m.heartbeat {
            got.push(m.session_id);
        }
    }
    drop(stream);
    let second = logouts(&app, 4).await;
    // Resume on another replica of the same database.
    let other = spawn_replica(&app, |s| {
        s.events_heartbeat = Duration::from_millis(200);
        s.events_poll = Duration::from_millis(20);
    })
    .await;
    let mut stream = subscribe(&other, &token, &cursor, &[]).await.unwrap();
    let (rest, last) = read_until(&mut stream, |e| e.len() >= 7).await;
    got.extend(rest.into_iter().map(|e| e.session_id));
    let all: Vec<String> = first.into_iter().chain(second).collect();
    assert_eq!(got, all);
    // From the last cursor: nothing again, only heartbeats.
    let mut stream = subscribe(&app, &token, &last, &[]).await.unwrap();
    let (again, _) = caught_up(&mut stream).await;
    assert!(again.is_empty(), "{again:#?}");
}

async fn concurrent_revocations_reach_every_subscriber_exactly_once_in_order(backend: Backend) {
    let app = spawn(backend).await;
    let replica = spawn_replica(&app, |s| {
        s.events_heartbeat = Duration::from_millis(200);
        s.events_poll = Duration::from_millis(20);
    })
    .await;
    let (_, token) = subscriber(&app).await;
    let mut streams = Vec::new();
    for target in [&app, &replica, &app] {
        let mut s = subscribe(target, &token, "", &[]).await.unwrap();
        caught_up(&mut s).await;
        streams.push(s);
    }
    // 40 sessions logged out at once, half through each replica.
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let mut sessions = Vec::new();
    for _ in 0..40 {
        sessions.push(app.login(&email, PASSWORD).await.unwrap());
    }
    let ends = sessions.iter().enumerate().map(|(i, s)| {
        let target = if i % 2 == 0 { &app } else { &replica };
        target.logout(&s.refresh_token)
    });
    for r in futures::future::join_all(ends).await {
        r.unwrap();
    }
    let mut want: Vec<String> = sessions.iter().map(|s| s.session_id.clone()).collect();
    want.sort();
    let mut orders = Vec::new();
    for s in &mut streams {
        let (events, _) = read_until(s, |e| e.len() >= 40).await;
        let order: Vec<String> = events.iter().map(|e| e.session_id.clone()).collect();
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, want, "each ended session exactly once");
        orders.push(order);
    }
    // One order, the same for everyone, whichever replica serves them.
    assert!(orders.windows(2).all(|w| w[0] == w[1]));
}

async fn old_and_malformed_cursors_and_unknown_types_are_refused(backend: Backend) {
    let app = spawn(backend).await;
    let (_, token) = subscriber(&app).await;
    logouts(&app, 1).await;
    let mut stream = subscribe(&app, &token, "", &[]).await.unwrap();
    let (_, cursor) = caught_up(&mut stream).await;
    drop(stream);
    for bad in ["nonsense", "djEuMS4y", &"x".repeat(500)] {
        assert_code(
            subscribe(&app, &token, bad, &[]).await,
            Code::InvalidArgument,
        );
    }
    assert_code(
        subscribe(&app, &token, "", &["https://example.com/unknown"]).await,
        Code::InvalidArgument,
    );
    // A cursor ahead of anything this database wrote (a restore, a forgery)
    // would skip every event to come.
    use base64::Engine;
    let ahead = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode("v1.999999999.7.0");
    let err = subscribe(&app, &token, &ahead, &[]).await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    // An event after the cursor; until pruning deletes it, an old cursor
    // still resumes.
    logouts(&app, 1).await;
    app.clock.advance(chrono::Duration::hours(3));
    let (_, token) = subscriber(&app).await;
    drop(subscribe(&app, &token, &cursor, &[]).await.unwrap());
    // The default retention is an hour (plus an hour's margin): pruned now.
    let pruned = app.handle.pruner.prune_once().await.unwrap();
    assert!(pruned.security_events >= 1, "{pruned:?}");
    let err = subscribe(&app, &token, &cursor, &[]).await.unwrap_err();
    assert_eq!(err.code(), Code::OutOfRange, "{err:?}");
    assert!(err.message().contains("resynchronise"), "{err:?}");
    // Starting afresh works.
    let mut stream = subscribe(&app, &token, "", &[]).await.unwrap();
    caught_up(&mut stream).await;
}

async fn only_service_accounts_holding_the_permission_subscribe(backend: Backend) {
    let app = spawn(backend).await;
    let admin = app.admin_token().await;
    assert_code(
        subscribe(&app, &admin, "", &[]).await,
        Code::PermissionDenied,
    );
    let (_, _, plain) = app.service_account(&[]).await;
    assert_code(
        subscribe(&app, &plain, "", &[]).await,
        Code::PermissionDenied,
    );
    assert_code(
        subscribe(&app, "not-a-token", "", &[]).await,
        Code::Unauthenticated,
    );
    let status = app
        .grpc
        .clone()
        .subscribe_security_events(pb::SubscribeSecurityEventsRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
}

async fn a_filtered_subscription_gets_its_types_and_heartbeats(backend: Backend) {
    let app = spawn(backend).await;
    let admin = app.admin_token().await;
    let (_, token) = subscriber(&app).await;
    let purged = format!("{RISC}account-purged");
    let mut stream = subscribe(&app, &token, "", &[&purged]).await.unwrap();
    let (_, before) = caught_up(&mut stream).await;
    logouts(&app, 3).await;
    let (doomed, _, _) = app.service_account(&[]).await;
    let victim = account_id(&app, &admin, &doomed).await;
    app.grpc
        .clone()
        .delete_service_account(bearer(
            pb::DeleteServiceAccountRequest { id: victim.clone() },
            &admin,
        ))
        .await
        .unwrap();
    let (events, after) = read_until(&mut stream, |e| !e.is_empty()).await;
    assert_eq!(events.len(), 1, "{events:#?}");
    assert_eq!(events[0].event_type, purged);
    assert_eq!(events[0].subject_id, victim);
    assert_eq!(
        events[0].subject_kind,
        pb::SubjectKind::ServiceAccount as i32
    );
    // Heartbeats carried the cursor past the events filtered out.
    assert_ne!(before, after);
}

async fn a_stream_ends_when_its_account_is_deleted(backend: Backend) {
    let app = spawn(backend).await;
    let admin = app.admin_token().await;
    let (client_id, token) = subscriber(&app).await;
    let mut stream = subscribe(&app, &token, "", &[]).await.unwrap();
    caught_up(&mut stream).await;
    let id = account_id(&app, &admin, &client_id).await;
    app.grpc
        .clone()
        .delete_service_account(bearer(pb::DeleteServiceAccountRequest { id }, &admin))
        .await
        .unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.message().await {
                Ok(Some(_)) => continue,
                Ok(None) => return None,
                Err(status) => return Some(status.code()),
            }
        }
    })
    .await
    .expect("the stream goes on after its account was deleted");
    assert_eq!(ended, Some(Code::Unauthenticated));
}
