//! Deleting a role: its holders' tokens lose it on every replica, and a role
//! made again under the same name grants those older tokens nothing.

use crate::helpers::{Backend, TestApp, bearer, both_backends, spawn_app, spawn_replica};
use identity_proto::auth::v1 as pb;
use std::time::{Duration, Instant};

both_backends!(a_deleted_role_is_gone_from_older_tokens_even_once_made_again,);

async fn allowed(app: &TestApp, token: &str) -> bool {
    let check = pb::CheckPermissionRequest {
        access_token: token.into(),
        permission: "audit:read".into(),
        resource: String::new(),
    };
    let mut grpc = app.grpc.clone();
    grpc.check_permission(check)
        .await
        .unwrap()
        .into_inner()
        .allowed
}

/// Waits up to a second for every replica to answer `want` for `token`.
async fn everywhere(apps: [&TestApp; 2], token: &str, want: bool, what: &str) {
    for app in apps {
        let started = Instant::now();
        while allowed(app, token).await != want {
            assert!(started.elapsed() < Duration::from_secs(1), "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn role(app: &TestApp, admin: &str, name: &str, permissions: &[&str]) {
    let role = pb::Role {
        name: name.into(),
        permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
        ..Default::default()
    };
    let create = pb::CreateRoleRequest { role: Some(role) };
    app.grpc
        .clone()
        .create_role(bearer(create, admin))
        .await
        .unwrap();
}

async fn assign(app: &TestApp, admin: &str, user: &str, role: &str) {
    let assign = pb::AssignRoleRequest {
        subject_id: user.into(),
        role: role.into(),
    };
    app.grpc
        .clone()
        .assign_role(bearer(assign, admin))
        .await
        .unwrap();
}

async fn a_deleted_role_is_gone_from_older_tokens_even_once_made_again(backend: Backend) {
    let a = spawn_app(backend).await;
    let b = spawn_replica(&a, |_| {}).await;
    let admin = a.admin_token().await;
    let user = a.new_session().await;
    role(&a, &admin, "temp", &["audit:read"]).await;
    assign(&a, &admin, &user.user_id, "temp").await;
    // A token issued after the assignment names the role itself.
    a.clock.advance(chrono::Duration::seconds(2));
    let holder = a.refresh(&user.refresh_token).await.unwrap().access_token;
    assert!(
        a.validate(&holder)
            .await
            .unwrap()
            .roles
            .contains(&"temp".into())
    );
    everywhere([&a, &b], &holder, true, "a replica missed the role").await;

    let delete = pb::DeleteRoleRequest {
        name: "temp".into(),
    };
    a.grpc
        .clone()
        .delete_role(bearer(delete, &admin))
        .await
        .unwrap();
    everywhere(
        [&a, &b],
        &holder,
        false,
        "a replica still grants a deleted role",
    )
    .await;
    for app in [&a, &b] {
        let roles = app.validate(&holder).await.unwrap().roles;
        assert!(!roles.contains(&"temp".into()), "{roles:?}");
    }

    // The same name made again, granting more: the older token holds none of it.
    a.clock.advance(chrono::Duration::seconds(2));
    role(&a, &admin, "temp", &["*"]).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    for app in [&a, &b] {
        assert!(
            !allowed(app, &holder).await,
            "an older token gained the new role"
        );
        let roles = app.validate(&holder).await.unwrap().roles;
        assert!(!roles.contains(&"temp".into()), "{roles:?}");
    }
    // Given again, it counts at once, for that same token too.
    a.clock.advance(chrono::Duration::seconds(2));
    assign(&a, &admin, &user.user_id, "temp").await;
    everywhere(
        [&a, &b],
        &holder,
        true,
        "a replica missed the new assignment",
    )
    .await;
}
