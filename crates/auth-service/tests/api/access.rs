//! Access control: the permission matrix of every Auth Service RPC, role changes
//! seen by every replica within a second, service accounts, sessions and
//! password changes.

use crate::helpers::{
    Backend, PASSWORD, TestApp, assert_code, bearer, both_backends, spawn_app, spawn_replica,
    unique_email,
};
use identity_proto::auth::v1 as pb;
use std::time::{Duration, Instant};
use tonic::Code;

both_backends!(
    permission_matrix,
    role_changes_reach_every_replica_within_a_second,
    service_account_token_flow,
    sessions_and_password_change,
    session_lists_are_paged,
);

/// Calls `rpc` as the bearer of `token` with harmless arguments.
async fn call(
    app: &TestApp,
    rpc: &str,
    token: Option<&str>,
    other_user: &str,
) -> Result<(), tonic::Status> {
    fn req<T>(m: T, token: Option<&str>) -> tonic::Request<T> {
        match token {
            Some(t) => bearer(m, t),
            None => tonic::Request::new(m),
        }
    }
    let mut c = app.grpc.clone();
    let role_name = format!("r{}", &uuid::Uuid::new_v4().simple().to_string()[..10]);
    let role = || {
        Some(pb::Role {
            name: role_name.clone(),
            permissions: vec!["things:read".into()],
            ..Default::default()
        })
    };
    let missing = uuid::Uuid::now_v7().to_string();
    let r = match rpc {
        "CreateRole" => c
            .create_role(req(pb::CreateRoleRequest { role: role() }, token))
            .await
            .map(drop),
        "ListRoles" => c
            .list_roles(req(pb::ListRolesRequest {}, token))
            .await
            .map(drop),
        "UpdateRole" => c
            .update_role(req(pb::UpdateRoleRequest { role: role() }, token))
            .await
            .map(drop),
        "DeleteRole" => c
            .delete_role(req(
                pb::DeleteRoleRequest {
                    name: role_name.clone(),
                },
                token,
            ))
            .await
            .map(drop),
        "AssignRole" => c
            .assign_role(req(
                pb::AssignRoleRequest {
                    subject_id: other_user.into(),
                    role: "user".into(),
                },
                token,
            ))
            .await
            .map(drop),
        "UnassignRole" => c
            .unassign_role(req(
                pb::UnassignRoleRequest {
                    subject_id: other_user.into(),
                    role: "nothing".into(),
                },
                token,
            ))
            .await
            .map(drop),
        "ListSubjectRoles(other)" => c
            .list_subject_roles(req(
                pb::ListSubjectRolesRequest {
                    subject_id: other_user.into(),
                },
                token,
            ))
            .await
            .map(drop),
        "ListSubjectRoles(self)" => c
            .list_subject_roles(req(pb::ListSubjectRolesRequest::default(), token))
            .await
            .map(drop),
        "CreateServiceAccount" => c
            .create_service_account(req(
                pb::CreateServiceAccountRequest {
                    name: role_name.clone(),
                    roles: vec![],
                },
                token,
            ))
            .await
            .map(drop),
        "ListServiceAccounts" => c
            .list_service_accounts(req(pb::ListServiceAccountsRequest {}, token))
            .await
            .map(drop),
        "DeleteServiceAccount" => c
            .delete_service_account(req(pb::DeleteServiceAccountRequest { id: missing }, token))
            .await
            .map(drop),
        "ListSessions(self)" => c
            .list_sessions(req(pb::ListSessionsRequest::default(), token))
            .await
            .map(drop),
        "ListSessions(other)" => c
            .list_sessions(req(
                pb::ListSessionsRequest {
                    user_id: other_user.into(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .map(drop),
        "RevokeOtherSessions(other)" => c
            .revoke_other_sessions(req(
                pb::RevokeOtherSessionsRequest {
                    user_id: other_user.into(),
                },
                token,
            ))
            .await
            .map(drop),
        "ListAuditEvents" => c
            .list_audit_events(req(pb::ListAuditEventsRequest::default(), token))
            .await
            .map(drop),
        "DisableUser" => c
            .disable_user(req(
                pb::DisableUserRequest {
                    user_id: missing,
                    reason: String::new(),
                    purged: false,
                },
                token,
            ))
            .await
            .map(drop),
        other => panic!("unknown rpc {other}"),
    };
    // NOT_FOUND and FAILED_PRECONDITION mean the caller got past authorization.
    match r {
        Err(s) if matches!(s.code(), Code::NotFound | Code::FailedPrecondition) => Ok(()),
        other => other,
    }
}

#[derive(Clone, Copy, Debug)]
enum Expect {
    Ok,
    Unauthenticated,
    Denied,
}

async fn permission_matrix(backend: Backend) {
    use Expect::{Denied, Ok as Allowed, Unauthenticated as Anon};
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let user = app.new_session().await;
    let other = app.new_session().await;
    let (_, _, bare_service) = app.service_account(&[]).await;
    let (_, _, identity_service) = app.service_account(&["identity-service"]).await;
    let callers: [(&str, Option<&str>); 5] = [
        ("anonymous", None),
        ("user", Some(&user.access_token)),
        ("admin", Some(&admin)),
        ("service without role", Some(&bare_service)),
        ("identity service", Some(&identity_service)),
    ];
    // Columns follow `callers`.
    let matrix: &[(&str, [Expect; 5])] = &[
        ("CreateRole", [Anon, Denied, Allowed, Denied, Denied]),
        // `roles:read`: a verifier maps roles to permissions with it.
        ("ListRoles", [Anon, Denied, Allowed, Denied, Allowed]),
        ("UpdateRole", [Anon, Denied, Allowed, Denied, Denied]),
        ("DeleteRole", [Anon, Denied, Allowed, Denied, Denied]),
        ("AssignRole", [Anon, Denied, Allowed, Denied, Denied]),
        ("UnassignRole", [Anon, Denied, Allowed, Denied, Denied]),
        (
            "ListSubjectRoles(self)",
            [Anon, Allowed, Allowed, Allowed, Allowed],
        ),
        (
            "ListSubjectRoles(other)",
            [Anon, Denied, Allowed, Denied, Denied],
        ),
        (
            "CreateServiceAccount",
            [Anon, Denied, Allowed, Denied, Denied],
        ),
        (
            "ListServiceAccounts",
            [Anon, Denied, Allowed, Denied, Denied],
        ),
        (
            "DeleteServiceAccount",
            [Anon, Denied, Allowed, Denied, Denied],
        ),
        (
            "ListSessions(self)",
            [Anon, Allowed, Allowed, Allowed, Allowed],
        ),
        (
            "ListSessions(other)",
            [Anon, Denied, Allowed, Denied, Denied],
        ),
        (
            "RevokeOtherSessions(other)",
            [Anon, Denied, Allowed, Denied, Denied],
        ),
        ("ListAuditEvents", [Anon, Denied, Allowed, Denied, Denied]),
        ("DisableUser", [Anon, Denied, Allowed, Denied, Allowed]),
    ];
    for (rpc, expected) in matrix {
        for ((who, token), want) in callers.iter().zip(expected) {
            let got = call(&app, rpc, *token, &other.user_id).await;
            let ok = match (want, &got) {
                (Expect::Ok, Ok(())) => true,
                (Expect::Unauthenticated, Err(s)) => s.code() == Code::Unauthenticated,
                (Expect::Denied, Err(s)) => s.code() == Code::PermissionDenied,
                _ => false,
            };
            assert!(ok, "{rpc} as {who}: expected {want:?}, got {got:?}");
        }
    }
    // CheckPermission answers for any valid token and refuses bad input.
    let check = |token: String, permission: &str, resource: &str| {
        let mut c = app.grpc.clone();
        let (permission, resource) = (permission.to_owned(), resource.to_owned());
        async move {
            c.check_permission(pb::CheckPermissionRequest {
                access_token: token,
                permission,
                resource,
            })
            .await
            .map(tonic::Response::into_inner)
        }
    };
    let own = format!("users/{}", user.user_id);
    assert!(
        check(user.access_token.clone(), "users:write", &own)
            .await
            .unwrap()
            .allowed
    );
    let theirs = check(
        user.access_token.clone(),
        "users:write",
        &format!("users/{}", other.user_id),
    )
    .await
    .unwrap();
    assert!(
        !theirs.allowed && theirs.reason.contains("users:write"),
        "{theirs:?}"
    );
    assert!(
        check(user.access_token.clone(), "users:read", "")
            .await
            .unwrap()
            .allowed
    );
    assert!(
        check(admin.clone(), "anything:at-all", "")
            .await
            .unwrap()
            .allowed
    );
    assert_code(
        check("garbage".into(), "users:read", "").await,
        Code::Unauthenticated,
    );
    assert_code(
        check(user.access_token.clone(), "not a permission", "").await,
        Code::InvalidArgument,
    );
    assert_code(
        check(String::new(), "users:read", "").await,
        Code::InvalidArgument,
    );
}

async fn role_changes_reach_every_replica_within_a_second(backend: Backend) {
    let a = spawn_app(backend).await;
    let b = spawn_replica(&a, |_| {}).await;
    let admin = a.admin_token().await;
    let user = a.new_session().await;
    let mut grpc = a.grpc.clone();
    grpc.create_role(bearer(
        pb::CreateRoleRequest {
            role: Some(pb::Role {
                name: "auditor".into(),
                permissions: vec!["audit:read".into()],
                ..Default::default()
            }),
        },
        &admin,
    ))
    .await
    .unwrap();
    grpc.assign_role(bearer(
        pb::AssignRoleRequest {
            subject_id: user.user_id.clone(),
            role: "auditor".into(),
        },
        &admin,
    ))
    .await
    .unwrap();
    let allowed = |app: &TestApp, token: String| {
        let mut c = app.grpc.clone();
        async move {
            c.check_permission(pb::CheckPermissionRequest {
                access_token: token,
                permission: "audit:read".into(),
                resource: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .allowed
        }
    };
    // The token predates the assignment, yet both replicas honour it within a second.
    for app in [&a, &b] {
        let started = Instant::now();
        while !allowed(app, user.access_token.clone()).await {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "a replica missed the new role"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    let roles = b.validate(&user.access_token).await.unwrap();
    assert!(
        roles.roles.contains(&"auditor".to_owned())
            && roles.permissions.contains(&"audit:read".to_owned())
    );

    grpc.unassign_role(bearer(
        pb::UnassignRoleRequest {
            subject_id: user.user_id.clone(),
            role: "auditor".into(),
        },
        &admin,
    ))
    .await
    .unwrap();
    for app in [&a, &b] {
        let started = Instant::now();
        while allowed(app, user.access_token.clone()).await {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "a replica still grants a removed role"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let v = app.validate(&user.access_token).await.unwrap();
        assert!(!v.roles.contains(&"auditor".to_owned()), "{v:?}");
    }

    // Changing what a role grants also applies at once, token or not.
    grpc.update_role(bearer(
        pb::UpdateRoleRequest {
            role: Some(pb::Role {
                name: "user".into(),
                permissions: vec!["users:read".into(), "audit:read".into()],
                ..Default::default()
            }),
        },
        &admin,
    ))
    .await
    .unwrap();
    for app in [&a, &b] {
        let started = Instant::now();
        while !allowed(app, user.access_token.clone()).await {
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "a replica missed the role's new permission"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Built-in roles stay.
    let del = grpc
        .delete_role(bearer(
            pb::DeleteRoleRequest {
                name: "user".into(),
            },
            &admin,
        ))
        .await;
    let msg = assert_code(del, Code::FailedPrecondition);
    assert_eq!(msg, "user is a built-in role and cannot be deleted");
    let ghost = grpc
        .delete_role(bearer(
            pb::DeleteRoleRequest {
                name: "ghost".into(),
            },
            &admin,
        ))
        .await;
    assert_eq!(assert_code(ghost, Code::NotFound), "no such role: ghost");
    let ghost = grpc
        .assign_role(bearer(
            pb::AssignRoleRequest {
                subject_id: user.user_id.clone(),
                role: "ghost".into(),
            },
            &admin,
        ))
        .await;
    assert_eq!(assert_code(ghost, Code::NotFound), "no such role: ghost");
    // Taking away a role nobody has is done already, whether or not it exists.
    grpc.unassign_role(bearer(
        pb::UnassignRoleRequest {
            subject_id: user.user_id.clone(),
            role: "ghost".into(),
        },
        &admin,
    ))
    .await
    .unwrap();
    let bad = grpc
        .create_role(bearer(
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: "X".into(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await;
    assert_code(bad, Code::InvalidArgument);
    let dup = grpc
        .create_role(bearer(
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: "auditor".into(),
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await;
    let msg = assert_code(dup, Code::AlreadyExists);
    assert_eq!(msg, "role auditor already exists");
    let id = uuid::Uuid::now_v7().to_string();
    let nobody = grpc
        .assign_role(bearer(
            pb::AssignRoleRequest {
                subject_id: id.clone(),
                role: "user".into(),
            },
            &admin,
        ))
        .await;
    let msg = assert_code(nobody, Code::NotFound);
    assert_eq!(msg, format!("no user or service account {id}"));
}

async fn service_account_token_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = app.admin_token().await;
    let mut grpc = app.grpc.clone();
    let created = grpc
        .create_service_account(bearer(
            pb::CreateServiceAccountRequest {
                name: "billing".into(),
                roles: vec!["identity-service".into()],
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    let account = created.account.unwrap();
    assert!(created.client_secret.len() >= 40);
    let issue = |client_id: String, client_secret: String| {
        let mut c = app.grpc.clone();
        async move {
            c.issue_service_token(pb::IssueServiceTokenRequest {
                client_id,
                client_secret,
            })
            .await
            .map(tonic::Response::into_inner)
        }
    };
    let token = issue(account.client_id.clone(), created.client_secret.clone())
        .await
        .unwrap();
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.expires_in, 15 * 60);
    let v = app.validate(&token.access_token).await.unwrap();
    assert_eq!(v.user_id, account.id);
    assert_eq!(v.subject_kind, pb::SubjectKind::ServiceAccount as i32);
    assert!(v.permissions.contains(&"users:disable".to_owned()));
    // A service account's roles change like a user's, its token and all.
    grpc.assign_role(bearer(
        pb::AssignRoleRequest {
            subject_id: account.id.clone(),
            role: "gateway".into(),
        },
        &admin,
    ))
    .await
    .unwrap();
    let v = app.validate(&token.access_token).await.unwrap();
    assert_eq!(v.roles, ["gateway", "identity-service"]);
    assert!(v.permissions.contains(&"tokens:introspect".to_owned()));
    let roles = grpc
        .list_subject_roles(bearer(
            pb::ListSubjectRolesRequest {
                subject_id: account.id.clone(),
            },
            &admin,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(roles.roles, ["gateway", "identity-service"]);

    let msg = assert_code(
        issue(account.client_id.clone(), "wrong".repeat(9)).await,
        Code::Unauthenticated,
    );
    assert_eq!(msg, "invalid client id or secret");
    let unknown = assert_code(
        issue("sa-nobody".into(), created.client_secret.clone()).await,
        Code::Unauthenticated,
    );
    assert_eq!(unknown, msg, "unknown ids and wrong secrets look the same");
    // A malformed client id (here empty) is unknown credentials too.
    let empty = assert_code(
        issue(String::new(), "x".into()).await,
        Code::Unauthenticated,
    );
    assert_eq!(empty, msg);
    let dup = grpc
        .create_service_account(bearer(
            pb::CreateServiceAccountRequest {
                name: "billing".into(),
                roles: vec![],
            },
            &admin,
        ))
        .await;
    let msg = assert_code(dup, Code::AlreadyExists);
    assert_eq!(msg, "service account billing already exists");
    let bad_role = grpc
        .create_service_account(bearer(
            pb::CreateServiceAccountRequest {
                name: "other".into(),
                roles: vec!["ghost".into()],
            },
            &admin,
        ))
        .await;
    let msg = assert_code(bad_role, Code::NotFound);
    assert_eq!(msg, r#"no such role among ["ghost"]"#);

    let listed = grpc
        .list_service_accounts(bearer(pb::ListServiceAccountsRequest {}, &admin))
        .await
        .unwrap()
        .into_inner();
    assert!(listed.accounts.iter().any(|a| a.id == account.id));
    grpc.delete_service_account(bearer(
        pb::DeleteServiceAccountRequest {
            id: account.id.clone(),
        },
        &admin,
    ))
    .await
    .unwrap();
    assert_code(
        app.validate(&token.access_token).await,
        Code::Unauthenticated,
    );
    assert_code(
        issue(account.client_id, created.client_secret).await,
        Code::Unauthenticated,
    );
}

async fn sessions_and_password_change(backend: Backend) {
    let app = spawn_app(backend).await;
    // A replica that trusts this host as its gateway, to see forwarded metadata.
    let gateway = spawn_replica(&app, |s| s.trusted_proxies = "127.0.0.1".into()).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let login_via_gateway = |agent: &'static str| {
        let mut c = gateway.grpc.clone();
        let email = email.clone();
        async move {
            let mut r = tonic::Request::new(pb::LoginRequest {
                email,
                password: PASSWORD.into(),
            });
            r.metadata_mut()
                .insert("x-forwarded-for", "203.0.113.9".parse().unwrap());
            r.metadata_mut()
                .insert("x-forwarded-user-agent", agent.parse().unwrap());
            c.login(r).await.unwrap().into_inner()
        }
    };
    let phone = login_via_gateway("Phone/1.0").await;
    let laptop = login_via_gateway("Laptop/2.0").await;
    let tablet = app.login(&email, PASSWORD).await.unwrap();

    let mut grpc = app.grpc.clone();
    let list = grpc
        .list_sessions(bearer(
            pb::ListSessionsRequest::default(),
            &laptop.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(list.sessions.len(), 3);
    let me = list
        .sessions
        .iter()
        .find(|s| s.current)
        .expect("the current session is marked");
    assert_eq!(
        (
            me.id.as_str(),
            me.client_address.as_str(),
            me.user_agent.as_str()
        ),
        (laptop.session_id.as_str(), "203.0.113.9", "Laptop/2.0")
    );

    // Another user can neither see nor end these sessions.
    let stranger = app.new_session().await;
    let peek = grpc
        .list_sessions(bearer(
            pb::ListSessionsRequest {
                user_id: phone.user_id.clone(),
                ..Default::default()
            },
            &stranger.access_token,
        ))
        .await;
    assert_code(peek, Code::PermissionDenied);
    let kill = grpc
        .revoke_session(bearer(
            pb::RevokeSessionRequest {
                session_id: phone.session_id.clone(),
            },
            &stranger.access_token,
        ))
        .await;
    assert_code(kill, Code::NotFound);

    grpc.revoke_session(bearer(
        pb::RevokeSessionRequest {
            session_id: phone.session_id.clone(),
        },
        &laptop.access_token,
    ))
    .await
    .unwrap();
    assert_code(
        app.validate(&phone.access_token).await,
        Code::Unauthenticated,
    );

    // Changing the password ends every other session.
    let change = |old: &str, new: &str| {
        let mut c = app.grpc.clone();
        let token = laptop.access_token.clone();
        let (old, new) = (old.to_owned(), new.to_owned());
        async move {
            c.change_password(bearer(
                pb::ChangePasswordRequest {
                    old_password: old,
                    new_password: new,
                },
                &token,
            ))
            .await
        }
    };
    assert_code(
        change("not my password", "a brand new passphrase").await,
        Code::PermissionDenied,
    );
    assert_code(change(PASSWORD, "short").await, Code::InvalidArgument);
    let changed = change(PASSWORD, "a brand new passphrase")
        .await
        .unwrap()
        .into_inner();
    assert_eq!(changed.revoked_count, 1, "the tablet");
    assert_code(
        app.validate(&tablet.access_token).await,
        Code::Unauthenticated,
    );
    app.validate(&laptop.access_token)
        .await
        .expect("the current session survives");
    assert_code(app.login(&email, PASSWORD).await, Code::Unauthenticated);
    let fresh = app.login(&email, "a brand new passphrase").await.unwrap();

    // Revoking all others keeps the current one; an admin can end them all.
    let n = grpc
        .revoke_other_sessions(bearer(
            pb::RevokeOtherSessionsRequest::default(),
            &fresh.access_token,
        ))
        .await
        .unwrap();
    assert_eq!(n.into_inner().revoked_count, 1);
    let admin = app.admin_token().await;
    let n = grpc
        .revoke_other_sessions(bearer(
            pb::RevokeOtherSessionsRequest {
                user_id: fresh.user_id.clone(),
            },
            &admin,
        ))
        .await
        .unwrap();
    assert_eq!(n.into_inner().revoked_count, 1);
    assert_code(
        app.validate(&fresh.access_token).await,
        Code::Unauthenticated,
    );
}

/// Five sessions in pages of two: every session once, newest first, and a page
/// token only continues the listing it was issued for.
async fn session_lists_are_paged(backend: Backend) {
    let app = spawn_app(backend).await;
    let email = unique_email();
    app.register(&email, PASSWORD).await.unwrap();
    let mut logins = Vec::new();
    for _ in 0..5 {
        logins.push(app.login(&email, PASSWORD).await.unwrap());
    }
    let token = &logins[0].access_token;
    let mut grpc = app.grpc.clone();
    let mut seen = Vec::new();
    let mut page_token = String::new();
    let mut pages = 0;
    loop {
        let page = grpc
            .list_sessions(bearer(
                pb::ListSessionsRequest {
                    page_size: 2,
                    page_token: page_token.clone(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .unwrap()
            .into_inner();
        assert!(page.sessions.len() <= 2);
        seen.extend(page.sessions.into_iter().map(|s| s.id));
        pages += 1;
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    assert_eq!(pages, 3);
    // Session ids are UUIDv7: newest first is descending id order on a still clock.
    let newest_first: Vec<_> = logins.iter().rev().map(|l| l.session_id.clone()).collect();
    assert_eq!(seen, newest_first);

    // The token was issued for "my sessions"; naming a user is another listing.
    let first = grpc
        .list_sessions(bearer(
            pb::ListSessionsRequest {
                page_size: 2,
                ..Default::default()
            },
            token,
        ))
        .await
        .unwrap()
        .into_inner();
    let replay = grpc
        .list_sessions(bearer(
            pb::ListSessionsRequest {
                user_id: logins[0].user_id.clone(),
                page_size: 2,
                page_token: first.next_page_token,
            },
            token,
        ))
        .await;
    assert_code(replay, Code::InvalidArgument);
    let negative = grpc
        .list_sessions(bearer(
            pb::ListSessionsRequest {
                page_size: -1,
                ..Default::default()
            },
            token,
        ))
        .await;
    assert_code(negative, Code::InvalidArgument);
}
