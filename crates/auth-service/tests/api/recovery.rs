//! Email verification and password reset through the real gRPC interface, with
//! the notifications collected by a real webhook receiver that checks every
//! signature.

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_code, bearer, both_backends, unique_email,
};
use crate::webhook::spawn_notifying;
use identity_proto::auth::v1 as pb;
use std::time::{Duration, Instant};
use tonic::Code;

const VERIFY: &str = "identity.email_verification.requested";
const RESET: &str = "identity.password_reset.requested";
const CHANGED: &str = "identity.password.changed";
const NEW_PASSWORD: &str = "a brand new passphrase";

both_backends!(
    registration_sends_a_verification_that_works_once,
    a_newer_verification_supersedes_and_tokens_expire,
    password_reset_ends_every_session_and_notifies,
    password_reset_answers_alike_for_unknown_addresses_and_is_throttled,
    one_time_tokens_cannot_be_spent_twice_concurrently,
    unverified_logins_can_be_refused,
    delivered_tokens_do_not_stay_in_the_outbox,
    email_change_waits_for_the_new_address,
);

/// The claims of a JWT, unverified (the service verified it).
fn claims(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&raw).unwrap()
}

pub(crate) async fn verify(app: &TestApp, token: &str) -> Result<(), tonic::Status> {
    app.grpc
        .clone()
        .verify_email(pb::VerifyEmailRequest {
            token: token.into(),
        })
        .await
        .map(drop)
}

pub(crate) async fn request_reset(app: &TestApp, email: &str) -> Result<(), tonic::Status> {
    app.grpc
        .clone()
        .request_password_reset(pb::RequestPasswordResetRequest {
            email: email.into(),
        })
        .await
        .map(drop)
}

pub(crate) async fn reset(app: &TestApp, token: &str, password: &str) -> Result<(), tonic::Status> {
    app.grpc
        .clone()
        .reset_password(pb::ResetPasswordRequest {
            token: token.into(),
            new_password: password.into(),
        })
        .await
        .map(drop)
}

async fn registered(app: &TestApp) -> String {
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    email
}

fn assert_invalid_token(r: Result<(), tonic::Status>) {
    let status = r.expect_err("the token must be refused");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    assert_eq!(
        status.message(),
        "the token is invalid, expired or already used; request a new one"
    );
}

async fn registration_sends_a_verification_that_works_once(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let email = registered(&app).await;
    let event = hooks.wait_for(VERIFY, &email, 1).await.remove(0);
    assert_eq!(event["specversion"], "1.0");
    assert_eq!(event["source"], "identity-auth");
    let token = event["data"]["token"].as_str().unwrap();
    assert_eq!(token.len(), 43, "256 random bits, base64url");
    assert!(event["data"]["expires_at"].is_string());
    assert_eq!(
        event["data"]["link"],
        format!("https://app.example/verify-email?token={token}")
    );

    let before = app.login(&email, PASSWORD).await.unwrap();
    assert_eq!(claims(&before.access_token)["email_verified"], false);
    assert!(
        !app.validate(&before.access_token)
            .await
            .unwrap()
            .email_verified
    );

    verify(&app, token).await.unwrap();
    assert_invalid_token(verify(&app, token).await);
    assert_invalid_token(verify(&app, "not-a-token").await);
    assert_code(verify(&app, "").await.map(|_| ()), Code::InvalidArgument);

    let after = app.login(&email, PASSWORD).await.unwrap();
    assert_eq!(claims(&after.access_token)["email_verified"], true);
    assert!(
        app.validate(&after.access_token)
            .await
            .unwrap()
            .email_verified
    );
    // A refreshed token says the same.
    let refreshed = app.refresh(&before.refresh_token).await.unwrap();
    assert_eq!(claims(&refreshed.access_token)["email_verified"], true);
    // Once verified, there is nothing to request.
    let again = app
        .grpc
        .clone()
        .request_email_verification(bearer(
            pb::RequestEmailVerificationRequest {},
            &after.access_token,
        ))
        .await;
    assert_code(again.map(|_| ()), Code::FailedPrecondition);
    assert_eq!(hooks.bad_signatures(), 0);
}

async fn a_newer_verification_supersedes_and_tokens_expire(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let email = registered(&app).await;
    let first = hooks.token(VERIFY, &email, 1).await;
    let session = app.login(&email, PASSWORD).await.unwrap();
    let request = || {
        let mut client = app.grpc.clone();
        let r = bearer(
            pb::RequestEmailVerificationRequest {},
            &session.access_token,
        );
        async move { client.request_email_verification(r).await }
    };
    request().await.unwrap();
    let second = hooks.token(VERIFY, &email, 2).await;
    assert_ne!(first, second);
    assert_invalid_token(verify(&app, &first).await);

    // Three requests per 15 minutes.
    request().await.unwrap();
    request().await.unwrap();
    let third = hooks.token(VERIFY, &email, 4).await;
    let status = request().await.expect_err("a fourth request is throttled");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");

    // Expired after 24 hours.
    app.clock
        .advance(chrono::Duration::hours(24) + chrono::Duration::seconds(1));
    assert_invalid_token(verify(&app, &third).await);
}

async fn password_reset_ends_every_session_and_notifies(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let email = registered(&app).await;
    let phone = app.login(&email, PASSWORD).await.unwrap();
    let laptop = app.login(&email, PASSWORD).await.unwrap();

    request_reset(&app, &email).await.unwrap();
    let first = hooks.token(RESET, &email, 1).await;
    request_reset(&app, &email).await.unwrap();
    let second = hooks.token(RESET, &email, 2).await;
    let event = &hooks.events(RESET, &email)[1];
    assert_eq!(
        event["data"]["link"],
        format!("https://app.example/reset-password?token={second}")
    );
    // The older request is superseded.
    assert_invalid_token(reset(&app, &first, NEW_PASSWORD).await);
    // The policy applies; a refused password spends nothing.
    assert_code(reset(&app, &second, "short").await, Code::InvalidArgument);

    reset(&app, &second, NEW_PASSWORD).await.unwrap();
    assert_invalid_token(reset(&app, &second, "yet another passphrase").await);
    for session in [&phone, &laptop] {
        assert_code(
            app.validate(&session.access_token).await.map(|_| ()),
            Code::Unauthenticated,
        );
        assert_code(
            app.refresh(&session.refresh_token).await.map(|_| ()),
            Code::Unauthenticated,
        );
    }
    assert_code(
        app.login(&email, PASSWORD).await.map(|_| ()),
        Code::Unauthenticated,
    );
    app.login(&email, NEW_PASSWORD).await.unwrap();
    let notice = hooks.wait_for(CHANGED, &email, 1).await.remove(0);
    assert!(
        notice["data"].get("token").is_none(),
        "a notice carries no token"
    );
    assert_eq!(hooks.bad_signatures(), 0);
}

async fn password_reset_answers_alike_for_unknown_addresses_and_is_throttled(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let email = registered(&app).await;
    let unknown = unique_email();
    // Alternate known and unknown; both answer OK, in about the same time.
    let (mut known_ms, mut unknown_ms) = (Vec::new(), Vec::new());
    for _ in 0..4 {
        for (address, into) in [(&email, &mut known_ms), (&unknown, &mut unknown_ms)] {
            let t = Instant::now();
            request_reset(&app, address).await.unwrap();
            into.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (k, u) = (median(&mut known_ms), median(&mut unknown_ms));
    assert!(
        (k - u).abs() < 25.0,
        "known {k:.1} ms, unknown {u:.1} ms: the answer must not tell them apart"
    );
    // The account gets 3 mails per 15 minutes whatever the requests; the unknown none.
    hooks.wait_for(RESET, &email, 3).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(hooks.events(RESET, &email).len(), 3);
    assert!(hooks.events(RESET, &unknown).is_empty());

    // 10 requests a minute from one address; the 9th and 10th still pass.
    request_reset(&app, &unknown).await.unwrap();
    request_reset(&app, &unknown).await.unwrap();
    let status = request_reset(&app, &unknown)
        .await
        .expect_err("the 11th request in a minute is throttled");
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    app.clock.advance(chrono::Duration::minutes(1));
    request_reset(&app, &unknown).await.unwrap();
    assert_code(
        request_reset(&app, "not an email").await,
        Code::InvalidArgument,
    );
}

async fn one_time_tokens_cannot_be_spent_twice_concurrently(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let email = registered(&app).await;
    // First the verification (a reset would end it: every credential change
    // ends every outstanding token).
    let verification = hooks.token(VERIFY, &email, 1).await;
    let attempts = (0..8).map(|_| verify(&app, &verification));
    let results = futures::future::join_all(attempts).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "{results:?}"
    );

    request_reset(&app, &email).await.unwrap();
    let token = hooks.token(RESET, &email, 1).await;
    let attempts = (0..8).map(|i| {
        let (app, token) = (&app, token.clone());
        async move { reset(app, &token, &format!("racing passphrase number {i}")).await }
    });
    let results = futures::future::join_all(attempts).await;
    let won: Vec<usize> = (0..8).filter(|i| results[*i].is_ok()).collect();
    assert_eq!(won.len(), 1, "exactly one reset wins: {results:?}");
    for r in results.into_iter().filter(Result::is_err) {
        assert_invalid_token(r);
    }
    // The winner's password is the one in force.
    app.login(&email, &format!("racing passphrase number {}", won[0]))
        .await
        .unwrap();
    assert_eq!(hooks.wait_for(CHANGED, &email, 1).await.len(), 1);
}

async fn unverified_logins_can_be_refused(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |s| s.require_verified_email = true).await;
    let email = registered(&app).await;
    hooks.wait_for(VERIFY, &email, 1).await;
    let status = app
        .login(&email, PASSWORD)
        .await
        .expect_err("unverified logins are refused");
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert!(status.message().contains("not verified"), "{status:?}");
    // A wrong password still says only that.
    assert_code(
        app.login(&email, "not the password at all")
            .await
            .map(|_| ()),
        Code::Unauthenticated,
    );
    // The refusal sent a fresh link; it works, the registration's is superseded.
    let fresh = hooks.token(VERIFY, &email, 2).await;
    verify(&app, &fresh).await.unwrap();
    let session = app.login(&email, PASSWORD).await.unwrap();
    assert_eq!(claims(&session.access_token)["email_verified"], true);
}

async fn delivered_tokens_do_not_stay_in_the_outbox(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let email = registered(&app).await;
    let token = hooks.token(VERIFY, &email, 1).await;
    request_reset(&app, &email).await.unwrap();
    let reset_token = hooks.token(RESET, &email, 1).await;
    // Delivery is marked right after the receiver answers.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let payloads = outbox_payloads(&app.db_url).await;
    assert!(!payloads.is_empty());
    for p in payloads {
        assert!(!p.contains(&token) && !p.contains(&reset_token), "{p}");
    }
    // Each delivery has its own webhook-id: receivers dedupe on it.
    let ids: std::collections::HashSet<_> = hooks
        .deliveries()
        .into_iter()
        .map(|d| d.webhook_id)
        .collect();
    assert_eq!(ids.len(), hooks.deliveries().len());
}

async fn outbox_payloads(url: &str) -> Vec<String> {
    if url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(url).await.unwrap();
        sqlx::query_scalar("SELECT payload FROM outbox")
            .fetch_all(&pool)
            .await
            .unwrap()
    } else {
        let pool = sqlx::PgPool::connect(url).await.unwrap();
        sqlx::query_scalar("SELECT payload FROM outbox")
            .fetch_all(&pool)
            .await
            .unwrap()
    }
}

async fn email_change_waits_for_the_new_address(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let email = registered(&app).await;
    let taken = registered(&app).await;
    let session = app.login(&email, PASSWORD).await.unwrap();
    let change = |new_email: &str, password: &str| {
        let mut grpc = app.grpc.clone();
        let r = bearer(
            pb::ChangeEmailRequest {
                new_email: new_email.into(),
                password: password.into(),
            },
            &session.access_token,
        );
        async move { grpc.change_email(r).await.map(drop) }
    };
    assert_code(change(&taken, PASSWORD).await, Code::AlreadyExists);
    assert_code(
        change("not an email", PASSWORD).await,
        Code::InvalidArgument,
    );
    let new = unique_email();
    assert_code(
        change(&new, "not the password at all").await,
        Code::PermissionDenied,
    );
    change(&new, PASSWORD).await.unwrap();
    let first = hooks
        .token("identity.email_change.requested", &new, 1)
        .await;
    change(&new, PASSWORD).await.unwrap();
    let second = hooks
        .token("identity.email_change.requested", &new, 2)
        .await;
    assert_invalid_token(verify(&app, &first).await);
    // Nothing changes before the new address is proven.
    app.login(&email, PASSWORD).await.unwrap();
    verify(&app, &second).await.unwrap();
    assert_code(
        app.login(&email, PASSWORD).await.map(|_| ()),
        Code::Unauthenticated,
    );
    let moved = app.login(&new, PASSWORD).await.unwrap();
    assert_eq!(claims(&moved.access_token)["email_verified"], true);
    hooks.wait_for("identity.email.changed", &email, 1).await;
    assert_invalid_token(verify(&app, &second).await);

    // The address is taken between the request and the verification.
    let other = unique_email();
    let session = app.login(&new, PASSWORD).await.unwrap();
    let mut grpc = app.grpc.clone();
    grpc.change_email(bearer(
        pb::ChangeEmailRequest {
            new_email: other.clone(),
            password: PASSWORD.into(),
        },
        &session.access_token,
    ))
    .await
    .unwrap();
    let token = hooks
        .token("identity.email_change.requested", &other, 1)
        .await;
    app.register(&other, PASSWORD).await.unwrap();
    assert_code(verify(&app, &token).await, Code::AlreadyExists);
    app.login(&new, PASSWORD).await.unwrap();
}
