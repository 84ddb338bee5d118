//! Who may call what: no token, bad tokens, expired and revoked tokens, other users.

use crate::helpers::{Backend, assert_code, bearer, both_backends, eventually, spawn_system};
use identity_proto::user::v1 as pb;
use tonic::Code;

both_backends!(
    tokens_are_verified_in_process_and_revocations_arrive_within_a_second,
    remote_or_stale_verification_asks_check_permission,
    tokens_are_checked_by_the_auth_service,
    users_change_only_themselves,
    emails_are_shown_to_their_owner_and_to_holders_of_read_email
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
    let second = sys.login(&ada.email).await;
    get(Some(second.access_token.clone())).await.unwrap();
    sys.logout(second.refresh_token).await;
    eventually(1, "revocation", || async {
        get(Some(second.access_token.clone())).await.is_err()
    })
    .await;
    assert_code(get(Some(second.access_token)).await, Code::Unauthenticated);

    // Expired: the clock moves past the token's lifetime.
    // The User Service reuses a decision for DECISION_TTL of real time.
    sys.clock.advance(chrono::Duration::minutes(16));
    tokio::time::sleep(platform::access::DECISION_TTL).await;
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

both_backends!(permission_matrix);

/// Every RPC, as each kind of caller, with the status each must get.
async fn permission_matrix(backend: Backend) {
    #[derive(Debug, Clone, Copy, PartialEq)]
    enum E {
        Ok,
        Unauth,
        Denied,
    }
    let sys = spawn_system(backend).await;
    let me = sys.new_user().await;
    let other = sys.new_user().await;
    let admin = sys.admin_token().await;
    let bare_service = sys.service_token(&[]).await;
    let callers: [(&str, Option<String>); 6] = [
        ("anonymous", None),
        ("the user", Some(me.access_token.clone())),
        ("another user", Some(other.access_token.clone())),
        ("admin", Some(admin.clone())),
        ("identity service", Some(sys.service_token.clone())),
        ("service without role", Some(bare_service.clone())),
    ];
    use E::{Denied as D, Ok as K, Unauth as U};
    let matrix: [(&str, [E; 6]); 6] = [
        ("CreateUser", [U, D, D, K, K, D]),
        ("GetUser", [U, K, K, K, K, D]),
        ("BatchGetUsers", [U, K, K, K, K, D]),
        ("ListUsers", [U, K, K, K, K, D]),
        ("UpdateUser", [U, K, D, K, D, D]),
        ("DeleteUser", [U, K, D, K, D, D]),
    ];
    for (rpc, expected) in matrix {
        for ((who, token), want) in callers.iter().zip(expected) {
            // Deletions each get a victim of their own; "the user" deletes themselves.
            let target = if rpc == "DeleteUser" && *who != "the user" && want == E::Ok {
                sys.new_user().await.name
            } else {
                me.name.clone()
            };
            let got = call(&sys, rpc, token.as_deref(), &target).await;
            let ok = match (want, &got) {
                (E::Ok, Ok(())) => true,
                (E::Unauth, Err(s)) => s.code() == Code::Unauthenticated,
                (E::Denied, Err(s)) => s.code() == Code::PermissionDenied,
                _ => false,
            };
            assert!(ok, "{rpc} as {who}: expected {want:?}, got {got:?}");
        }
    }
}

async fn call(
    sys: &crate::helpers::TestSystem,
    rpc: &str,
    token: Option<&str>,
    target: &str,
) -> Result<(), tonic::Status> {
    fn req<T>(m: T, token: Option<&str>) -> tonic::Request<T> {
        match token {
            Some(t) => bearer(m, t),
            None => tonic::Request::new(m),
        }
    }
    let mut c = sys.users.clone();
    let user = pb::User {
        name: target.into(),
        display_name: "Changed".into(),
        ..Default::default()
    };
    let mask = Some(prost_types::FieldMask {
        paths: vec!["display_name".into()],
    });
    match rpc {
        "CreateUser" => {
            let new = pb::User {
                id: uuid::Uuid::now_v7().to_string(),
                email: "new@example.com".into(),
                ..Default::default()
            };
            c.create_user(req(pb::CreateUserRequest { user: Some(new) }, token))
                .await
                .map(drop)
        }
        "GetUser" => c
            .get_user(req(
                pb::GetUserRequest {
                    name: target.into(),
                },
                token,
            ))
            .await
            .map(drop),
        "BatchGetUsers" => c
            .batch_get_users(req(
                pb::BatchGetUsersRequest {
                    names: vec![target.into()],
                },
                token,
            ))
            .await
            .map(drop),
        "ListUsers" => c
            .list_users(req(pb::ListUsersRequest::default(), token))
            .await
            .map(drop),
        "UpdateUser" => c
            .update_user(req(
                pb::UpdateUserRequest {
                    user: Some(user),
                    update_mask: mask,
                },
                token,
            ))
            .await
            .map(drop),
        "DeleteUser" => c
            .delete_user(req(
                pb::DeleteUserRequest {
                    name: target.into(),
                    etag: String::new(),
                },
                token,
            ))
            .await
            .map(drop),
        other => panic!("unknown rpc {other}"),
    }
}

/// Every user may read profiles, but an email address only reaches its owner,
/// admins and the identity services (`users:read_email`).
async fn emails_are_shown_to_their_owner_and_to_holders_of_read_email(backend: Backend) {
    let sys = spawn_system(backend).await;
    let ada = sys.new_user().await;
    let bob = sys.new_user().await;
    let email_of = |u: Result<pb::User, tonic::Status>| u.unwrap().email;
    assert_eq!(
        email_of(sys.get(&ada.access_token, &ada.name).await),
        ada.email
    );
    assert_eq!(email_of(sys.get(&bob.access_token, &ada.name).await), "");
    let admin = sys.admin_token().await;
    assert_eq!(email_of(sys.get(&admin, &ada.name).await), ada.email);
    let service = sys.service_token(&["identity-service"]).await;
    assert_eq!(email_of(sys.get(&service, &ada.name).await), ada.email);
    let reader = sys.service_token(&["user"]).await;
    assert_eq!(email_of(sys.get(&reader, &ada.name).await), "");

    // Lists and batches: only the caller's own address.
    let listed = sys
        .list(&bob.access_token, 1000, "", "")
        .await
        .unwrap()
        .users;
    assert!(listed.len() >= 2);
    for u in &listed {
        let expected = if u.name == bob.name {
            bob.email.as_str()
        } else {
            ""
        };
        assert_eq!(u.email, expected, "{}", u.name);
    }
    let batch = sys
        .users
        .clone()
        .batch_get_users(bearer(
            pb::BatchGetUsersRequest {
                names: vec![ada.name.clone(), bob.name.clone()],
            },
            &bob.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .users;
    let emails: Vec<_> = batch.iter().map(|u| u.email.as_str()).collect();
    assert_eq!(emails, ["", bob.email.as_str()]);
    let listed = sys.list(&admin, 1000, "", "").await.unwrap().users;
    assert!(listed.iter().all(|u| !u.email.is_empty()));
}

/// The value of the metric series whose name and labels start with `series`.
async fn metric(sys: &crate::helpers::TestSystem, series: &str) -> Option<f64> {
    test_support::service::metric(&sys.user_http, series).await
}

async fn tokens_are_verified_in_process_and_revocations_arrive_within_a_second(backend: Backend) {
    let sys = spawn_system(backend).await;
    eventually(10, "the verifier to catch up with the feed", || async {
        metric(&sys, "identity_verifier_ready").await == Some(1.0)
    })
    .await;
    let ada = sys.new_user().await;
    // A second later, so the registration's own events are not in the token's second.
    sys.clock.advance(chrono::Duration::seconds(1));
    let session = sys.login(&ada.email).await;
    let me = sys.get(&session.access_token, &ada.name).await.unwrap();
    assert_eq!(me.email, ada.email, "one's own profile, email included");
    let other = sys.new_user().await;
    let theirs = sys.get(&session.access_token, &other.name).await.unwrap();
    assert_eq!(
        theirs.email, "",
        "someone else's email needs users:read_email"
    );
    let mut change = theirs;
    change.display_name = "Not Mine".into();
    assert_code(
        sys.update(&session.access_token, change, &["display_name"])
            .await,
        Code::PermissionDenied,
    );

    sys.logout(session.refresh_token).await;
    eventually(1, "the revocation to reach the User Service", || async {
        sys.get(&session.access_token, &ada.name).await.is_err()
    })
    .await;
    let msg = assert_code(
        sys.get(&session.access_token, &ada.name).await,
        Code::Unauthenticated,
    );
    assert!(msg.contains("revoked"), "{msg}");
    // Refused by the verifier in-process, not by a CheckPermission call.
    let refused = metric(
        &sys,
        "identity_verifier_rejections_total{reason=\"revoked\"",
    )
    .await;
    assert!(refused.is_some_and(|n| n >= 1.0), "{refused:?}");
}

/// `USER_TOKEN_VERIFICATION=remote`, and a verifier that is never current
/// (its bound shorter than the heartbeat): every decision is the Auth
/// Service's, and still right.
async fn remote_or_stale_verification_asks_check_permission(backend: Backend) {
    use user_service::config::TokenVerification;
    type Tweak = fn(&mut user_service::config::Settings);
    let tweaks: [(bool, Tweak); 2] = [
        (true, |s| s.token_verification = TokenVerification::Remote),
        (false, |s| {
            s.verifier_max_staleness = std::time::Duration::from_millis(1);
        }),
    ];
    for (remote, tweak) in tweaks {
        let sys = crate::helpers::spawn_system_with(backend, tweak).await;
        let ada = sys.new_user().await;
        sys.get(&ada.access_token, &ada.name).await.unwrap();
        let login = sys.login(&ada.email).await;
        sys.get(&login.access_token, &ada.name).await.unwrap();
        sys.logout(login.refresh_token).await;
        eventually(1, "the revocation", || async {
            sys.get(&login.access_token, &ada.name).await.is_err()
        })
        .await;
        if remote {
            let ready = metric(&sys, "identity_verifier_ready").await;
            assert_eq!(ready, None, "no verifier runs");
        }
    }
}
