//! Every User Service RPC through its gRPC client, with each bad input's status.

use crate::helpers::{
    Backend, PASSWORD, assert_code, bearer, both_backends, eventually, spawn_system,
};
use identity_proto::auth::v1 as auth_pb;
use identity_proto::user::v1 as pb;
use std::collections::HashSet;
use tonic::Code;

both_backends!(
    registration_creates_the_profile,
    create_is_idempotent_and_for_services,
    get_and_batch_get,
    concurrent_reads_each_get_their_own_answer,
    pagination_has_no_duplicate_or_gap,
    field_mask_updates_and_etags,
    bad_fields_name_the_field,
    deleted_users_are_gone_and_their_identity_disabled,
);

async fn registration_creates_the_profile(backend: Backend) {
    let sys = spawn_system(backend).await;
    let ada = sys.new_user().await;
    let profile = sys.get(&ada.access_token, &ada.name).await.unwrap();
    assert_eq!(profile.id, ada.id);
    assert_eq!(profile.email, ada.email);
    assert_eq!(profile.display_name, "Test User");
    assert!(
        profile.username.starts_with("user-"),
        "{}",
        profile.username
    );
    assert_eq!(profile.etag, "v1");
    assert!(profile.create_time.is_some() && profile.update_time.is_some());

    let metrics = reqwest::get(format!("{}/metrics", sys.user_http))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("grpc_server_handled_total"), "{metrics}");
    assert!(metrics.contains("outbox_backlog"), "{metrics}");
}

async fn create_is_idempotent_and_for_services(backend: Backend) {
    let sys = spawn_system(backend).await;
    let ada = sys.new_user().await;
    let id = uuid::Uuid::now_v7().to_string();
    let new = pb::User {
        id: id.clone(),
        email: "Grace@Example.com".into(),
        display_name: "Grace".into(),
        ..Default::default()
    };
    let first = sys.create_as_service(new.clone()).await.unwrap();
    assert_eq!(first.email, "grace@example.com");
    assert_eq!(first.username, "grace");
    let again = sys.create_as_service(new.clone()).await.unwrap();
    assert_eq!(again, first, "a repeated create returns the stored user");

    // Derived usernames step around taken ones.
    let other = sys
        .create_as_service(pb::User {
            id: uuid::Uuid::now_v7().to_string(),
            email: "grace@elsewhere.org".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(other.username.starts_with("grace-"), "{}", other.username);
    // An explicit username that is taken is refused, whatever its case.
    let taken = sys
        .create_as_service(pb::User {
            id: uuid::Uuid::now_v7().to_string(),
            email: "x@example.com".into(),
            username: "GRACE".into(),
            ..Default::default()
        })
        .await;
    assert_code(taken, Code::AlreadyExists);

    // Users cannot create profiles; bad input is named.
    let as_user = sys
        .users
        .clone()
        .create_user(bearer(
            pb::CreateUserRequest {
                user: Some(new.clone()),
            },
            &ada.access_token,
        ))
        .await;
    assert_code(as_user, Code::PermissionDenied);
    let no_id = sys
        .create_as_service(pb::User {
            email: "a@b.co".into(),
            ..Default::default()
        })
        .await;
    assert!(assert_code(no_id, Code::InvalidArgument).contains("user.id"));
    let no_email = sys
        .create_as_service(pb::User {
            id: uuid::Uuid::now_v7().to_string(),
            ..Default::default()
        })
        .await;
    assert!(assert_code(no_email, Code::InvalidArgument).contains("user.email"));
    // The one canonical email form of both services: ASCII domain (IDNA),
    // ASCII local part.
    let kim = sys
        .create_as_service(pb::User {
            id: uuid::Uuid::now_v7().to_string(),
            email: "Kim@Ｂücher.example".into(),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(kim.email, "kim@xn--bcher-kva.example");
    let non_ascii = sys
        .create_as_service(pb::User {
            id: uuid::Uuid::now_v7().to_string(),
            email: "jösé@example.com".into(),
            ..Default::default()
        })
        .await;
    assert!(assert_code(non_ascii, Code::InvalidArgument).contains("user.email"));
    let missing = sys
        .users
        .clone()
        .create_user(bearer(
            pb::CreateUserRequest { user: None },
            &sys.service_token,
        ))
        .await;
    assert_code(missing, Code::InvalidArgument);
}

/// Many GetUser calls at once are answered by coalesced queries: each caller
/// must still get exactly the user it named, or NOT_FOUND.
async fn concurrent_reads_each_get_their_own_answer(backend: Backend) {
    let sys = spawn_system(backend).await;
    let mut wanted: Vec<(String, Option<String>)> = Vec::new();
    for _ in 0..4 {
        let u = sys.new_user().await;
        wanted.push((u.name.clone(), Some(u.id.clone())));
    }
    for _ in 0..4 {
        wanted.push((format!("users/{}", uuid::Uuid::now_v7()), None));
    }
    let reader = sys.new_user().await;
    let calls = (0..96).map(|i| {
        let (name, id) = wanted[(i * 7) % wanted.len()].clone();
        let sys = &sys;
        let token = reader.access_token.clone();
        async move { (sys.get(&token, &name).await, id) }
    });
    for (got, id) in futures::future::join_all(calls).await {
        match id {
            Some(id) => assert_eq!(got.unwrap().id, id),
            None => {
                assert_code(got, Code::NotFound);
            }
        }
    }
}

async fn get_and_batch_get(backend: Backend) {
    let sys = spawn_system(backend).await;
    let (a, b) = (sys.new_user().await, sys.new_user().await);
    assert_eq!(
        sys.get(&a.access_token, &b.name).await.unwrap().id,
        b.id,
        "any user may read another"
    );
    assert_code(
        sys.get(&a.access_token, &format!("users/{}", uuid::Uuid::now_v7()))
            .await,
        Code::NotFound,
    );
    for bad in ["", "nope", "users/", "users/not-a-uuid", &b.id] {
        assert_code(sys.get(&a.access_token, bad).await, Code::InvalidArgument);
    }

    let batch = |names: Vec<String>| {
        let mut c = sys.users.clone();
        let token = a.access_token.clone();
        async move {
            c.batch_get_users(bearer(pb::BatchGetUsersRequest { names }, &token))
                .await
                .map(|r| r.into_inner().users)
        }
    };
    let got = batch(vec![b.name.clone(), a.name.clone()]).await.unwrap();
    assert_eq!(
        got.iter().map(|u| u.id.clone()).collect::<Vec<_>>(),
        vec![b.id.clone(), a.id.clone()]
    );
    assert_code(
        batch(vec![
            a.name.clone(),
            format!("users/{}", uuid::Uuid::now_v7()),
        ])
        .await,
        Code::NotFound,
    );
    assert_code(
        batch(vec![a.name.clone(); 101]).await,
        Code::InvalidArgument,
    );
    assert_code(batch(vec!["bad".into()]).await, Code::InvalidArgument);
    assert!(batch(vec![]).await.unwrap().is_empty());
}

async fn pagination_has_no_duplicate_or_gap(backend: Backend) {
    let sys = spawn_system(backend).await;
    let viewer = sys.new_user().await;
    let mut created = HashSet::new();
    created.insert(viewer.id.clone());
    for i in 0..23 {
        let u = sys
            .create_as_service(pb::User {
                id: uuid::Uuid::now_v7().to_string(),
                email: format!("member{i:02}@example.com"),
                display_name: format!("Member {i:02}"),
                ..Default::default()
            })
            .await
            .unwrap();
        created.insert(u.id);
    }
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = sys.list(&viewer.access_token, 5, &token, "").await.unwrap();
        assert!(page.users.len() <= 5);
        seen.extend(page.users.into_iter().map(|u| u.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(seen.len(), created.len(), "no duplicate");
    assert_eq!(
        seen.iter().cloned().collect::<HashSet<_>>(),
        created,
        "no gap"
    );
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(seen, sorted, "stable creation order");

    // Filters, and a token bound to its filter.
    let prefixed = sys
        .list(&viewer.access_token, 10, "", r#"username:"member1*""#)
        .await
        .unwrap();
    assert_eq!(prefixed.users.len(), 10);
    assert!(
        prefixed
            .users
            .iter()
            .all(|u| u.username.starts_with("member1"))
    );
    let named = sys
        .list(&viewer.access_token, 0, "", r#"display_name:"MEMBER 2*""#)
        .await
        .unwrap();
    assert_eq!(named.users.len(), 3, "members 20 to 22");
    let exact = sys
        .list(&viewer.access_token, 0, "", r#"username="member07""#)
        .await
        .unwrap();
    assert_eq!(exact.users.len(), 1);
    let first = sys
        .list(&viewer.access_token, 2, "", r#"username:"member*""#)
        .await
        .unwrap();
    assert_code(
        sys.list(&viewer.access_token, 2, &first.next_page_token, "")
            .await,
        Code::InvalidArgument,
    );
    assert_code(
        sys.list(&viewer.access_token, 2, "garbage", "").await,
        Code::InvalidArgument,
    );
    assert_code(
        sys.list(&viewer.access_token, -1, "", "").await,
        Code::InvalidArgument,
    );
    assert_code(
        sys.list(&viewer.access_token, 0, "", "email:\"a*\"").await,
        Code::InvalidArgument,
    );
    let huge = sys
        .list(&viewer.access_token, 1_000_000, "", "")
        .await
        .unwrap();
    assert_eq!(
        huge.users.len(),
        created.len(),
        "page size is capped, not refused"
    );
}

async fn field_mask_updates_and_etags(backend: Backend) {
    let sys = spawn_system(backend).await;
    let ada = sys.new_user().await;
    let before = sys.get(&ada.access_token, &ada.name).await.unwrap();

    let change = pb::User {
        name: ada.name.clone(),
        username: "Ada.Lovelace".into(),
        display_name: "Ada Lovelace".into(),
        bio: "not in the mask".into(),
        locale: "en-GB".into(),
        time_zone: "Europe/London".into(),
        avatar_url: "https://cdn.example.com/ada.png".into(),
        ..Default::default()
    };
    let after = sys
        .update(
            &ada.access_token,
            change.clone(),
            &[
                "username",
                "display_name",
                "locale",
                "time_zone",
                "avatar_url",
            ],
        )
        .await
        .unwrap();
    assert_eq!(after.username, "ada.lovelace");
    assert_eq!(after.display_name, "Ada Lovelace");
    assert_eq!(
        (after.locale.as_str(), after.time_zone.as_str()),
        ("en-GB", "Europe/London")
    );
    assert_eq!(
        after.bio, before.bio,
        "fields outside the mask are untouched"
    );
    assert_ne!(after.etag, before.etag);
    assert_eq!(sys.get(&ada.access_token, &ada.name).await.unwrap(), after);

    // A stale etag is refused and changes nothing; the current one works.
    let stale = pb::User {
        etag: before.etag.clone(),
        bio: "x".into(),
        ..change.clone()
    };
    assert_code(
        sys.update(&ada.access_token, stale, &["bio"]).await,
        Code::Aborted,
    );
    let current = pb::User {
        etag: after.etag.clone(),
        bio: "mathematician".into(),
        ..change.clone()
    };
    assert_eq!(
        sys.update(&ada.access_token, current, &["bio"])
            .await
            .unwrap()
            .bio,
        "mathematician"
    );

    // Implied mask: the non-empty fields; clearing needs the field in the mask.
    let implied = pb::User {
        name: ada.name.clone(),
        display_name: "Countess".into(),
        ..Default::default()
    };
    let got = sys.update(&ada.access_token, implied, &[]).await.unwrap();
    assert_eq!(
        (got.display_name.as_str(), got.bio.as_str()),
        ("Countess", "mathematician")
    );
    let clear = pb::User {
        name: ada.name.clone(),
        ..Default::default()
    };
    assert_eq!(
        sys.update(&ada.access_token, clear, &["bio"])
            .await
            .unwrap()
            .bio,
        ""
    );

    // Unknown and output-only paths are named.
    let msg = assert_code(
        sys.update(&ada.access_token, change.clone(), &["shoe_size"])
            .await,
        Code::InvalidArgument,
    );
    assert!(
        msg.contains("update_mask") && msg.contains("shoe_size"),
        "{msg}"
    );
    let msg = assert_code(
        sys.update(&ada.access_token, change.clone(), &["email"])
            .await,
        Code::InvalidArgument,
    );
    assert!(msg.contains("output only"), "{msg}");
    assert_code(
        sys.update(
            &ada.access_token,
            pb::User {
                name: ada.name.clone(),
                ..Default::default()
            },
            &[],
        )
        .await,
        Code::InvalidArgument,
    );

    // Another user's username, in any case, is taken.
    let bob = sys.new_user().await;
    let bob_profile = sys.get(&bob.access_token, &bob.name).await.unwrap();
    let grab = pb::User {
        name: ada.name.clone(),
        username: bob_profile.username.to_uppercase(),
        ..Default::default()
    };
    assert_code(
        sys.update(&ada.access_token, grab, &["username"]).await,
        Code::AlreadyExists,
    );
}

async fn bad_fields_name_the_field(backend: Backend) {
    let sys = spawn_system(backend).await;
    let ada = sys.new_user().await;
    let cases: Vec<(&str, pb::User, &str)> = vec![
        (
            "username",
            pb::User {
                username: "ab".into(),
                ..Default::default()
            },
            "user.username",
        ),
        (
            "username",
            pb::User {
                username: "no spaces".into(),
                ..Default::default()
            },
            "user.username",
        ),
        (
            "username",
            pb::User {
                username: "x".repeat(33),
                ..Default::default()
            },
            "user.username",
        ),
        (
            "display_name",
            pb::User {
                display_name: "d".repeat(101),
                ..Default::default()
            },
            "user.display_name",
        ),
        (
            "avatar_url",
            pb::User {
                avatar_url: "javascript:alert(1)".into(),
                ..Default::default()
            },
            "user.avatar_url",
        ),
        (
            "avatar_url",
            pb::User {
                avatar_url: format!("https://x.org/{}", "a".repeat(2100)),
                ..Default::default()
            },
            "user.avatar_url",
        ),
        (
            "bio",
            pb::User {
                bio: "b".repeat(501),
                ..Default::default()
            },
            "user.bio",
        ),
        (
            "locale",
            pb::User {
                locale: "english please".into(),
                ..Default::default()
            },
            "user.locale",
        ),
        (
            "time_zone",
            pb::User {
                time_zone: "Mars/Olympus_Mons".into(),
                ..Default::default()
            },
            "user.time_zone",
        ),
    ];
    for (path, mut user, field) in cases {
        user.name = ada.name.clone();
        let msg = assert_code(
            sys.update(&ada.access_token, user, &[path]).await,
            Code::InvalidArgument,
        );
        assert!(msg.starts_with(field), "{field}: {msg}");
    }
    let no_name = sys
        .update(
            &ada.access_token,
            pb::User {
                bio: "x".into(),
                ..Default::default()
            },
            &["bio"],
        )
        .await;
    assert!(assert_code(no_name, Code::InvalidArgument).contains("user.name"));
    let bad_etag = pb::User {
        name: ada.name.clone(),
        etag: "W/\"1\"".into(),
        bio: "x".into(),
        ..Default::default()
    };
    assert_code(
        sys.update(&ada.access_token, bad_etag, &["bio"]).await,
        Code::InvalidArgument,
    );
    let oversized = sys
        .users
        .clone()
        .get_user(bearer(
            pb::GetUserRequest {
                name: "x".repeat(100_000),
            },
            &ada.access_token,
        ))
        .await;
    assert_code(oversized, Code::OutOfRange);
}

async fn deleted_users_are_gone_and_their_identity_disabled(backend: Backend) {
    let sys = spawn_system(backend).await;
    let (ada, bob) = (sys.new_user().await, sys.new_user().await);
    let profile = sys.get(&ada.access_token, &ada.name).await.unwrap();
    let delete = |name: String, etag: String, token: String| {
        let mut c = sys.users.clone();
        async move {
            c.delete_user(bearer(pb::DeleteUserRequest { name, etag }, &token))
                .await
        }
    };
    assert_code(
        delete(ada.name.clone(), String::new(), bob.access_token.clone()).await,
        Code::PermissionDenied,
    );
    assert_code(
        delete(ada.name.clone(), "v99".into(), ada.access_token.clone()).await,
        Code::Aborted,
    );
    delete(
        ada.name.clone(),
        profile.etag.clone(),
        ada.access_token.clone(),
    )
    .await
    .unwrap();

    // Readers see NOT_FOUND at once, in every read.
    assert_code(sys.get(&bob.access_token, &ada.name).await, Code::NotFound);
    let list = sys.list(&bob.access_token, 100, "", "").await.unwrap();
    assert!(list.users.iter().all(|u| u.id != ada.id));
    let batch = sys
        .users
        .clone()
        .batch_get_users(bearer(
            pb::BatchGetUsersRequest {
                names: vec![ada.name.clone()],
            },
            &bob.access_token,
        ))
        .await;
    assert_code(batch, Code::NotFound);

    // The Auth Service disables the identity: tokens and login stop working.
    eventually(10, "the deleted user's token to be revoked", || async {
        sys.validate(&ada.access_token).await.is_err()
    })
    .await;
    let login = sys
        .auth
        .clone()
        .login(auth_pb::LoginRequest {
            email: ada.email.clone(),
            password: PASSWORD.into(),
        })
        .await;
    assert_code(login, Code::Unauthenticated);
    // The freed username can be taken by someone else.
    let reuse = pb::User {
        name: bob.name.clone(),
        username: profile.username.clone(),
        ..Default::default()
    };
    assert_eq!(
        sys.update(&bob.access_token, reuse, &["username"])
            .await
            .unwrap()
            .username,
        profile.username
    );
}
