//! Each cause has its effect on `verify`, within a second.

use crate::helpers::{Backend, PASSWORD, bearer, both_backends, refused_within, spawn_auth};
use identity_proto::auth::v1 as pb;
use identity_verifier::Rejection;
use std::time::Duration;

both_backends!(
    logout_and_revoke_session_are_refused_within_a_second,
    disable_change_password_and_roles_have_their_effect,
    a_deleted_service_account_is_refused,
    keys_never_seen_are_fetched_for_tokens_and_sets
);

const BOUND: Duration = Duration::from_secs(1);

async fn logout_and_revoke_session_are_refused_within_a_second(backend: Backend) {
    let auth = spawn_auth(backend).await;
    let verifier = auth.connect().await;
    let (email, first) = auth.new_session().await;
    let claims = verifier.verify(&first.access_token).unwrap();
    assert_eq!(claims.subject.uuid().to_string(), first.user_id);
    assert_eq!(claims.session_id.uuid().to_string(), first.session_id);
    assert!(claims.roles.contains(&"user".to_owned()));

    auth.grpc
        .clone()
        .logout(pb::LogoutRequest {
            refresh_token: first.refresh_token.clone(),
        })
        .await
        .unwrap();
    refused_within(&verifier, &first.access_token, Rejection::Revoked, BOUND).await;

    let second = auth.login(&email).await;
    let third = auth.login(&email).await;
    verifier.verify(&second.access_token).unwrap();
    auth.grpc
        .clone()
        .revoke_session(bearer(
            pb::RevokeSessionRequest {
                session_id: second.session_id.clone(),
            },
            &third.access_token,
        ))
        .await
        .unwrap();
    refused_within(&verifier, &second.access_token, Rejection::Revoked, BOUND).await;
    verifier.verify(&third.access_token).unwrap();
}

async fn disable_change_password_and_roles_have_their_effect(backend: Backend) {
    let auth = spawn_auth(backend).await;
    let verifier = auth.connect().await;
    let admin = auth.admin_token().await;

    // ChangePassword: the caller's token must be refreshed, other sessions end.
    let (email, own) = auth.new_session().await;
    let other = auth.login(&email).await;
    auth.clock.advance(chrono::Duration::seconds(1));
    auth.grpc
        .clone()
        .change_password(bearer(
            pb::ChangePasswordRequest {
                old_password: PASSWORD.into(),
                new_password: "another correct horse battery".into(),
            },
            &own.access_token,
        ))
        .await
        .unwrap();
    refused_within(&verifier, &own.access_token, Rejection::Refresh, BOUND).await;
    refused_within(&verifier, &other.access_token, Rejection::Revoked, BOUND).await;

    // AssignRole: older tokens must be refreshed; a new one has the role's permissions.
    let (email, session) = auth.new_session().await;
    assert!(
        !verifier
            .verify(&session.access_token)
            .unwrap()
            .allows("roles:admin")
    );
    auth.grpc
        .clone()
        .assign_role(bearer(
            pb::AssignRoleRequest {
                subject_id: session.user_id.clone(),
                role: "admin".into(),
            },
            &admin,
        ))
        .await
        .unwrap();
    refused_within(&verifier, &session.access_token, Rejection::Refresh, BOUND).await;
    auth.clock.advance(chrono::Duration::seconds(1));
    let promoted = auth.login(&email).await;
    let claims = verifier.verify(&promoted.access_token).unwrap();
    assert!(claims.roles.contains(&"admin".to_owned()));
    assert!(claims.allows("roles:admin"));

    // A role's permissions change: its holders refresh, and the table follows.
    auth.grpc
        .clone()
        .create_role(bearer(
            pb::CreateRoleRequest {
                role: Some(pb::Role {
                    name: "auditor".into(),
                    description: "reads the audit log".into(),
                    permissions: vec!["audit:read".into()],
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .unwrap();
    // (someone without `admin`, whose `*` would grant everything anyway)
    let (email, plain) = auth.new_session().await;
    auth.grpc
        .clone()
        .assign_role(bearer(
            pb::AssignRoleRequest {
                subject_id: plain.user_id.clone(),
                role: "auditor".into(),
            },
            &admin,
        ))
        .await
        .unwrap();
    auth.clock.advance(chrono::Duration::seconds(1));
    let auditor = auth.login(&email).await;
    let allows = |token: &str| verifier.verify(token).map(|c| c.allows("audit:read"));
    // The assignment's event may still be on its way: wait for the table.
    refused_within(&verifier, &plain.access_token, Rejection::Refresh, BOUND).await;
    assert_eq!(allows(&auditor.access_token), Ok(true));
    auth.clock.advance(chrono::Duration::seconds(1));
    auth.grpc
        .clone()
        .update_role(bearer(
            pb::UpdateRoleRequest {
                role: Some(pb::Role {
                    name: "auditor".into(),
                    description: "nothing any more".into(),
                    permissions: vec!["users:read".into()],
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .unwrap();
    refused_within(&verifier, &auditor.access_token, Rejection::Refresh, BOUND).await;
    auth.clock.advance(chrono::Duration::seconds(1));
    let after = auth.login(&email).await;
    assert_eq!(allows(&after.access_token), Ok(false));

    // DisableUser: every token of the user.
    auth.grpc
        .clone()
        .disable_user(bearer(
            pb::DisableUserRequest {
                user_id: after.user_id.clone(),
                reason: "test".into(),
                purged: false,
            },
            &admin,
        ))
        .await
        .unwrap();
    let why = refused_within(&verifier, &after.access_token, Rejection::Disabled, BOUND).await;
    assert!(why <= BOUND);
}

async fn a_deleted_service_account_is_refused(backend: Backend) {
    let auth = spawn_auth(backend).await;
    let verifier = auth.connect().await;
    let admin = auth.admin_token().await;
    let (id, secret) = auth.service_account(&["identity-service"]).await;
    let issued = auth
        .grpc
        .clone()
        .issue_service_token(pb::IssueServiceTokenRequest {
            client_id: id,
            client_secret: secret,
        })
        .await
        .unwrap()
        .into_inner()
        .access_token;
    let claims = verifier.verify(&issued).unwrap();
    assert!(claims.user_id().is_none(), "a service account");
    assert!(claims.allows("events:subscribe"));
    auth.grpc
        .clone()
        .delete_service_account(bearer(
            pb::DeleteServiceAccountRequest {
                id: claims.subject.uuid().to_string(),
            },
            &admin,
        ))
        .await
        .unwrap();
    refused_within(&verifier, &issued, Rejection::Disabled, BOUND).await;
}

/// Two rotations make a signer this verifier never saw published: a token it
/// signs is refused until the one refetch lands, a SET it signs is applied
/// after fetching the JWKS again.
async fn keys_never_seen_are_fetched_for_tokens_and_sets(backend: Backend) {
    let auth = spawn_auth(backend).await;
    let verifier = auth.connect().await;
    let (email, old) = auth.new_session().await;
    for _ in 0..2 {
        auth.keys.rotate_now().await.unwrap();
    }
    let new = auth.login(&email).await;
    let started = std::time::Instant::now();
    assert_eq!(
        verifier.verify(&new.access_token).err(),
        Some(Rejection::UnknownKey),
        "signed by a key published after the verifier's fetch"
    );
    while verifier.verify(&new.access_token).is_err() {
        assert!(
            started.elapsed() < BOUND,
            "the JWKS is fetched again within a second"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    verifier.verify(&old.access_token).unwrap();

    for _ in 0..2 {
        auth.keys.rotate_now().await.unwrap();
    }
    auth.grpc
        .clone()
        .logout(pb::LogoutRequest {
            refresh_token: old.refresh_token,
        })
        .await
        .unwrap();
    refused_within(&verifier, &old.access_token, Rejection::Revoked, BOUND).await;
}
