//! The session life cycle: register → login → validate → refresh → reuse → logout.

use crate::helpers::{
    Backend, PASSWORD, assert_code, both_backends, spawn_app, spawn_replica, unique_email,
};
use std::time::{Duration, Instant};
use tonic::Code;

both_backends!(
    full_session_life_cycle,
    logout_is_seen_by_another_replica_within_a_second,
    disabling_a_user_ends_every_session,
);

async fn full_session_life_cycle(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    let user_id = app.register(&email, PASSWORD).await.unwrap().user_id;
    uuid::Uuid::parse_str(&user_id).expect("user_id is a UUID");

    // Email is case-insensitive at login.
    let login = app.login(&email.to_uppercase(), PASSWORD).await.unwrap();
    assert_eq!(login.user_id, user_id);
    assert_eq!(login.token_type, "Bearer");
    assert_eq!(login.expires_in, 15 * 60);
    assert!(login.refresh_expires_at.is_some());

    let v = app.validate(&login.access_token).await.unwrap();
    assert_eq!(v.user_id, user_id);
    assert_eq!(v.session_id, login.session_id);
    assert_eq!(v.roles, vec!["user".to_owned()]);
    assert!(v.expires_at.unwrap().seconds > v.issued_at.unwrap().seconds);

    let refreshed = app.refresh(&login.refresh_token).await.unwrap();
    assert_eq!(refreshed.session_id, login.session_id);
    assert_ne!(refreshed.refresh_token, login.refresh_token);
    assert_ne!(refreshed.access_token, login.access_token);
    let v2 = app.validate(&refreshed.access_token).await.unwrap();
    assert_eq!(v2.session_id, login.session_id);

    // The old refresh token again: theft assumed, the whole session dies.
    let msg = assert_code(
        app.refresh(&login.refresh_token).await,
        Code::Unauthenticated,
    );
    assert!(msg.contains("already used"), "{msg}");
    assert_code(
        app.validate(&refreshed.access_token).await,
        Code::Unauthenticated,
    );
    assert_code(
        app.validate(&login.access_token).await,
        Code::Unauthenticated,
    );
    assert_code(
        app.refresh(&refreshed.refresh_token).await,
        Code::Unauthenticated,
    );

    // A new session, then logout.
    let second = app.login(&email, PASSWORD).await.unwrap();
    app.validate(&second.access_token).await.unwrap();
    app.logout(&second.refresh_token).await.unwrap();
    let msg = assert_code(
        app.validate(&second.access_token).await,
        Code::Unauthenticated,
    );
    assert!(msg.contains("revoked"), "{msg}");
    assert_code(
        app.refresh(&second.refresh_token).await,
        Code::Unauthenticated,
    );
    // Logging out twice is harmless.
    app.logout(&second.refresh_token).await.unwrap();
}

async fn logout_is_seen_by_another_replica_within_a_second(backend: Backend) {
    let a = spawn_app(backend).await;
    let b = spawn_replica(&a, |_| {}).await;
    let session = a.new_session().await;
    b.validate(&session.access_token)
        .await
        .expect("replica B accepts A's token");

    a.logout(&session.refresh_token).await.unwrap();
    let started = Instant::now();
    while b.validate(&session.access_token).await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "replica B still accepts a revoked token"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn disabling_a_user_ends_every_session(backend: Backend) {
    use identity_proto::auth::v1::DisableUserRequest;
    let app = spawn_app(backend).await;
    let email = unique_email();
    let user_id = app.register(&email, PASSWORD).await.unwrap().user_id;
    let one = app.login(&email, PASSWORD).await.unwrap();
    let two = app.login(&email, PASSWORD).await.unwrap();
    let disable = |auth: Option<String>, user_id: String| {
        let mut grpc = app.grpc.clone();
        async move {
            let mut req = tonic::Request::new(DisableUserRequest {
                user_id,
                reason: "user deleted".into(),
                purged: false,
            });
            if let Some(a) = auth {
                req.metadata_mut()
                    .insert("authorization", a.parse().unwrap());
            }
            grpc.disable_user(req).await
        }
    };
    assert_code(disable(None, user_id.clone()).await, Code::Unauthenticated);
    let as_user = Some(format!("Bearer {}", one.access_token));
    assert_code(
        disable(as_user, user_id.clone()).await,
        Code::PermissionDenied,
    );
    let (_, _, service_token) = app.service_account(&["identity-service"]).await;
    let as_service = Some(format!("Bearer {service_token}"));
    let (_, _, weak_token) = app.service_account(&[]).await;
    assert_code(
        disable(Some(format!("Bearer {weak_token}")), user_id.clone()).await,
        Code::PermissionDenied,
    );
    assert_code(
        disable(as_service.clone(), "not-a-uuid".into()).await,
        Code::InvalidArgument,
    );

    disable(as_service.clone(), user_id.clone()).await.unwrap();
    disable(as_service, user_id).await.expect("idempotent");
    assert_code(app.validate(&one.access_token).await, Code::Unauthenticated);
    assert_code(app.validate(&two.access_token).await, Code::Unauthenticated);
    assert_code(app.refresh(&two.refresh_token).await, Code::Unauthenticated);
    let msg = assert_code(app.login(&email, PASSWORD).await, Code::Unauthenticated);
    assert_eq!(msg, "invalid email or password");
}
