//! Input an attacker controls before any authentication: every spelling of an
//! email address is one canonical address (one account, one mailbox).

use crate::helpers::{Backend, PASSWORD, TestApp, assert_code, bearer, both_backends};
use crate::webhook::spawn_notifying;
use identity_proto::auth::v1 as pb;
use tonic::Code;

both_backends!(
    confusable_email_spellings_are_one_account,
    unicode_domains_are_stored_and_mailed_in_ascii,
);

/// A fresh local part, so tests on one database never collide.
fn local() -> String {
    format!("alice-{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// `s` in fullwidth forms (U+FF01..): `ｅｘａｍｐｌｅ．ｃｏｍ`.
fn fullwidth(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            '!'..='~' => char::from_u32(c as u32 + 0xFEE0).unwrap(),
            c => c,
        })
        .collect()
}

async fn change_email(
    app: &TestApp,
    token: &str,
    new_email: &str,
) -> Result<pb::ChangeEmailResponse, tonic::Status> {
    app.grpc
        .clone()
        .change_email(bearer(
            pb::ChangeEmailRequest {
                new_email: new_email.into(),
                password: PASSWORD.into(),
            },
            token,
        ))
        .await
        .map(tonic::Response::into_inner)
}

async fn audit_events(app: &TestApp, admin: &str, kind: &str) -> Vec<pb::AuditEvent> {
    app.grpc
        .clone()
        .list_audit_events(bearer(
            pb::ListAuditEventsRequest {
                kind: kind.into(),
                page_size: 500,
                ..Default::default()
            },
            admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .events
}

async fn confusable_email_spellings_are_one_account(backend: Backend) {
    let (app, _hooks) = spawn_notifying(backend, |_| {}).await;
    let alice = format!("{}@example.com", local());
    let registered = app.register(&alice, PASSWORD).await.unwrap();
    for spelling in [
        alice.replace("example.com", &fullwidth("example.com")),
        alice.replace("example.com", &format!("{}.com", fullwidth("example"))),
        alice.replace("example.com", "ＥＸＡＭＰＬＥ。com"),
        alice.to_uppercase(),
    ] {
        assert_code(app.register(&spelling, PASSWORD).await, Code::AlreadyExists);
        // Every spelling logs in to the one account.
        let login = app.login(&spelling, PASSWORD).await.unwrap();
        assert_eq!(login.user_id, registered.user_id, "{spelling:?}");
    }

    // Another user cannot move onto Alice's mailbox by spelling it differently.
    let bob_email = format!("{}@example.org", local());
    app.register(&bob_email, PASSWORD).await.unwrap();
    let session = app.login(&bob_email, PASSWORD).await.unwrap();
    let fullwidth_alice = alice.replace("example.com", &fullwidth("example.com"));
    assert_code(
        change_email(&app, &session.access_token, &fullwidth_alice).await,
        Code::AlreadyExists,
    );

    // A non-ASCII local part is refused, naming the field.
    let refused = assert_code(
        app.register(&format!("ａ{}@example.com", local()), PASSWORD)
            .await,
        Code::InvalidArgument,
    );
    assert!(
        refused.starts_with("email:") && refused.contains("ASCII"),
        "{refused}"
    );
    let refused = assert_code(
        change_email(&app, &session.access_token, "jösé@example.com").await,
        Code::InvalidArgument,
    );
    assert!(refused.starts_with("new_email:"), "{refused}");
}

async fn unicode_domains_are_stored_and_mailed_in_ascii(backend: Backend) {
    let (app, hooks) = spawn_notifying(backend, |_| {}).await;
    let admin = app.admin_token().await;
    let name = local();
    let unicode = format!("{name}@Bücher.example");
    let ascii = format!("{name}@xn--bcher-kva.example");
    let registered = app.register(&unicode, PASSWORD).await.unwrap();
    // The verification is mailed to the ASCII form (the receiver matches it exactly).
    hooks
        .wait_for("identity.email_verification.requested", &ascii, 1)
        .await;
    assert!(
        hooks
            .deliveries()
            .iter()
            .all(|d| d.event["data"]["email"].as_str().is_some_and(str::is_ascii)),
        "a notification went out with a non-ASCII address"
    );
    // Either spelling reaches the one account; the other is taken.
    for spelling in [&unicode, &ascii] {
        let login = app.login(spelling, PASSWORD).await.unwrap();
        assert_eq!(login.user_id, registered.user_id);
        assert_code(app.register(spelling, PASSWORD).await, Code::AlreadyExists);
    }
    // What is stored is the ASCII form: a failed login records it as the subject.
    let _ = app.login(&unicode, "not the password").await;
    let failed = audit_events(&app, &admin, "login.failed").await;
    assert!(failed.iter().any(|e| e.subject == ascii), "{failed:?}");
    assert!(failed.iter().all(|e| e.subject.is_ascii()), "{failed:?}");

    // Moving to a Unicode address mails, and later stores, its ASCII form.
    let session = app.login(&ascii, PASSWORD).await.unwrap();
    let new_name = local();
    change_email(
        &app,
        &session.access_token,
        &format!("{new_name}@ｂüｃｈｅｒ.example"),
    )
    .await
    .unwrap();
    hooks
        .wait_for(
            "identity.email_change.requested",
            &format!("{new_name}@xn--bcher-kva.example"),
            1,
        )
        .await;
}
