//! The Shared Signals HTTP side: the SSF 1.0 transmitter metadata, and RFC
//! 8936 poll delivery of the feed's SETs (verifiable with the JWKS, aud = the
//! client id), delivered again until acknowledged and never after, with
//! `moreAvailable`, long polls that end when an event happens, refusals in
//! RFC 8936's error form, the resync rule, and concurrent polls of one
//! subscriber that neither lose events nor advance twice.

use crate::helpers::{Backend, TestApp, bearer, both_backends, settings, spawn_with};
use identity_proto::auth::v1 as pb;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;

both_backends!(
    the_metadata_describes_the_poll_transmitter,
    polled_sets_verify_and_come_again_until_acknowledged,
    more_available_when_max_events_cuts_the_backlog,
    a_long_poll_answers_when_an_event_happens,
    bad_credentials_permissions_and_input_are_refused,
    an_overtaken_subscriber_is_told_to_resync,
    concurrent_polls_neither_lose_events_nor_advance_twice,
);

const SESSION_REVOKED: &str = "https://schemas.openid.net/secevent/caep/event-type/session-revoked";

async fn spawn(backend: Backend, long_poll: Duration) -> TestApp {
    crate::signals::spawn_feed(backend, long_poll).await
}

/// A poll subscriber: (client id, secret).
async fn subscriber(app: &TestApp) -> (String, String) {
    let (client_id, secret, _) = app.service_account(&["identity-service"]).await;
    (client_id, secret)
}

/// POSTs `body` to the poll endpoint with Basic credentials.
async fn post(app: &TestApp, creds: Option<(&str, &str)>, body: String) -> reqwest::Response {
    let mut r = reqwest::Client::new()
        .post(format!("{}/ssf/poll", app.http))
        .header("content-type", "application/json")
        .body(body);
    if let Some((id, secret)) = creds {
        r = r.basic_auth(id, Some(secret));
    }
    r.send().await.unwrap()
}

/// A successful poll: its SETs by jti, in the order sent, and moreAvailable.
async fn poll(app: &TestApp, sub: &(String, String), body: Value) -> (Vec<(String, String)>, bool) {
    let r = post(app, Some((&sub.0, &sub.1)), body.to_string()).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let body: Value = r.json().await.unwrap();
    let sets = body["sets"].as_object().unwrap();
    let mut sets: Vec<(String, String)> = sets
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
        .collect();
    // JSON objects have no order: the jtis are time-ordered UUIDs.
    sets.sort();
    (sets, body["moreAvailable"].as_bool().unwrap())
}

fn jtis(sets: &[(String, String)]) -> Vec<String> {
    sets.iter().map(|(j, _)| j.clone()).collect()
}

/// Logs `n` sessions in and out; returns their ids in logout order, once
/// the feed serves their events. On PostgreSQL an event is served once every
/// older transaction of the cluster has ended (the feed's commit-order rule),
/// which the other tests' transactions may delay a little.
async fn logouts(app: &TestApp, n: usize) -> Vec<String> {
    let ids = crate::signals::logouts(app, n).await;
    // A probe subscriber starting over each time sees everything served.
    let probe = subscriber(app).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let body = json!({"returnImmediately": true, "maxEvents": 1000, "resync": true});
        let (sets, _) = poll(app, &probe, body).await;
        let served: HashSet<String> = sets
            .iter()
            .filter_map(|(_, set)| {
                let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(set)
                    .unwrap()
                    .claims;
                claims["sub_id"]["session"]["id"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect();
        if ids.iter().all(|id| served.contains(id)) {
            return ids;
        }
        assert!(tokio::time::Instant::now() < deadline, "events not served");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Drains what is waiting (registration, accounts) so a test starts caught up.
async fn catch_up(app: &TestApp, sub: &(String, String)) {
    let mut ack: Vec<String> = Vec::new();
    loop {
        let (sets, _) = poll(
            app,
            sub,
            json!({"returnImmediately": true, "ack": ack, "maxEvents": 1000}),
        )
        .await;
        if sets.is_empty() {
            return;
        }
        ack = jtis(&sets);
    }
}

async fn the_metadata_describes_the_poll_transmitter(backend: Backend) {
    let app = spawn(backend, Duration::from_secs(25)).await;
    let r = reqwest::get(format!("{}/.well-known/ssf-configuration", app.http))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let m: Value = r.json().await.unwrap();
    assert_eq!(m["spec_version"], "1_0");
    assert_eq!(m["issuer"], "identity-auth");
    assert_eq!(m["jwks_uri"], format!("{}/.well-known/jwks.json", app.http));
    assert_eq!(
        m["delivery_methods_supported"],
        json!(["urn:ietf:rfc:8936"])
    );
    assert_eq!(m["delivery"]["method"], "urn:ietf:rfc:8936");
    assert_eq!(
        m["delivery"]["endpoint_url"],
        format!("{}/ssf/poll", app.http)
    );
    assert_eq!(
        m["authorization_schemes"],
        json!([{"spec_urn": "urn:ietf:rfc:6749"}])
    );
    assert_eq!(m["default_subjects"], "ALL");
    // Nothing this transmitter does not serve.
    for absent in [
        "configuration_endpoint",
        "status_endpoint",
        "add_subject_endpoint",
        "remove_subject_endpoint",
        "verification_endpoint",
    ] {
        assert!(m.get(absent).is_none(), "{absent}: {m}");
    }
    // The JWKS it names is the one that verifies.
    let jwks = reqwest::get(m["jwks_uri"].as_str().unwrap()).await.unwrap();
    assert_eq!(jwks.status(), 200);
}

/// Verifies a SET with the JWKS, as any JWT library would; its claims.
fn verify(jwks: &jsonwebtoken::jwk::JwkSet, set: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(set).unwrap();
    assert_eq!(header.typ.as_deref(), Some("secevent+jwt"));
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let jwk = jwks.find(header.kid.as_deref().unwrap()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&["identity-auth"]);
    validation.set_required_spec_claims(&["iss", "aud"]);
    validation.validate_exp = false;
    jsonwebtoken::decode::<Value>(set, &key, &validation)
        .unwrap()
        .claims
}

async fn polled_sets_verify_and_come_again_until_acknowledged(backend: Backend) {
    let app = spawn(backend, Duration::from_secs(25)).await;
    let sub = subscriber(&app).await;
    catch_up(&app, &sub).await;
    let sessions = logouts(&app, 3).await;
    let immediately = json!({"returnImmediately": true});
    let (sets, more) = poll(&app, &sub, immediately.clone()).await;
    assert_eq!(sets.len(), 3, "{sets:?}");
    assert!(!more);

    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(app.jwks().await).unwrap();
    let mut seen = Vec::new();
    for (jti, set) in &sets {
        let claims = verify(&jwks, set, &sub.0);
        assert_eq!(claims["jti"], jti.as_str());
        assert_eq!(claims["aud"], sub.0.as_str());
        assert!(claims["events"][SESSION_REVOKED].is_object(), "{claims}");
        assert_eq!(claims["sub_id"]["format"], "complex");
        seen.push(
            claims["sub_id"]["session"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(seen, sessions);

    // The gRPC feed carries the same events under the same jtis, with the
    // same claims but `iat` (when each was sealed).
    let (_, _, token) = app.service_account(&["identity-service"]).await;
    let mut stream = app
        .grpc
        .clone()
        .subscribe_security_events(bearer(
            pb::SubscribeSecurityEventsRequest::default(),
            &token,
        ))
        .await
        .unwrap()
        .into_inner();
    let mut streamed = Vec::new();
    while streamed.len() < sessions.len() {
        let m = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if sessions.contains(&m.session_id) {
            streamed.push(
                jsonwebtoken::dangerous::insecure_decode::<Value>(&m.set)
                    .unwrap()
                    .claims,
            );
        }
    }
    for (grpc, (_, set)) in streamed.iter().zip(&sets) {
        let mut polled = verify(&jwks, set, &sub.0);
        let mut grpc = grpc.clone();
        for c in [&mut polled, &mut grpc] {
            c.as_object_mut().unwrap().remove("iat");
            c.as_object_mut().unwrap().remove("aud");
        }
        assert_eq!(polled, grpc);
    }

    // Not acknowledged: the same SETs again.
    let (again, _) = poll(&app, &sub, immediately.clone()).await;
    assert_eq!(jtis(&again), jtis(&sets));
    // Two acknowledged: only the third comes again.
    let (rest, more) = poll(
        &app,
        &sub,
        json!({"returnImmediately": true, "ack": [&sets[0].0, &sets[1].0]}),
    )
    .await;
    assert_eq!(jtis(&rest), [sets[2].0.clone()]);
    assert!(!more);
    // An error report acknowledges too; then nothing is left.
    let errs = json!({"returnImmediately": true, "setErrs": {
        &sets[2].0: {"err": "invalid_key", "description": "test"}
    }});
    let (none, more) = poll(&app, &sub, errs).await;
    assert!(none.is_empty(), "{none:?}");
    assert!(!more);
    // A new event: only it, never the acknowledged ones.
    logouts(&app, 1).await;
    let (next, _) = poll(&app, &sub, immediately.clone()).await;
    assert_eq!(next.len(), 1);
    assert!(!jtis(&sets).contains(&next[0].0));
    // Acknowledging an old jti again changes nothing.
    let (same, _) = poll(
        &app,
        &sub,
        json!({"returnImmediately": true, "ack": [&sets[0].0]}),
    )
    .await;
    assert_eq!(jtis(&same), jtis(&next));

    // Another subscriber has its own position and its own audience.
    let other = subscriber(&app).await;
    let (theirs, _) = poll(
        &app,
        &other,
        json!({"returnImmediately": true, "maxEvents": 1000}),
    )
    .await;
    let theirs: HashSet<String> = jtis(&theirs).into_iter().collect();
    for (jti, set) in sets.iter().chain(&next) {
        assert!(
            theirs.contains(jti),
            "a new subscriber starts at the oldest kept"
        );
        verify(&jwks, set, &sub.0);
    }
}

async fn more_available_when_max_events_cuts_the_backlog(backend: Backend) {
    let app = spawn(backend, Duration::from_secs(25)).await;
    let sub = subscriber(&app).await;
    catch_up(&app, &sub).await;
    logouts(&app, 5).await;
    let mut got = Vec::new();
    let mut ack: Vec<String> = Vec::new();
    let mut mores = Vec::new();
    loop {
        let (sets, more) = poll(
            &app,
            &sub,
            json!({"returnImmediately": true, "maxEvents": 2, "ack": ack}),
        )
        .await;
        if sets.is_empty() {
            assert!(!more);
            break;
        }
        assert!(sets.len() <= 2);
        mores.push(more);
        ack = jtis(&sets);
        got.extend(ack.clone());
    }
    assert_eq!(mores, [true, true, false]);
    assert_eq!(got.len(), 5);
    let mut sorted = got.clone();
    sorted.sort();
    assert_eq!(got, sorted, "commit order");

    // maxEvents 0: acknowledge only, and say whether more wait.
    logouts(&app, 2).await;
    let (sets, more) = poll(
        &app,
        &sub,
        json!({"maxEvents": 0, "returnImmediately": false}),
    )
    .await;
    assert!(sets.is_empty());
    assert!(more);
    // A redelivered batch cut by a smaller maxEvents says more are waiting.
    let (first, _) = poll(&app, &sub, json!({"returnImmediately": true})).await;
    assert_eq!(first.len(), 2);
    let (cut, more) = poll(
        &app,
        &sub,
        json!({"returnImmediately": true, "maxEvents": 1}),
    )
    .await;
    assert_eq!(jtis(&cut), [first[0].0.clone()]);
    assert!(more);
}

async fn a_long_poll_answers_when_an_event_happens(backend: Backend) {
    let app = spawn(backend, Duration::from_secs(20)).await;
    let sub = subscriber(&app).await;
    catch_up(&app, &sub).await;
    let started = tokio::time::Instant::now();
    let waiting = {
        let (http, sub) = (app.http.clone(), sub.clone());
        tokio::spawn(async move {
            let r = reqwest::Client::new()
                .post(format!("{http}/ssf/poll"))
                .basic_auth(&sub.0, Some(&sub.1))
                .body(r#"{"returnImmediately": false}"#)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "a long poll waits for an event");
    let session = logouts(&app, 1).await;
    let body = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("the long poll answered when the event happened")
        .unwrap();
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    let sets = body["sets"].as_object().unwrap();
    assert_eq!(sets.len(), 1, "{body}");
    let set = sets.values().next().unwrap().as_str().unwrap();
    let claims = jsonwebtoken::dangerous::insecure_decode::<Value>(set)
        .unwrap()
        .claims;
    assert_eq!(claims["sub_id"]["session"]["id"], session[0].as_str());

    // With nothing happening, it answers empty at its bound.
    let db = app.db_url.clone();
    let mut s = settings(&db);
    s.events_long_poll = Duration::from_millis(600);
    s.events_poll = Duration::from_millis(20);
    let short = spawn_with(s, app.clock.clone(), true).await;
    let ack: Vec<String> = body["sets"].as_object().unwrap().keys().cloned().collect();
    poll(&short, &sub, json!({"returnImmediately": true, "ack": ack})).await;
    let started = tokio::time::Instant::now();
    let (sets, more) = poll(&short, &sub, json!({})).await;
    let elapsed = started.elapsed();
    assert!(sets.is_empty() && !more);
    assert!(elapsed >= Duration::from_millis(500), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
}

async fn bad_credentials_permissions_and_input_are_refused(backend: Backend) {
    let app = spawn(backend, Duration::from_secs(25)).await;
    let sub = subscriber(&app).await;
    let creds = Some((sub.0.as_str(), sub.1.as_str()));
    let unauthorized = |r: &reqwest::Response| {
        assert_eq!(r.status(), 401);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap();
        assert!(challenge.starts_with("Basic"), "{challenge}");
    };
    let r = post(&app, None, "{}".into()).await;
    unauthorized(&r);
    assert_eq!(
        r.json::<Value>().await.unwrap()["err"],
        "authentication_failed"
    );
    let r = post(&app, Some((&sub.0, "wrong-secret")), "{}".into()).await;
    unauthorized(&r);
    let r = post(&app, Some(("sa-unknown", &sub.1)), "{}".into()).await;
    unauthorized(&r);
    let r = reqwest::Client::new()
        .post(format!("{}/ssf/poll", app.http))
        .bearer_auth("not-basic")
        .body("{}")
        .send()
        .await
        .unwrap();
    unauthorized(&r);
    // An account without events:subscribe.
    let (plain, plain_secret, _) = app.service_account(&[]).await;
    let r = post(&app, Some((&plain, &plain_secret)), "{}".into()).await;
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["err"], "access_denied");

    let bad = |body: String, why: &'static str| {
        let app = &app;
        async move {
            let r = post(app, creds, body).await;
            assert_eq!(r.status(), 400, "{why}");
            let e: Value = r.json().await.unwrap();
            assert_eq!(e["err"], "invalid_request", "{why}: {e}");
            assert!(!e["description"].as_str().unwrap().is_empty(), "{why}");
        }
    };
    bad("not json".into(), "not JSON").await;
    bad(r#"{"maxEvents": 1001}"#.into(), "too many events").await;
    bad(r#"{"maxEvents": -1}"#.into(), "negative").await;
    bad(r#"{"maxEvents": "ten"}"#.into(), "not a number").await;
    bad(r#"{"ack": ["not-a-jti"]}"#.into(), "jti format").await;
    bad(json!({"ack": ["x".repeat(100)]}).to_string(), "long jti").await;
    let many: Vec<String> = (0..1001)
        .map(|_| uuid::Uuid::new_v4().to_string())
        .collect();
    bad(json!({ "ack": many }).to_string(), "too many acks").await;
    bad(
        json!({"setErrs": {uuid::Uuid::new_v4().to_string(): {"err": "x".repeat(100)}}})
            .to_string(),
        "long err",
    )
    .await;
    bad(
        r#"{"setErrs": {"nope": {"err": "invalid_key"}}}"#.into(),
        "setErrs jti",
    )
    .await;
    // Past the body bound, nothing is parsed.
    let huge = format!(r#"{{"ack": [], "pad": "{}"}}"#, "x".repeat(600 * 1024));
    let r = post(&app, creds, huge).await;
    assert_eq!(r.status(), 413);
    // Without a content type it is still JSON.
    let r = reqwest::Client::new()
        .post(format!("{}/ssf/poll", app.http))
        .basic_auth(&sub.0, Some(&sub.1))
        .body(r#"{"returnImmediately": true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

async fn an_overtaken_subscriber_is_told_to_resync(backend: Backend) {
    let app = spawn(backend, Duration::from_secs(25)).await;
    let sub = subscriber(&app).await;
    logouts(&app, 1).await;
    catch_up(&app, &sub).await;
    logouts(&app, 1).await;
    // Delivered, not acknowledged; then the retention (an hour, plus the
    // pruning's hour of margin) passes it and pruning deletes it.
    let (sets, _) = poll(&app, &sub, json!({"returnImmediately": true})).await;
    assert_eq!(sets.len(), 1);
    app.clock.advance(chrono::Duration::hours(3));
    let pruned = app.handle.pruner.prune_once().await.unwrap();
    assert!(pruned.security_events >= 2, "{pruned:?}");
    let r = post(
        &app,
        Some((&sub.0, &sub.1)),
        json!({"returnImmediately": true}).to_string(),
    )
    .await;
    assert_eq!(r.status(), 409);
    let e: Value = r.json().await.unwrap();
    assert_eq!(e["err"], "resync_required");
    assert!(e["description"].as_str().unwrap().contains("resync"), "{e}");
    // Until it says it resynchronised, it hears the same.
    let r = post(&app, Some((&sub.0, &sub.1)), "{}".into()).await;
    assert_eq!(r.status(), 409);
    // Starting over works, from the oldest event kept.
    let (_, more) = poll(
        &app,
        &sub,
        json!({"returnImmediately": true, "resync": true, "maxEvents": 1000}),
    )
    .await;
    assert!(!more);
    let (_, _) = poll(&app, &sub, json!({"returnImmediately": true})).await;
}

async fn concurrent_polls_neither_lose_events_nor_advance_twice(backend: Backend) {
    let app = spawn(backend, Duration::from_secs(25)).await;
    let sub = subscriber(&app).await;
    catch_up(&app, &sub).await;
    let sessions = logouts(&app, 24).await;
    let batch = |ack: Vec<String>| json!({"returnImmediately": true, "maxEvents": 4, "ack": ack});

    // Eight polls at once without acknowledging: all get the same batch.
    let polls = (0..8).map(|_| poll(&app, &sub, batch(vec![])));
    let answers = futures::future::join_all(polls).await;
    let first = jtis(&answers[0].0);
    assert_eq!(first.len(), 4);
    for (sets, _) in &answers {
        assert_eq!(jtis(sets), first);
    }

    // Rounds of polls at once, two acknowledging the batch and two not: the
    // position moves past it once, so the two acknowledging polls answer the
    // same next batch (never one batch further), the others that batch or the
    // old one (if they ran first), and afterwards the acknowledged batch is
    // never delivered again (a poll that read the position before the
    // acknowledgement must not write the old batch back).
    let mut delivered = first.clone();
    let mut current = first;
    loop {
        let acking = (0..2).map(|_| poll(&app, &sub, batch(current.clone())));
        let silent = (0..2).map(|_| poll(&app, &sub, batch(vec![])));
        let (acked, others) = futures::future::join(
            futures::future::join_all(acking),
            futures::future::join_all(silent),
        )
        .await;
        let next = jtis(&acked[0].0);
        assert_eq!(jtis(&acked[1].0), next, "one advance per batch");
        for (sets, _) in &others {
            let got = jtis(sets);
            assert!(got == next || got == current, "{got:?}");
        }
        let (after, _) = poll(&app, &sub, batch(vec![])).await;
        assert_eq!(
            jtis(&after),
            next,
            "an acknowledged batch never comes again"
        );
        if next.is_empty() {
            break;
        }
        delivered.extend(next.clone());
        current = next;
    }
    assert_eq!(delivered.len(), sessions.len(), "{delivered:?}");
    let unique: HashSet<&String> = delivered.iter().collect();
    assert_eq!(unique.len(), sessions.len(), "no event twice");
    let mut sorted = delivered.clone();
    sorted.sort();
    assert_eq!(delivered, sorted, "commit order");
}
