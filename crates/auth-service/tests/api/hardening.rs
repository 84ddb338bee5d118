//! The security promises under concurrency and behind a gateway: throttle
//! reservations, forwarded addresses read right to left, logins racing
//! credential changes, and the other weaknesses the hardening review found.

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_code, both_backends, spawn_app, spawn_replica, unique_email,
};
use auth_service::{credentials::IdentitySql, sessions::SessionSql};
use identity_proto::auth::v1 as pb;
use platform::outbox::SqlOutbox;
use tonic::Code;

both_backends!(
    a_burst_of_wrong_passwords_is_throttled,
    spoofed_forwarded_prefixes_neither_dodge_nor_lock_out,
    logins_racing_a_disable_leave_no_valid_token,
    logins_racing_a_password_change_leave_no_valid_token,
    change_password_is_no_password_oracle,
    unknown_methods_do_not_grow_metrics,
    logout_with_a_spent_refresh_token_ends_the_session,
    create_admin_on_a_taken_email_needs_promote_and_takes_the_account_back,
    sessions_end_at_their_absolute_lifetime,
    pruning_deletes_what_is_due_and_nothing_live,
    a_registration_flood_from_one_address_leaves_logins_alone,
);

/// Logins on `email` every 5 ms until `stop`; the tokens of those that
/// succeeded. `won` is notified at the first success, so the change the
/// storm races is made while logins are both done and in flight, however
/// slow the machine.
struct Storm {
    won: std::sync::Arc<tokio::sync::Notify>,
    stop: tokio_util::sync::CancellationToken,
    task: tokio::task::JoinHandle<Vec<String>>,
}

impl Storm {
    fn start(app: &TestApp, email: &str) -> Self {
        let (grpc, email) = (app.grpc.clone(), email.to_owned());
        let won = std::sync::Arc::new(tokio::sync::Notify::new());
        let stop = tokio_util::sync::CancellationToken::new();
        let (w, st) = (won.clone(), stop.clone());
        let task = tokio::spawn(async move {
            let mut calls = Vec::new();
            while !st.is_cancelled() {
                let (mut grpc, email, w) = (grpc.clone(), email.clone(), w.clone());
                calls.push(tokio::spawn(async move {
                    let token = grpc
                        .login(pb::LoginRequest {
                            email,
                            password: PASSWORD.into(),
                        })
                        .await
                        .ok()
                        .map(|r| r.into_inner().access_token);
                    if token.is_some() {
                        w.notify_one();
                    }
                    token
                }));
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            let mut tokens = Vec::new();
            for c in calls {
                tokens.extend(c.await.unwrap());
            }
            tokens
        });
        Self { won, stop, task }
    }

    /// Waits for the first won login (and a little more, so others are in flight).
    async fn underway(&self) {
        tokio::time::timeout(std::time::Duration::from_secs(30), self.won.notified())
            .await
            .expect("a login succeeded");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    /// Keeps logging in a little after the change, then the tokens won.
    async fn finish(self) -> Vec<String> {
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
        self.stop.cancel();
        self.task.await.unwrap()
    }
}

/// No token from a login that raced `DisableUser` validates once it returned.
async fn logins_racing_a_disable_leave_no_valid_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let email = unique_email();
    let user = app.register(&email, PASSWORD).await.unwrap().user_id;
    let storm = Storm::start(&app, &email);
    storm.underway().await;
    app.grpc
        .clone()
        .disable_user(crate::helpers::bearer(
            pb::DisableUserRequest {
                user_id: user,
                reason: "test".into(),
                purged: false,
            },
            &admin,
        ))
        .await
        .unwrap();
    let tokens = storm.finish().await;
    assert!(!tokens.is_empty(), "some logins won before the disable");
    for t in &tokens {
        assert_code(app.validate(t).await, Code::Unauthenticated);
    }
}

/// No session opened with the old password survives `ChangePassword`, however
/// the logins interleave with it; only the caller's own session stays.
async fn logins_racing_a_password_change_leave_no_valid_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let me = app.login(&email, PASSWORD).await.unwrap();
    let storm = Storm::start(&app, &email);
    storm.underway().await;
    // The storm's attempts in flight count against the account's throttle
    // until they succeed, so the change may be asked to wait: retry as told.
    loop {
        match change_password(&app, &me.access_token, PASSWORD).await {
            Ok(_) => break,
            Err(s) if s.code() == Code::ResourceExhausted => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(s) => panic!("{s:?}"),
        }
    }
    let tokens = storm.finish().await;
    assert!(!tokens.is_empty(), "some logins won before the change");
    for t in &tokens {
        assert_code(app.validate(t).await, Code::Unauthenticated);
    }
    app.validate(&me.access_token)
        .await
        .expect("the caller's session stays");
}

async fn login_via(
    app: &TestApp,
    email: &str,
    password: &str,
    forwarded: &[&str],
) -> Result<pb::LoginResponse, tonic::Status> {
    let mut r = tonic::Request::new(pb::LoginRequest {
        email: email.into(),
        password: password.into(),
    });
    for value in forwarded {
        r.metadata_mut()
            .append("x-forwarded-for", value.parse().unwrap());
    }
    app.grpc
        .clone()
        .login(r)
        .await
        .map(tonic::Response::into_inner)
}

/// 24 wrong passwords fired at once on one account: only as many are checked
/// against the password as sequential attempts would be (5); the rest wait.
async fn a_burst_of_wrong_passwords_is_throttled(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let attempts: Vec<_> = (0..24)
        .map(|_| {
            let (grpc, email) = (app.grpc.clone(), email.clone());
            tokio::spawn(async move {
                grpc.clone()
                    .login(pb::LoginRequest {
                        email,
                        password: "wrong password".into(),
                    })
                    .await
                    .map(drop)
                    .unwrap_err()
                    .code()
            })
        })
        .collect();
    let mut checked = 0;
    for a in attempts {
        match a.await.unwrap() {
            Code::Unauthenticated => checked += 1,
            Code::ResourceExhausted => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(
        checked <= 5,
        "{checked} of 24 concurrent attempts were checked"
    );
    assert!(checked >= 1);
}

/// Behind a trusted gateway that appends the real client address, addresses a
/// client prepends change nothing: rotating fake prefixes is still one client,
/// and a victim's address as prefix does not throttle the victim.
async fn spoofed_forwarded_prefixes_neither_dodge_nor_lock_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let gateway = spawn_replica(&app, |s| s.trusted_proxies = "127.0.0.0/8".into()).await;
    let attacker = "203.0.113.66";
    let victim = "198.51.100.7";
    let mut throttled = 0;
    for i in 0..35 {
        let spoofed = format!("192.0.2.{i}, {victim}, {attacker}");
        let r = login_via(&gateway, &unique_email(), "wrong password", &[&spoofed]).await;
        if r.as_ref().err().map(tonic::Status::code) == Some(Code::ResourceExhausted) {
            throttled += 1;
        }
    }
    assert_eq!(
        throttled, 5,
        "the attacker's address is limited to 30 failures"
    );
    // The victim, behind the same gateway, is not affected.
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    login_via(&gateway, &email, PASSWORD, &[victim])
        .await
        .expect("the victim's own address has its whole budget");
    // The attacker stays limited whether the real address comes in the same
    // header or in a second one.
    let split = login_via(
        &gateway,
        &unique_email(),
        "wrong password",
        &[victim, attacker],
    )
    .await;
    assert_code(split, Code::ResourceExhausted);
    // Sessions record the real address.
    let mut grpc = gateway.grpc.clone();
    let tokens = login_via(&gateway, &email, PASSWORD, &["1.1.1.1", victim])
        .await
        .unwrap();
    let sessions = grpc
        .list_sessions(crate::helpers::bearer(
            pb::ListSessionsRequest::default(),
            &tokens.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .sessions;
    assert!(
        sessions.iter().all(|s| s.client_address == victim),
        "{sessions:?}"
    );
}

async fn change_password(
    app: &TestApp,
    token: &str,
    old: &str,
) -> Result<pb::ChangePasswordResponse, tonic::Status> {
    app.grpc
        .clone()
        .change_password(crate::helpers::bearer(
            pb::ChangePasswordRequest {
                old_password: old.into(),
                new_password: "a brand new passphrase".into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// Guessing the old password through ChangePassword counts against the
/// account's login throttle, and a few wrong guesses end the session.
async fn change_password_is_no_password_oracle(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let stolen = app.login(&email, PASSWORD).await.unwrap();
    for guess in ["guess one", "guess two"] {
        assert_code(
            change_password(&app, &stolen.access_token, guess).await,
            Code::PermissionDenied,
        );
    }
    let ended = change_password(&app, &stolen.access_token, "guess three").await;
    assert!(assert_code(ended, Code::Unauthenticated).contains("session has ended"));
    assert_code(
        app.validate(&stolen.access_token).await,
        Code::Unauthenticated,
    );

    // Failed logins and guesses share one budget: once the account must wait,
    // ChangePassword waits too, even with the right old password.
    let other = app.login(&email, PASSWORD).await.unwrap();
    for _ in 0..5 {
        assert_code(app.login(&email, "wrong").await, Code::Unauthenticated);
    }
    assert_code(
        change_password(&app, &other.access_token, PASSWORD).await,
        Code::ResourceExhausted,
    );
}

/// 300 calls to made-up 2 KiB method names, unauthenticated: `/metrics` keeps
/// one `unknown` series instead of growing by every name.
async fn unknown_methods_do_not_grow_metrics(backend: Backend) {
    let app = spawn_app(backend).await;
    let metrics = || async {
        reqwest::get(format!("{}/metrics", app.http))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let channel = tonic::transport::Channel::from_shared(app.grpc_url())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut grpc = tonic::client::Grpc::new(channel);
    let _ = app.login(&unique_email(), PASSWORD).await;
    let before = metrics().await.len();
    for i in 0..300 {
        let path = format!("/identity.auth.v1.AuthService/{i}{}", "x".repeat(2048));
        grpc.ready().await.unwrap();
        let reply: Result<tonic::Response<()>, _> = grpc
            .unary(
                tonic::Request::new(()),
                path.parse().unwrap(),
                tonic_prost::ProstCodec::<(), ()>::default(),
            )
            .await;
        assert_code(reply, Code::Unimplemented);
    }
    let after = metrics().await;
    assert!(
        after.len() < before + 4096,
        "/metrics grew from {before} to {} bytes",
        after.len()
    );
    assert!(
        after.contains(
            r#"grpc_server_handled_total{grpc_code="12",grpc_method="unknown",service="auth"} 300"#
        ),
        "{after}"
    );
}

/// A thief refreshed with the victim's token: the victim's logout with the
/// spent token ends the session, the thief's tokens included.
async fn logout_with_a_spent_refresh_token_ends_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let victim = app.new_session().await;
    let thief = app.refresh(&victim.refresh_token).await.unwrap();
    app.logout(&victim.refresh_token).await.unwrap();
    assert_code(
        app.validate(&thief.access_token).await,
        Code::Unauthenticated,
    );
    assert_code(
        app.refresh(&thief.refresh_token).await,
        Code::Unauthenticated,
    );
    // Logging out again, or with garbage, still answers OK and reveals nothing.
    app.logout(&victim.refresh_token).await.unwrap();
    app.logout("not a token").await.unwrap();
}

/// A squatter registered the admin's email first: create-admin refuses; with
/// `--promote` the squatter's password and sessions are gone before the
/// account becomes admin.
async fn create_admin_on_a_taken_email_needs_promote_and_takes_the_account_back(backend: Backend) {
    use auth_service::domain::{DisplayName, Email, NewPassword};
    let app = spawn_app(backend).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let squatter = app.login(&email, PASSWORD).await.unwrap();
    let admin_password = "the real admin passphrase";
    let admin = auth_service::credentials::Credentials(&app.handle.core);
    let create = |promote| {
        admin.create_admin(
            Email::parse(&email, "e").unwrap(),
            DisplayName::parse("Admin", "d").unwrap(),
            promote,
            || Ok(NewPassword::parse(admin_password.into(), "p")?),
        )
    };
    let refused = create(false).await.unwrap_err().to_string();
    assert!(refused.contains("--promote"), "{refused}");
    let roles = app.validate(&squatter.access_token).await.unwrap().roles;
    assert!(!roles.contains(&"admin".to_owned()));

    create(true).await.unwrap();
    assert_code(
        app.validate(&squatter.access_token).await,
        Code::Unauthenticated,
    );
    assert_code(
        app.refresh(&squatter.refresh_token).await,
        Code::Unauthenticated,
    );
    assert_code(app.login(&email, PASSWORD).await, Code::Unauthenticated);
    let admin = app.login(&email, admin_password).await.unwrap();
    let roles = app.validate(&admin.access_token).await.unwrap().roles;
    assert!(roles.contains(&"admin".to_owned()), "{roles:?}");
}

/// Refreshing rotates tokens but never carries a session past 30 days from
/// its login.
async fn sessions_end_at_their_absolute_lifetime(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut tokens = app.new_session().await.refresh_token;
    for _ in 0..3 {
        app.clock.advance(chrono::Duration::days(9));
        tokens = app.refresh(&tokens).await.unwrap().refresh_token;
    }
    // Day 27: one more refresh works, but its token ends with the session.
    app.clock
        .advance(chrono::Duration::days(2) + chrono::Duration::hours(23));
    let last = app.refresh(&tokens).await.unwrap();
    app.clock.advance(chrono::Duration::hours(2));
    assert_code(
        app.refresh(&last.refresh_token).await,
        Code::Unauthenticated,
    );
}

/// Expired and revoked rows go once due; a live session, a pending outbox
/// event and recent audit events stay.
async fn pruning_deletes_what_is_due_and_nothing_live(backend: Backend) {
    use chrono::Duration;
    let app = spawn_app(backend).await;
    let stores = auth_service::storage::connect(&app.db_url).await.unwrap();
    let email = unique_email();
    let user = app.register(&email, PASSWORD).await.unwrap().user_id;
    let gone = app.login(&email, PASSWORD).await.unwrap();
    let live = app.login(&email, PASSWORD).await.unwrap();
    app.logout(&gone.refresh_token).await.unwrap();
    assert_code(
        app.login(&unique_email(), "wrong").await,
        Code::Unauthenticated,
    );
    let pending = platform::sql!(read(&stores), SqlOutbox::backlog()).unwrap();
    assert!(pending >= 1, "the registration waits for the User Service");

    let pruner = &app.handle.pruner;
    assert_eq!(pruner.prune_once().await.unwrap(), Default::default());

    // Two hours on: the revoked session can have no valid token left.
    app.clock.advance(Duration::hours(2));
    let pruned = pruner.prune_once().await.unwrap();
    assert_eq!((pruned.sessions, pruned.throttle_counters), (1, 0));
    // Its refresh token, not yet expired, went with it.
    let hash = auth_service::crypto::refresh::parse(&gone.refresh_token.clone().into()).unwrap();
    let left = platform::sql!(read(&stores), SessionSql::refresh_token_session(&hash));
    assert_eq!(left.unwrap(), None);
    let live = app
        .refresh(&live.refresh_token)
        .await
        .expect("a live session stays");

    // A day on: the throttle counters are forgotten.
    app.clock.advance(Duration::hours(25));
    assert!(pruner.prune_once().await.unwrap().throttle_counters >= 1);
    app.refresh(&live.refresh_token).await.expect("still live");

    // A year on: the session is past its lifetime and the audit past retention;
    // the undelivered outbox event is still owed to the User Service.
    app.clock.advance(Duration::days(366));
    let pruned = pruner.prune_once().await.unwrap();
    assert!(
        pruned.sessions >= 1 && pruned.refresh_tokens >= 1,
        "{pruned:?}"
    );
    assert!(pruned.audit_events >= 1, "{pruned:?}");
    assert_eq!(pruned.outbox_events, 0);
    assert_eq!(
        platform::sql!(read(&stores), SqlOutbox::backlog()).unwrap(),
        pending
    );
    let user_id = platform::ids::UserId::parse(&user, "id").unwrap();
    assert!(
        platform::sql!(read(&stores), SessionSql::list_sessions(user_id, None, 10))
            .unwrap()
            .is_empty()
    );
    assert!(
        platform::sql!(read(&stores), IdentitySql::identity_by_id(user_id))
            .unwrap()
            .is_some()
    );
}

/// Registers a fresh email as a client a trusted gateway forwards.
async fn register_from(
    mut grpc: identity_proto::auth::v1::auth_service_client::AuthServiceClient<
        tonic::transport::Channel,
    >,
    forwarded_for: &'static str,
) -> Result<(), tonic::Status> {
    let mut r = tonic::Request::new(pb::RegisterRequest {
        email: unique_email(),
        password: PASSWORD.into(),
        display_name: String::new(),
    });
    r.metadata_mut()
        .insert("x-forwarded-for", forwarded_for.parse().unwrap());
    grpc.register(r).await.map(drop)
}

/// One address fires 60 registrations at once (each would cost a hash): 20 a
/// minute get through, the rest are refused before hashing, and someone else's
/// login meanwhile succeeds.
async fn a_registration_flood_from_one_address_leaves_logins_alone(backend: Backend) {
    let app = spawn_app(backend).await;
    let gateway = spawn_replica(&app, |s| s.trusted_proxies = "127.0.0.0/8".into()).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let flood: Vec<_> = (0..60)
        .map(|_| {
            let grpc = gateway.grpc.clone();
            tokio::spawn(register_from(grpc, "203.0.113.9"))
        })
        .collect();
    login_via(&gateway, &email, PASSWORD, &["198.51.100.20"])
        .await
        .expect("a login from elsewhere goes through the flood");
    let (mut registered, mut refused) = (0, 0);
    for f in flood {
        match f.await.unwrap() {
            Ok(()) => registered += 1,
            Err(s) if s.code() == Code::ResourceExhausted => refused += 1,
            Err(s) => panic!("unexpected {s:?}"),
        }
    }
    assert_eq!((registered, refused), (20, 40));
    // A minute later the address may register again.
    app.clock.advance(chrono::Duration::seconds(61));
    register_from(gateway.grpc.clone(), "203.0.113.9")
        .await
        .unwrap();
}
