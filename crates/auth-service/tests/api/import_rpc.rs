//! ImportIdentities: the CLI's import over a client stream, for holders of
//! `identities:import` (the `admin` role); lines numbered across messages,
//! failures reported by number and capped, a re-run idempotent, the call
//! audited, and a message too large or too full refused as the caller's
//! mistake.

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_code, bearer, both_backends, spawn_app, unique_email,
};
use identity_proto::auth::v1 as pb;
use tonic::Code;

both_backends!(
    an_admin_imports_over_the_rpc_and_a_rerun_changes_nothing,
    importing_needs_identities_import,
    a_message_too_large_or_too_full_is_refused,
    failures_past_a_thousand_are_counted_not_listed,
    imports_running_at_once_are_bounded,
);

/// bcrypt of [`PASSWORD`] (made by the reference implementation; see import.rs).
const BCRYPT: &str = "$2b$05$z0Z5tr4U6ddWoYLTFQhFduUykitdTYyqyhH6plQ7eaqwKI8PIJGPy";
const HASHED_PASSWORD: &str = "correct horse battery staple";

/// Streams `messages` (each a message's lines) as the bearer of `token`.
async fn import(
    app: &TestApp,
    token: Option<&str>,
    messages: Vec<Vec<String>>,
) -> Result<pb::ImportIdentitiesResponse, tonic::Status> {
    let stream = tokio_stream::iter(
        messages
            .into_iter()
            .map(|lines| pb::ImportIdentitiesRequest { lines }),
    );
    let request = match token {
        Some(token) => bearer(stream, token),
        None => tonic::Request::new(stream),
    };
    app.grpc
        .clone()
        .import_identities(request)
        .await
        .map(tonic::Response::into_inner)
}

fn failures(r: &pb::ImportIdentitiesResponse) -> Vec<(i64, &str)> {
    r.failures
        .iter()
        .map(|f| (f.line, f.reason.as_str()))
        .collect()
}

async fn an_admin_imports_over_the_rpc_and_a_rerun_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let (hashed, bare) = (unique_email(), unique_email());
    let messages = vec![
        vec![
            serde_json::json!({"email": hashed, "password_hash": BCRYPT, "external_id": "old-1"})
                .to_string(),
            "{not json".to_owned(),
        ],
        vec![],
        vec![
            String::new(),
            serde_json::json!({"email": bare}).to_string(),
        ],
    ];
    let first = import(&app, Some(&admin), messages.clone()).await.unwrap();
    assert_eq!((first.imported, first.skipped, first.failed), (2, 0, 1));
    // Line 2 of the whole stream, whatever message it came in.
    let reasons = failures(&first);
    assert_eq!(reasons.len(), 1, "{reasons:?}");
    assert_eq!(reasons[0].0, 2);
    assert!(reasons[0].1.starts_with("malformed JSON"), "{reasons:?}");
    assert_eq!(first.failures_omitted, 0);
    app.login(&hashed, HASHED_PASSWORD).await.unwrap();
    assert_code(app.login(&bare, PASSWORD).await, Code::Unauthenticated);

    let again = import(&app, Some(&admin), messages).await.unwrap();
    assert_eq!((again.imported, again.skipped, again.failed), (0, 2, 1));
    assert_eq!(failures(&again), failures(&first));

    // Each call is audited with its actor and counts.
    let events = app.audit_events(&admin, "users.imported").await;
    let admin_id = app.validate(&admin).await.unwrap().user_id;
    let counts: Vec<(&str, &str, &str, &str)> = events
        .iter()
        .map(|e| {
            assert_eq!(e.actor_id, admin_id);
            let d = |k: &str| e.details.get(k).map(String::as_str).unwrap_or_default();
            (d("imported"), d("skipped"), d("failed"), d("completed"))
        })
        .collect();
    // Newest first.
    assert_eq!(counts, [("0", "2", "1", "true"), ("2", "0", "1", "true")]);
}

async fn importing_needs_identities_import(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let user = app.new_session().await.access_token;
    let (_, _, service) = app.service_account(&[]).await;
    let email = unique_email();
    let line = || vec![vec![serde_json::json!({"email": email}).to_string()]];

    assert_code(import(&app, None, line()).await, Code::Unauthenticated);
    assert_code(
        import(&app, Some("not-a-token"), line()).await,
        Code::Unauthenticated,
    );
    let denied = assert_code(
        import(&app, Some(&user), line()).await,
        Code::PermissionDenied,
    );
    assert!(denied.contains("identities:import"), "{denied}");
    assert_code(
        import(&app, Some(&service), line()).await,
        Code::PermissionDenied,
    );
    // Refused before a line was read: nothing came in.
    let nobody = app.login(&email, PASSWORD).await;
    assert_code(nobody, Code::Unauthenticated);

    // The admin role names the permission (the migration), and any role
    // granting it lets its holder import.
    let roles = app
        .grpc
        .clone()
        .list_roles(bearer(pb::ListRolesRequest {}, &admin))
        .await
        .unwrap()
        .into_inner()
        .roles;
    let admin_role = roles.iter().find(|r| r.name == "admin").unwrap();
    assert!(
        admin_role
            .permissions
            .iter()
            .any(|p| p == "identities:import")
    );
    app.grpc
        .clone()
        .create_role(bearer(
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: "importer".into(),
                    permissions: vec!["identities:import".into()],
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .unwrap();
    let importer = app
        .user_with_roles(&["user", "importer"])
        .await
        .access_token;
    let done = import(&app, Some(&importer), line()).await.unwrap();
    assert_eq!(done.imported, 1);
}

async fn a_message_too_large_or_too_full_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let ok = || serde_json::json!({"email": unique_email()}).to_string();

    // One line over the message limit (64 KiB), in the second message.
    let huge = format!(
        r#"{{"email": "a@example.com", "display_name": "{}"}}"#,
        "x".repeat(70_000)
    );
    let refused = import(&app, Some(&admin), vec![vec![ok()], vec![huge]]).await;
    let why = assert_code(refused, Code::InvalidArgument);
    assert!(why.contains("message 2 is over the limit"), "{why}");
    assert!(why.contains("lines already imported are skipped"), "{why}");

    // More lines than a batch in one message.
    let full: Vec<String> = (0..501).map(|_| ok()).collect();
    let refused = import(&app, Some(&admin), vec![full]).await;
    let why = assert_code(refused, Code::InvalidArgument);
    assert!(why.contains("message 1 carries 501 lines"), "{why}");

    // Neither call committed a batch; a message of 500 lines is fine.
    let full: Vec<String> = (0..500).map(|_| ok()).collect();
    let done = import(&app, Some(&admin), vec![full]).await.unwrap();
    assert_eq!((done.imported, done.failed), (500, 0));
}

async fn failures_past_a_thousand_are_counted_not_listed(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let bad = |n: usize| (0..n).map(|_| "[]".to_owned()).collect::<Vec<_>>();
    let done = import(&app, Some(&admin), vec![bad(500), bad(500), bad(5)])
        .await
        .unwrap();
    assert_eq!((done.imported, done.failed), (0, 1005));
    assert_eq!(done.failures.len(), 1000);
    assert_eq!(done.failures_omitted, 5);
    assert_eq!(done.failures.last().map(|f| f.line), Some(1000));
}

async fn imports_running_at_once_are_bounded(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    // Streams held open: each is an import running until its sender is dropped.
    let open = |n: usize| {
        let (lines, rx) = tokio::sync::mpsc::channel::<pb::ImportIdentitiesRequest>(1);
        let mut grpc = app.grpc.clone();
        let request = bearer(tokio_stream::wrappers::ReceiverStream::new(rx), &admin);
        let email = format!("held-{n}-{}", unique_email());
        (lines, email, async move {
            grpc.import_identities(request).await
        })
    };
    let (first, first_email, first_call) = open(1);
    let (second, _, second_call) = open(2);
    let first_call = tokio::spawn(first_call);
    let second_call = tokio::spawn(second_call);
    // Both have started once a line of each has gone in.
    for (sender, n) in [(&first, 1), (&second, 2)] {
        let line = serde_json::json!({ "email": format!("started-{n}-{}", unique_email()) });
        let message = pb::ImportIdentitiesRequest {
            lines: vec![line.to_string()],
        };
        sender.send(message).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let third = import(&app, Some(&admin), vec![vec![]]).await;
    let msg = assert_code(third, Code::ResourceExhausted);
    assert!(msg.contains("retry when one ends"), "{msg}");
    // One ends: the next runs, and the ones held open lost nothing.
    let last = serde_json::json!({ "email": first_email }).to_string();
    first
        .send(pb::ImportIdentitiesRequest { lines: vec![last] })
        .await
        .unwrap();
    drop(first);
    let report = first_call.await.unwrap().unwrap().into_inner();
    assert_eq!(report.imported, 2, "{report:?}");
    let next = import(&app, Some(&admin), vec![vec![]]).await.unwrap();
    assert_eq!(next.imported, 0);
    drop(second);
    assert_eq!(second_call.await.unwrap().unwrap().into_inner().imported, 1);
}
