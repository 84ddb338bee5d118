//! Bad input to every RPC, each with the status a caller can act on.

use crate::helpers::{Backend, PASSWORD, assert_code, both_backends, spawn_app, unique_email};
use tonic::Code;

both_backends!(registration_is_validated, login_refuses_without_telling_why);

async fn registration_is_validated(backend: Backend) {
    let app = spawn_app(backend).await;
    let cases: Vec<(String, String, &str)> = vec![
        (String::new(), PASSWORD.into(), "email: is required"),
        (
            format!("{}@example.com", "a".repeat(250)),
            PASSWORD.into(),
            "email: must be at most",
        ),
        (
            "not-an-email".into(),
            PASSWORD.into(),
            "email: must be an email",
        ),
        (
            "a@b".into(),
            PASSWORD.into(),
            "email: has an invalid domain",
        ),
        (
            unique_email(),
            "short".into(),
            "password: must be at least 8",
        ),
        (
            unique_email(),
            "x".repeat(129),
            "password: must be at most 128",
        ),
        (unique_email(), "password1".into(), "commonly used"),
        (unique_email(), "Iloveyou1".into(), "commonly used"),
    ];
    for (email, password, expected) in cases {
        let msg = assert_code(app.register(&email, &password).await, Code::InvalidArgument);
        assert!(msg.contains(expected), "{expected:?} not in {msg:?}");
    }
    let long_name = app
        .grpc
        .clone()
        .register(identity_proto::auth::v1::RegisterRequest {
            email: unique_email(),
            password: PASSWORD.into(),
            display_name: "n".repeat(101),
        })
        .await;
    assert_code(long_name, Code::InvalidArgument);

    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let msg = assert_code(app.register(&email, PASSWORD).await, Code::AlreadyExists);
    assert!(msg.contains("already exists"), "{msg}");
    assert_code(
        app.register(&email.to_uppercase(), PASSWORD).await,
        Code::AlreadyExists,
    );
    assert_code(
        app.register(&format!("  {email} "), PASSWORD).await,
        Code::AlreadyExists,
    );

    // A message far over the size limit is refused before it is parsed.
    let huge = app.register(&"a".repeat(100_000), PASSWORD).await;
    assert_code(huge, Code::OutOfRange);
}

async fn login_refuses_without_telling_why(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let wrong = assert_code(
        app.login(&email, "wrong password!").await,
        Code::Unauthenticated,
    );
    let unknown = assert_code(
        app.login(&unique_email(), PASSWORD).await,
        Code::Unauthenticated,
    );
    assert_eq!(
        wrong, unknown,
        "unknown email and wrong password must look the same"
    );
    assert_code(app.login("", PASSWORD).await, Code::InvalidArgument);
    assert_code(app.login(&email, "").await, Code::InvalidArgument);
    assert_code(
        app.login(&email, &"x".repeat(1000)).await,
        Code::InvalidArgument,
    );

    assert_code(app.refresh("").await, Code::InvalidArgument);
    assert_code(app.refresh(&"r".repeat(600)).await, Code::InvalidArgument);
    assert_code(app.refresh("garbage").await, Code::Unauthenticated);
    assert_code(app.refresh(&"A".repeat(43)).await, Code::Unauthenticated);
    assert_code(app.logout("").await, Code::InvalidArgument);
    app.logout("garbage")
        .await
        .expect("logout of an unknown token reveals nothing");
    assert_code(app.validate("").await, Code::InvalidArgument);
}
