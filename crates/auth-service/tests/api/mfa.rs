//! Two-factor login through the real gRPC interface. The codes come from this
//! file's own RFC 6238 implementation (the `hmac` and `sha1` crates), not the
//! service's `totp-rs`; the interop walk-through does the same with PyPI's pyotp.

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_code, bearer, both_backends, unique_email,
};
use crate::webhook::spawn_notifying;
use hmac::{Hmac, Mac};
use identity_proto::auth::v1 as pb;
use platform::clock::Clock;
use tonic::Code;

both_backends!(
    totp_login_replay_skew_and_recovery_codes,
    wrong_codes_are_throttled_and_challenges_die,
    disable_and_admin_reset,
    one_code_opens_one_session_under_concurrency,
    totp_secrets_are_sealed_with_the_kek,
    an_enrolment_racing_its_confirmation_confirms_only_the_checked_secret,
    code_guesses_gain_nothing_from_logging_in_again,
    enrolling_a_factor_needs_the_password,
    a_burst_of_wrong_codes_is_bounded,
    an_answer_that_fails_part_way_spends_nothing,
    a_challenge_dies_after_a_few_wrong_answers,
    a_password_holder_cannot_keep_the_owners_recovery_code_out,
);

/// RFC 4648 base32 without padding.
pub(crate) fn base32(s: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let (mut bits, mut value, mut out) = (0u32, 0u32, Vec::new());
    for c in s.trim_end_matches('=').bytes() {
        let v = ALPHABET.iter().position(|a| *a == c).unwrap() as u32;
        value = (value << 5) | v;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((value >> bits) as u8);
            value &= (1 << bits) - 1;
        }
    }
    out
}

/// RFC 6238 with HMAC-SHA-1, 6 digits, 30-second steps, at unix time `t`.
pub(crate) fn totp(secret: &[u8], t: i64) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).unwrap();
    mac.update(&((t / 30) as u64).to_be_bytes());
    let h = mac.finalize().into_bytes();
    let offset = usize::from(h[19] & 0x0f);
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    format!("{:06}", bin % 1_000_000)
}

pub(crate) struct Enrolled {
    pub email: String,
    pub secret: Vec<u8>,
    pub recovery: Vec<String>,
    pub session: pb::LoginResponse,
}

pub(crate) fn now(app: &TestApp) -> i64 {
    app.clock.now().timestamp()
}

pub(crate) async fn enrolled(app: &TestApp) -> Enrolled {
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let session = app.login(&email, PASSWORD).await.unwrap();
    let mut grpc = app.grpc.clone();
    let e = grpc
        .enroll_totp(bearer(
            pb::EnrollTotpRequest {
                password: PASSWORD.into(),
            },
            &session.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert!(
        e.otpauth_uri.starts_with("otpauth://totp/"),
        "{}",
        e.otpauth_uri
    );
    assert!(e.otpauth_uri.contains(&format!("secret={}", e.secret)));
    let secret = base32(&e.secret);
    assert_eq!(secret.len(), 20);
    // A wrong first code turns nothing on.
    let wrong = grpc
        .confirm_totp(bearer(
            pb::ConfirmTotpRequest {
                code: "000000".into(),
            },
            &session.access_token,
        ))
        .await;
    if totp(&secret, now(app)) != "000000" {
        assert_code(wrong.map(|_| ()), Code::PermissionDenied);
    }
    let confirmed = grpc
        .confirm_totp(bearer(
            pb::ConfirmTotpRequest {
                code: totp(&secret, now(app)),
            },
            &session.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(confirmed.recovery_codes.len(), 10);
    Enrolled {
        email,
        secret,
        recovery: confirmed.recovery_codes,
        session,
    }
}

pub(crate) async fn challenge(app: &TestApp, email: &str) -> String {
    let r = app.login(email, PASSWORD).await.unwrap();
    assert!(
        r.access_token.is_empty() && r.refresh_token.is_empty(),
        "{r:?}"
    );
    assert!(r.mfa_challenge_expires_at.is_some());
    assert!(!r.mfa_challenge.is_empty());
    r.mfa_challenge
}

pub(crate) async fn verify(
    app: &TestApp,
    challenge: &str,
    code: &str,
    recovery_code: &str,
) -> Result<pb::VerifyMfaResponse, tonic::Status> {
    app.grpc
        .clone()
        .verify_mfa(pb::VerifyMfaRequest {
            mfa_challenge: challenge.into(),
            code: code.into(),
            recovery_code: recovery_code.into(),
        })
        .await
        .map(tonic::Response::into_inner)
}

fn amr(token: &str) -> serde_json::Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice::<serde_json::Value>(&raw).unwrap()["amr"].clone()
}

async fn totp_login_replay_skew_and_recovery_codes(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let user = enrolled(&app).await;
    hooks.wait_for("identity.mfa.enabled", &user.email, 1).await;
    assert_eq!(amr(&user.session.access_token), serde_json::json!(["pwd"]));

    // The code that confirmed the enrolment cannot be replayed.
    let ch = challenge(&app, &user.email).await;
    assert_code(
        verify(&app, &ch, &totp(&user.secret, now(&app)), "")
            .await
            .map(|_| ()),
        Code::Unauthenticated,
    );
    // The next step's code works, once; the tokens say how.
    app.clock.advance(chrono::Duration::seconds(30));
    let code = totp(&user.secret, now(&app));
    let tokens = verify(&app, &ch, &code, "").await.unwrap();
    assert_eq!(amr(&tokens.access_token), serde_json::json!(["pwd", "otp"]));
    let seen = app.validate(&tokens.access_token).await.unwrap();
    assert_eq!(seen.amr, vec!["pwd".to_owned(), "otp".to_owned()]);
    let refreshed = app.refresh(&tokens.refresh_token).await.unwrap();
    assert_eq!(
        amr(&refreshed.access_token),
        serde_json::json!(["pwd", "otp"])
    );
    // A gateway route can demand the second factor (RFC 9470 step-up).
    let forward = |token: String| {
        let url = format!("{}/forward-auth?amr=otp", app.http);
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .header("x-forwarded-uri", "/")
                .send()
                .await
                .unwrap()
        }
    };
    let stepped = forward(refreshed.access_token.clone()).await;
    assert_eq!(stepped.status(), 200);
    let password_only = forward(user.session.access_token.clone()).await;
    assert_eq!(password_only.status(), 401);
    assert_eq!(
        password_only.headers()["www-authenticate"],
        r#"Bearer error="insufficient_user_authentication""#
    );
    // The challenge is spent, and the code with it.
    assert_code(
        verify(&app, &ch, &code, "").await.map(|_| ()),
        Code::Unauthenticated,
    );
    let ch = challenge(&app, &user.email).await;
    assert_code(
        verify(&app, &ch, &code, "").await.map(|_| ()),
        Code::Unauthenticated,
    );

    // One step of skew either way; two is too many.
    app.clock.advance(chrono::Duration::seconds(120));
    let t = now(&app);
    assert_code(
        verify(&app, &ch, &totp(&user.secret, t - 60), "")
            .await
            .map(|_| ()),
        Code::Unauthenticated,
    );
    verify(&app, &ch, &totp(&user.secret, t - 30), "")
        .await
        .unwrap();
    let ch = challenge(&app, &user.email).await;
    assert_code(
        verify(&app, &ch, &totp(&user.secret, t + 60), "")
            .await
            .map(|_| ()),
        Code::Unauthenticated,
    );
    verify(&app, &ch, &totp(&user.secret, t + 30), "")
        .await
        .unwrap();

    // A recovery code works once, whatever its case.
    let ch = challenge(&app, &user.email).await;
    let code = user.recovery[0].to_uppercase();
    let tokens = verify(&app, &ch, "", &code).await.unwrap();
    assert_eq!(amr(&tokens.access_token), serde_json::json!(["pwd", "otp"]));
    let ch = challenge(&app, &user.email).await;
    assert_code(
        verify(&app, &ch, "", &code).await.map(|_| ()),
        Code::Unauthenticated,
    );
    // Bad shapes are the caller's mistake.
    assert_code(
        verify(&app, &ch, "12345", "").await.map(|_| ()),
        Code::InvalidArgument,
    );
    assert_code(
        verify(&app, &ch, "123456", &code).await.map(|_| ()),
        Code::InvalidArgument,
    );
    assert_code(
        verify(&app, "", "123456", "").await.map(|_| ()),
        Code::InvalidArgument,
    );
    assert_code(
        verify(&app, "not-a-challenge", "123456", "")
            .await
            .map(|_| ()),
        Code::Unauthenticated,
    );
    assert_eq!(hooks.bad_signatures(), 0);
}

async fn wrong_codes_are_throttled_and_challenges_die(backend: Backend) {
    let (app, _hooks) = spawn_notifying(backend, |_| {}).await;
    let user = enrolled(&app).await;
    let right = totp(&user.secret, now(&app) + 30);
    let wrong = if right == "111111" {
        "222222"
    } else {
        "111111"
    };
    let mut throttled = false;
    for _ in 0..8 {
        // A fresh challenge each time: one takes only a few wrong answers.
        let ch = challenge(&app, &user.email).await;
        match verify(&app, &ch, wrong, "").await {
            Err(s) if s.code() == Code::ResourceExhausted => {
                throttled = true;
                break;
            }
            Err(s) => assert_eq!(s.code(), Code::Unauthenticated, "{s:?}"),
            Ok(_) => panic!("a wrong code was accepted"),
        }
    }
    assert!(
        throttled,
        "wrong codes must count against the login throttle"
    );
    // Throttled: even the right code waits.
    let ch = challenge(&app, &user.email).await;
    assert_code(
        verify(&app, &ch, &right, "").await.map(|_| ()),
        Code::ResourceExhausted,
    );

    // A challenge expires after 5 minutes.
    app.clock.advance(chrono::Duration::minutes(6));
    let code = totp(&user.secret, now(&app));
    assert_code(
        verify(&app, &ch, &code, "").await.map(|_| ()),
        Code::Unauthenticated,
    );
    // Pruned an hour later.
    app.clock.advance(chrono::Duration::hours(1));
    let pruned = app.handle.pruner.prune_once().await.unwrap();
    // The challenges of the loop above and the one that expired.
    assert_eq!(pruned.mfa_challenges, 7, "{pruned:?}");

    // A password change between the challenge and its answer ends the challenge.
    app.clock.advance(chrono::Duration::hours(1));
    let fresh = app.refresh(&user.session.refresh_token).await.unwrap();
    let ch = challenge(&app, &user.email).await;
    app.grpc
        .clone()
        .change_password(bearer(
            pb::ChangePasswordRequest {
                old_password: PASSWORD.into(),
                new_password: "another long passphrase".into(),
            },
            &fresh.access_token,
        ))
        .await
        .unwrap();
    let code = totp(&user.secret, now(&app));
    assert_code(
        verify(&app, &ch, &code, "").await.map(|_| ()),
        Code::Unauthenticated,
    );
}

async fn disable_and_admin_reset(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let user = enrolled(&app).await;
    let mut grpc = app.grpc.clone();
    let token = &user.session.access_token;
    // Already on: enrolling again is refused.
    assert_code(
        grpc.enroll_totp(bearer(
            pb::EnrollTotpRequest {
                password: PASSWORD.into(),
            },
            token,
        ))
        .await
        .map(|_| ()),
        Code::FailedPrecondition,
    );
    app.clock.advance(chrono::Duration::seconds(30));
    let disable = |password: &str, code: String| {
        let mut grpc = app.grpc.clone();
        let r = bearer(
            pb::DisableTotpRequest {
                password: password.into(),
                code,
                recovery_code: String::new(),
            },
            token,
        );
        async move { grpc.disable_totp(r).await.map(|_| ()) }
    };
    assert_code(
        disable("not the password at all", totp(&user.secret, now(&app))).await,
        Code::PermissionDenied,
    );
    assert_code(
        disable(PASSWORD, "000001".into()).await,
        Code::PermissionDenied,
    );
    disable(PASSWORD, totp(&user.secret, now(&app)))
        .await
        .unwrap();
    hooks
        .wait_for("identity.mfa.disabled", &user.email, 1)
        .await;
    // Off: the password alone logs in.
    let plain = app.login(&user.email, PASSWORD).await.unwrap();
    assert!(!plain.access_token.is_empty() && plain.mfa_challenge.is_empty());

    // An admin resets another user's second factor.
    let other = enrolled(&app).await;
    let other_id = app
        .validate(&other.session.access_token)
        .await
        .unwrap()
        .user_id;
    let reset = |token: String, user_id: String| {
        let mut grpc = app.grpc.clone();
        let r = bearer(pb::ResetUserMfaRequest { user_id }, &token);
        async move { grpc.reset_user_mfa(r).await.map(|_| ()) }
    };
    assert_code(
        reset(user.session.access_token.clone(), other_id.clone()).await,
        Code::PermissionDenied,
    );
    let admin = app.admin_token().await;
    assert_code(
        reset(admin.clone(), uuid::Uuid::new_v4().to_string()).await,
        Code::NotFound,
    );
    assert_code(
        reset(admin.clone(), "nope".into()).await,
        Code::InvalidArgument,
    );
    reset(admin.clone(), other_id.clone()).await.unwrap();
    assert_code(reset(admin, other_id).await, Code::FailedPrecondition);
    hooks
        .wait_for("identity.mfa.disabled", &other.email, 1)
        .await;
    let plain = app.login(&other.email, PASSWORD).await.unwrap();
    assert!(!plain.access_token.is_empty());
}

async fn one_code_opens_one_session_under_concurrency(backend: Backend) {
    let (app, _hooks) = spawn_notifying(backend, |_| {}).await;
    let user = enrolled(&app).await;
    app.clock.advance(chrono::Duration::seconds(30));
    let ch = challenge(&app, &user.email).await;
    let code = totp(&user.secret, now(&app));
    let attempts = (0..6).map(|_| verify(&app, &ch, &code, ""));
    let results = futures::future::join_all(attempts).await;
    assert_eq!(
        results.iter().filter(|r| r.is_ok()).count(),
        1,
        "one code, one session: {results:?}"
    );
    // The five losers counted as failed logins: let the account's wait pass.
    app.clock.advance(chrono::Duration::minutes(1));
    // Two challenges racing with one recovery code: one wins.
    let (a, b) = (
        challenge(&app, &user.email).await,
        challenge(&app, &user.email).await,
    );
    let code = &user.recovery[1];
    let (x, y) = tokio::join!(verify(&app, &a, "", code), verify(&app, &b, "", code));
    assert_eq!(u8::from(x.is_ok()) + u8::from(y.is_ok()), 1, "{x:?} {y:?}");
}

async fn totp_secrets_are_sealed_with_the_kek(backend: Backend) {
    use base64::Engine as _;
    let kek = base64::engine::general_purpose::STANDARD.encode([7u8; 32]);
    let (app, _hooks) = spawn_notifying(backend, |s| {
        s.key_encryption_key = Some(secrecy::SecretString::from(kek));
    })
    .await;
    let user = enrolled(&app).await;
    let (stored, encrypted): (Vec<u8>, bool) = if app.db_url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&app.db_url).await.unwrap();
        sqlx::query_as("SELECT secret, encrypted FROM mfa_totp")
            .fetch_one(&pool)
            .await
            .unwrap()
    } else {
        let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
        sqlx::query_as("SELECT secret, encrypted FROM mfa_totp")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert!(encrypted);
    assert!(
        !stored
            .windows(user.secret.len())
            .any(|w| w == user.secret.as_slice()),
        "the secret is not stored in the clear"
    );
    // And it still works.
    app.clock.advance(chrono::Duration::seconds(30));
    let ch = challenge(&app, &user.email).await;
    verify(&app, &ch, &totp(&user.secret, now(&app)), "")
        .await
        .unwrap();
}

async fn an_enrolment_racing_its_confirmation_confirms_only_the_checked_secret(backend: Backend) {
    let (app, _hooks) = spawn_notifying(backend, |_| {}).await;
    for _ in 0..6 {
        let email = unique_email();
        app.register(&email, PASSWORD).await.unwrap();
        let token = app.login(&email, PASSWORD).await.unwrap().access_token;
        let first = app
            .grpc
            .clone()
            .enroll_totp(bearer(
                pb::EnrollTotpRequest {
                    password: PASSWORD.into(),
                },
                &token,
            ))
            .await
            .unwrap()
            .into_inner();
        let secret = base32(&first.secret);
        // The confirmation checks a code of the first secret while a second
        // enrolment replaces it.
        let (mut a, mut b) = (app.grpc.clone(), app.grpc.clone());
        let confirm = a.confirm_totp(bearer(
            pb::ConfirmTotpRequest {
                code: totp(&secret, now(&app)),
            },
            &token,
        ));
        let enroll = b.enroll_totp(bearer(
            pb::EnrollTotpRequest {
                password: PASSWORD.into(),
            },
            &token,
        ));
        let (confirmed, replaced) = tokio::join!(confirm, enroll);
        assert_eq!(
            u8::from(confirmed.is_ok()) + u8::from(replaced.is_ok()),
            1,
            "either the confirmation or the new enrolment wins: {confirmed:?} {replaced:?}"
        );
        if confirmed.is_ok() {
            // What is in force is the secret the code was checked against.
            app.clock.advance(chrono::Duration::seconds(30));
            let ch = challenge(&app, &email).await;
            verify(&app, &ch, &totp(&secret, now(&app)), "")
                .await
                .unwrap();
        } else {
            let plain = app.login(&email, PASSWORD).await.unwrap();
            assert!(!plain.access_token.is_empty(), "nothing was turned on");
        }
    }
}

/// A request as a gateway forwards it for the client at `address`.
fn from<T>(message: T, address: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("x-forwarded-for", address.parse().unwrap());
    r
}

/// A code none of the accepted steps (now, ±30 s) produces.
fn wrong_code(secret: &[u8], t: i64) -> String {
    let taken = [totp(secret, t - 30), totp(secret, t), totp(secret, t + 30)];
    (0..)
        .map(|n| format!("{:06}", 123_457 + n))
        .find(|c| !taken.contains(c))
        .unwrap()
}

/// The attack of Hardening II, item 1: with the password, log in again from
/// a new address between every few code guesses. A right password must not
/// clear the second factor's failures: the guesses run into the backoff and
/// then the lockout, however they are spread.
async fn code_guesses_gain_nothing_from_logging_in_again(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |s| s.trusted_proxies = "127.0.0.0/8".into()).await;
    let user = enrolled(&app).await;
    let mut grpc = app.grpc.clone();
    let (mut checked, mut throttled, mut locked) = (0, 0, 0);
    for round in 0..26 {
        let address = format!("198.51.100.{round}");
        let login = grpc
            .login(from(
                pb::LoginRequest {
                    email: user.email.clone(),
                    password: PASSWORD.into(),
                },
                &address,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(!login.mfa_challenge.is_empty(), "round {round}");
        for _ in 0..4 {
            let wrong = wrong_code(&user.secret, now(&app));
            let answer = grpc
                .verify_mfa(from(
                    pb::VerifyMfaRequest {
                        mfa_challenge: login.mfa_challenge.clone(),
                        code: wrong,
                        recovery_code: String::new(),
                    },
                    &address,
                ))
                .await;
            match answer.map_err(|s| s.code()) {
                Err(Code::Unauthenticated) => checked += 1,
                Err(Code::ResourceExhausted) => throttled += 1,
                Err(Code::FailedPrecondition) => locked += 1,
                other => panic!("round {round}: {other:?}"),
            }
        }
        // A patient attacker waits out every backoff.
        app.clock.advance(chrono::Duration::minutes(16));
    }
    assert_eq!(
        checked, 20,
        "codes checked before the lockout (throttled {throttled}, locked {locked})"
    );
    assert!(throttled > 0, "the backoff slowed the guesses down");
    assert!(locked > 0, "the authenticator codes locked");
    // The owner is told, once: someone has the password.
    let told = hooks.wait_for("identity.mfa.locked", &user.email, 1).await;
    assert_eq!(told.len(), 1);

    // Locked: even the right code is refused, from anywhere.
    let ch = challenge(&app, &user.email).await;
    app.clock.advance(chrono::Duration::seconds(30));
    assert_code(
        verify(&app, &ch, &totp(&user.secret, now(&app)), "")
            .await
            .map(|_| ()),
        Code::FailedPrecondition,
    );
    // A recovery code (not guessable) still works, and unlocks the codes.
    verify(&app, &ch, "", &user.recovery[0]).await.unwrap();
    let ch = challenge(&app, &user.email).await;
    app.clock.advance(chrono::Duration::seconds(30));
    verify(&app, &ch, &totp(&user.secret, now(&app)), "")
        .await
        .unwrap();
}

/// Hardening II, item 3: a stolen access token alone cannot bind the
/// thief's authenticator; a wrong password counts as ChangePassword's does.
async fn enrolling_a_factor_needs_the_password(backend: Backend) {
    let (app, _hooks) = spawn_notifying(backend, |_| {}).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let session = app.login(&email, PASSWORD).await.unwrap();
    let mut grpc = app.grpc.clone();
    let enroll = |password: &str| {
        bearer(
            pb::EnrollTotpRequest {
                password: password.into(),
            },
            &session.access_token,
        )
    };
    assert_code(
        grpc.enroll_totp(enroll("")).await.map(|_| ()),
        Code::InvalidArgument,
    );
    assert_code(
        grpc.enroll_totp(enroll("not the password at all"))
            .await
            .map(|_| ()),
        Code::PermissionDenied,
    );
    grpc.enroll_totp(enroll(PASSWORD)).await.unwrap();
    // Guessing the password through this call ends the session.
    for _ in 0..2 {
        assert_code(
            grpc.enroll_totp(enroll("still not the password"))
                .await
                .map(|_| ()),
            Code::PermissionDenied,
        );
    }
    assert_code(
        grpc.enroll_totp(enroll("still not the password"))
            .await
            .map(|_| ()),
        Code::Unauthenticated,
    );
    assert_code(
        app.validate(&session.access_token).await.map(|_| ()),
        Code::Unauthenticated,
    );
}

/// A burst of wrong codes on one challenge, all reading "no failures": the
/// reservation before the check lets only the free failures through.
async fn a_burst_of_wrong_codes_is_bounded(backend: Backend) {
    let (app, _hooks) = spawn_notifying(backend, |_| {}).await;
    let user = enrolled(&app).await;
    let ch = challenge(&app, &user.email).await;
    let wrong = wrong_code(&user.secret, now(&app));
    let attempts = (0..40).map(|_| verify(&app, &ch, &wrong, ""));
    let mut checked = 0;
    for r in futures::future::join_all(attempts).await {
        match r.map(drop).map_err(|s| s.code()) {
            Err(Code::Unauthenticated) => checked += 1,
            // Refused unchecked: waiting, or (every refusal counted) locked.
            Err(Code::ResourceExhausted | Code::FailedPrecondition) => {}
            other => panic!("{other:?}"),
        }
    }
    assert!(checked <= 5, "{checked} codes checked in one burst");
}

/// After the lockout, a password holder sending bogus recovery codes must not
/// keep the owner's right recovery code out (found by review): recovery codes
/// count only against the client address.
async fn a_password_holder_cannot_keep_the_owners_recovery_code_out(backend: Backend) {
    let (app, _hooks) = spawn_notifying(backend, |_| {}).await;
    let user = enrolled(&app).await;
    let mut locked = false;
    for _ in 0..25 {
        let ch = challenge(&app, &user.email).await;
        let wrong = wrong_code(&user.secret, now(&app));
        let r = verify(&app, &ch, &wrong, "").await;
        locked |= r.unwrap_err().code() == Code::FailedPrecondition;
        app.clock.advance(chrono::Duration::minutes(16));
    }
    assert!(locked);
    for _ in 0..3 {
        let ch = challenge(&app, &user.email).await;
        let bogus = verify(&app, &ch, "", "aaaa-aaaa-aaaa-aaaa").await;
        assert_eq!(bogus.unwrap_err().code(), Code::Unauthenticated);
    }
    let ch = challenge(&app, &user.email).await;
    verify(&app, &ch, "", &user.recovery[0]).await.unwrap();
}

/// Runs `statements` on the app's database, one by one.
async fn run_sql(app: &TestApp, statements: &[&str]) {
    if app.db_url.starts_with("sqlite") {
        let pool = sqlx::SqlitePool::connect(&app.db_url).await.unwrap();
        for sql in statements {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
    } else {
        let pool = sqlx::PgPool::connect(&app.db_url).await.unwrap();
        for sql in statements {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
    }
}

/// VerifyMfa is one transaction: when opening the session fails after the
/// code and the challenge were spent in it, nothing is spent, and the same
/// code answers the same challenge once the fault is gone.
async fn an_answer_that_fails_part_way_spends_nothing(backend: Backend) {
    let (app, _hooks) = spawn_notifying(backend, |_| {}).await;
    let user = enrolled(&app).await;
    let ch = challenge(&app, &user.email).await;
    app.clock.advance(chrono::Duration::seconds(30));
    let code = totp(&user.secret, now(&app));
    let sqlite = app.db_url.starts_with("sqlite");
    // The fault: any new session is refused by the database.
    let inject: &[&str] = if sqlite {
        &["CREATE TRIGGER refuse_sessions BEFORE INSERT ON sessions
           BEGIN SELECT RAISE(ABORT, 'injected fault'); END"]
    } else {
        &[
            "CREATE FUNCTION refuse_sessions() RETURNS trigger AS $$
             BEGIN RAISE EXCEPTION 'injected fault'; END $$ LANGUAGE plpgsql",
            "CREATE TRIGGER refuse_sessions BEFORE INSERT ON sessions
             FOR EACH ROW EXECUTE FUNCTION refuse_sessions()",
        ]
    };
    run_sql(&app, inject).await;
    let failed = verify(&app, &ch, &code, "").await.unwrap_err();
    assert_eq!(failed.code(), Code::Internal, "{failed:?}");
    let heal: &[&str] = if sqlite {
        &["DROP TRIGGER refuse_sessions"]
    } else {
        &[
            "DROP TRIGGER refuse_sessions ON sessions",
            "DROP FUNCTION refuse_sessions",
        ]
    };
    run_sql(&app, heal).await;
    let tokens = verify(&app, &ch, &code, "").await.unwrap();
    assert_eq!(amr(&tokens.access_token), serde_json::json!(["pwd", "otp"]));
}

/// Recovery codes are throttled per address only; a challenge dies after a
/// few wrong answers, so guesses sprayed from many addresses each cost a new
/// login (found by review). DisableTotp without a factor says so.
async fn a_challenge_dies_after_a_few_wrong_answers(backend: Backend) {
    let (app, _hooks) =
        spawn_notifying(backend, |s| s.trusted_proxies = "127.0.0.0/8".into()).await;
    let user = enrolled(&app).await;
    let ch = challenge(&app, &user.email).await;
    let mut grpc = app.grpc.clone();
    for n in 0..5 {
        let answer = grpc
            .verify_mfa(from(
                pb::VerifyMfaRequest {
                    mfa_challenge: ch.clone(),
                    code: String::new(),
                    recovery_code: "aaaa-aaaa-aaaa-aaaa".into(),
                },
                &format!("2001:db8::{n}"),
            ))
            .await;
        assert_eq!(answer.unwrap_err().code(), Code::Unauthenticated);
    }
    assert_code(
        verify(&app, &ch, "", &user.recovery[0]).await.map(|_| ()),
        Code::Unauthenticated,
    );
    let ch = challenge(&app, &user.email).await;
    verify(&app, &ch, "", &user.recovery[0]).await.unwrap();

    let other = app.new_session().await;
    let r = grpc
        .disable_totp(bearer(
            pb::DisableTotpRequest {
                password: PASSWORD.into(),
                code: "123456".into(),
                recovery_code: String::new(),
            },
            &other.access_token,
        ))
        .await;
    assert_eq!(r.unwrap_err().code(), Code::FailedPrecondition);
}
