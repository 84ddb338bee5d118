//! Who may call what: no token, bad tokens, expired and revoked tokens, other users.

use crate::helpers::{Backend, assert_code, bearer, both_backends, eventually, spawn_system};
use identity_proto::auth::v1 as auth_pb;
use identity_proto::user::v1 as pb;
use tonic::Code;

both_backends!(
    tokens_are_checked_by_the_auth_service,
    users_change_only_themselves
);

async fn tokens_are_checked_by_the_auth_service(backend: Backend) {
    let sys = spawn_system(backend).await;
    let ada = sys.new_user().await;
    let get = |token: Option<String>| {
        let mut c = sys.users.clone();
        let name = ada.name.clone();
        async move {
            let req = match token {
                Some(t) => bearer(pb::GetUserRequest { name }, &t),
                None => tonic::Request::new(pb::GetUserRequest { name }),
            };
            c.get_user(req).await
        }
    };
    assert!(assert_code(get(None).await, Code::Unauthenticated).contains("authorization"));
    assert_code(get(Some("garbage".into())).await, Code::Unauthenticated);
    assert_code(get(Some("a".repeat(9000))).await, Code::Unauthenticated);
    let mut basic = tonic::Request::new(pb::GetUserRequest {
        name: ada.name.clone(),
    });
    basic
        .metadata_mut()
        .insert("authorization", "Basic YWRhOnB3".parse().unwrap());
    assert_code(
        sys.users.clone().get_user(basic).await,
        Code::Unauthenticated,
    );
    get(Some(ada.access_token.clone())).await.unwrap();

    // Revoked: logout ends the session, and the User Service knows at once.
    let second = sys
        .auth
        .clone()
        .login(auth_pb::LoginRequest {
            email: ada.email.clone(),
            password: crate::helpers::PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    get(Some(second.access_token.clone())).await.unwrap();
    sys.auth
        .clone()
        .logout(auth_pb::LogoutRequest {
            refresh_token: second.refresh_token,
        })
        .await
        .unwrap();
    eventually(1, "revocation", || async {
        get(Some(second.access_token.clone())).await.is_err()
    })
    .await;
    assert_code(get(Some(second.access_token)).await, Code::Unauthenticated);

    // Expired: the clock moves past the token's lifetime.
    sys.clock.advance(chrono::Duration::minutes(16));
    let msg = assert_code(
        get(Some(ada.access_token.clone())).await,
        Code::Unauthenticated,
    );
    assert!(msg.contains("expired"), "{msg}");
}

async fn users_change_only_themselves(backend: Backend) {
    let sys = spawn_system(backend).await;
    let (ada, bob) = (sys.new_user().await, sys.new_user().await);
    let edit = pb::User {
        name: bob.name.clone(),
        display_name: "pwned".into(),
        ..Default::default()
    };
    assert_code(
        sys.update(&ada.access_token, edit, &["display_name"]).await,
        Code::PermissionDenied,
    );
    let delete = sys
        .users
        .clone()
        .delete_user(bearer(
            pb::DeleteUserRequest {
                name: bob.name.clone(),
                etag: String::new(),
            },
            &ada.access_token,
        ))
        .await;
    assert_code(delete, Code::PermissionDenied);
    assert_eq!(
        sys.get(&ada.access_token, &bob.name)
            .await
            .unwrap()
            .display_name,
        "Test User"
    );
    // A forged service secret is just a bad token.
    let forged = sys
        .users
        .clone()
        .create_user(bearer(
            pb::CreateUserRequest {
                user: Some(pb::User::default()),
            },
            "test-service-secret-0123456789abcdeX",
        ))
        .await;
    assert_code(forged, Code::Unauthenticated);
}
