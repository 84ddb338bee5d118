//! Input an attacker controls before any authentication: every spelling of an
//! email address is one canonical address (one account, one mailbox), and a
//! client id that breaks the client-id rules is unknown credentials at every
//! entry point, never looked up and never stored.

use crate::helpers::{Backend, PASSWORD, TestApp, assert_code, bearer, both_backends, spawn_app};
use crate::webhook::spawn_notifying;
use identity_proto::auth::v1 as pb;
use tonic::Code;

both_backends!(
    confusable_email_spellings_are_one_account,
    unicode_domains_are_stored_and_mailed_in_ascii,
    malformed_client_ids_are_unauthenticated_and_never_stored,
    control_characters_in_filters_and_reasons_are_invalid_arguments,
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

/// Client ids no account can have: too long, or holding line breaks (CR/LF,
/// NEL, U+2028, U+2029), NUL, white space or percent-escapes of them.
fn hostile_client_ids() -> Vec<String> {
    vec![
        "a".repeat(60_000),
        "sa-x".repeat(40), // 160 characters: past the bound, within the header bound
        "sa-x\r\nservice_token.issued forged".into(),
        "sa-x\u{85}forged".into(),
        "sa-x\u{2028}forged".into(),
        "sa-x\u{2029}forged".into(),
        "sa-x\0forged".into(),
        "sa-x forged".into(),
        "sa-x%0D%0Aforged".into(),
        "sa-x%00forged".into(),
        String::new(),
    ]
}

async fn malformed_client_ids_are_unauthenticated_and_never_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let (gateway_id, gateway_secret, _) = app.service_account(&["gateway"]).await;
    let ada = app.new_session().await;
    let http = reqwest::Client::new();
    let introspect = |id: &str, secret: &str| {
        http.post(format!("{}/oauth2/introspect", app.http))
            .basic_auth(id, Some(secret))
            .form(&[("token", ada.access_token.as_str())])
            .send()
    };
    let issue = |id: &str| {
        let mut grpc = app.grpc.clone();
        let r = pb::IssueServiceTokenRequest {
            client_id: id.into(),
            client_secret: "any secret at all".into(),
        };
        async move { grpc.issue_service_token(r).await }
    };
    for id in hostile_client_ids() {
        // The same answer as for an unknown client (on PostgreSQL a NUL was a 500).
        let refused = introspect(&id, &gateway_secret).await.unwrap();
        assert_eq!(refused.status(), 401, "{:?}", &id[..id.len().min(40)]);
        assert_eq!(
            refused.headers()["www-authenticate"],
            r#"Basic realm="introspection""#
        );
        let message = assert_code(issue(&id).await, Code::Unauthenticated);
        assert_eq!(message, "invalid client id or secret");
    }
    // A well-formed id of no account is refused alike, and recorded.
    let unknown = "sa-NoSuchAccount0";
    assert_eq!(introspect(unknown, "x").await.unwrap().status(), 401);
    assert_code(issue(unknown).await, Code::Unauthenticated);
    assert_eq!(
        assert_code(issue(unknown).await, Code::Unauthenticated),
        "invalid client id or secret"
    );
    // The real client still works.
    let active = introspect(&gateway_id, &gateway_secret).await.unwrap();
    assert_eq!(active.status(), 200);

    let refusals = audit_events(&app, &admin, "service_token.refused").await;
    assert!(
        refusals.iter().any(|e| e.subject == unknown),
        "an unknown client id is audited: {refusals:?}"
    );
    for e in &refusals {
        assert_eq!(e.subject, unknown, "only the well-formed id is recorded");
    }
    // And nothing in the whole log is unbounded or holds a line break.
    for e in audit_events(&app, &admin, "").await {
        for field in [&e.kind, &e.actor_id, &e.subject, &e.client_address]
            .into_iter()
            .chain(e.details.values())
        {
            assert!(field.chars().count() <= 256, "{e:?}");
            assert!(!field.contains("forged"), "{e:?}");
            assert!(
                !field
                    .chars()
                    .any(|c| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}')),
                "{e:?}"
            );
        }
    }
}

/// Text that PostgreSQL cannot hold (NUL) or that would forge a line is refused
/// at the edge, on both backends alike (on PostgreSQL a NUL was INTERNAL).
async fn control_characters_in_filters_and_reasons_are_invalid_arguments(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let victim = app.new_session().await;
    for bad in ["x\0", "x\r\nforged", "x\u{85}"] {
        for (kind, involving) in [(bad, ""), ("", bad)] {
            let listed = app
                .grpc
                .clone()
                .list_audit_events(bearer(
                    pb::ListAuditEventsRequest {
                        kind: kind.into(),
                        involving: involving.into(),
                        ..Default::default()
                    },
                    &admin,
                ))
                .await;
            assert_code(listed, Code::InvalidArgument);
        }
        let disabled = app
            .grpc
            .clone()
            .disable_user(bearer(
                pb::DisableUserRequest {
                    user_id: victim.user_id.clone(),
                    reason: bad.into(),
                    purged: false,
                },
                &admin,
            ))
            .await;
        assert_code(disabled, Code::InvalidArgument);
    }
    app.validate(&victim.access_token).await.unwrap();
}
