//! Bad input to every RPC, each with the status a caller can act on.

use crate::helpers::{
    Backend, PASSWORD, assert_code, bearer, both_backends, spawn_app, unique_email,
};
use identity_proto::auth::v1 as pb;
use tonic::Code;

both_backends!(
    registration_is_validated,
    login_refuses_without_telling_why,
    role_and_account_fields_are_validated
);

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

/// The names, permissions and limits of roles and service accounts, each
/// refused as INVALID_ARGUMENT with the same message as ever.
async fn role_and_account_fields_are_validated(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let mut grpc = app.grpc.clone();
    let role = |name: &str, description: String, permissions: Vec<String>| pb::CreateRoleRequest {
        role: Some(pb::Role {
            name: name.into(),
            description,
            permissions,
            ..Default::default()
        }),
    };
    let name_rule = "must be 2 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter";
    let cases = [
        (
            role("X", String::new(), vec![]),
            format!("role.name: {name_rule}"),
        ),
        (
            role(&"a".repeat(65), String::new(), vec![]),
            format!("role.name: {name_rule}"),
        ),
        (
            role("ok", "d".repeat(201), vec![]),
            "role.description: must be at most 200 characters".into(),
        ),
        (
            role("ok", String::new(), vec!["a:b".into(); 101]),
            "role.permissions: must hold at most 100 permissions".into(),
        ),
        (
            role("ok", String::new(), vec!["Users:Read".into()]),
            r#"role.permissions: "Users:Read" is not a permission such as users:read"#.into(),
        ),
        (
            role("ok", String::new(), vec![format!("a:{}", "b".repeat(100))]),
            format!(
                "role.permissions: {:?} is not a permission such as users:read",
                format!("a:{}", "b".repeat(78))
            ),
        ),
        (
            pb::CreateRoleRequest { role: None },
            "role: is required".into(),
        ),
    ];
    for (request, expected) in cases {
        let msg = assert_code(
            grpc.create_role(bearer(request.clone(), &admin)).await,
            Code::InvalidArgument,
        );
        assert_eq!(msg, expected, "{request:?}");
        let update = pb::UpdateRoleRequest { role: request.role };
        let msg = assert_code(
            grpc.update_role(bearer(update, &admin)).await,
            Code::InvalidArgument,
        );
        assert_eq!(msg, expected);
    }
    // Names are trimmed, permissions sorted and deduplicated.
    let created = grpc
        .create_role(bearer(
            role(
                " tidy ",
                " d ".into(),
                vec!["b:x".into(), " a:y ".into(), "b:x".into()],
            ),
            &admin,
        ))
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_eq!(
        (created.name.as_str(), created.description.as_str()),
        ("tidy", "d")
    );
    assert_eq!(created.permissions, ["a:y", "b:x"]);

    let msg = assert_code(
        grpc.delete_role(bearer(pb::DeleteRoleRequest { name: "-".into() }, &admin))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(msg, format!("name: {name_rule}"));
    let assign = |subject_id: &str, role: &str| pb::AssignRoleRequest {
        subject_id: subject_id.into(),
        role: role.into(),
    };
    let msg = assert_code(
        grpc.assign_role(bearer(assign("users/1", "user"), &admin))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(msg, "subject_id: must be a UUID");
    let id = uuid::Uuid::new_v4().to_string();
    let msg = assert_code(
        grpc.assign_role(bearer(assign(&id, "User"), &admin)).await,
        Code::InvalidArgument,
    );
    assert_eq!(msg, format!("role: {name_rule}"));

    let check = |permission: &str, resource: String| pb::CheckPermissionRequest {
        access_token: admin.clone(),
        permission: permission.into(),
        resource,
    };
    let msg = assert_code(
        grpc.check_permission(check("users", String::new())).await,
        Code::InvalidArgument,
    );
    assert_eq!(
        msg,
        r#"permission: "users" is not a permission such as users:read"#
    );
    let msg = assert_code(
        grpc.check_permission(check("users:read", "r".repeat(257)))
            .await,
        Code::InvalidArgument,
    );
    assert_eq!(msg, "resource: must be at most 256 characters");
    let at_limit = grpc.check_permission(check("users:read", "r".repeat(256)));
    assert!(at_limit.await.unwrap().into_inner().allowed);

    let account = |name: &str, roles: Vec<String>| pb::CreateServiceAccountRequest {
        name: name.into(),
        roles,
    };
    let cases = [
        (account("A", vec![]), format!("name: {name_rule}")),
        (
            account("ok", vec!["user".into(); 101]),
            "roles: must name at most 100 roles".into(),
        ),
        (
            account("ok", vec!["Bad".into()]),
            format!("roles: {name_rule}"),
        ),
    ];
    for (request, expected) in cases {
        let msg = assert_code(
            grpc.create_service_account(bearer(request, &admin)).await,
            Code::InvalidArgument,
        );
        assert_eq!(msg, expected);
    }
}
