//! The storage conformance suite: the same expectations of both backends.

use crate::helpers::{Backend, both_backends};
use auth_service::storage::{
    AuthStore, NewIdentity, NewRefreshToken, NewSession, Rotation, SigningKeyRecord, StoreError,
};
use chrono::{Duration, Utc};
use platform::outbox::OutboxEvent;
use std::sync::Arc;
use uuid::Uuid;

both_backends!(identities, refresh_token_rotation, revocations_and_keys);

async fn store(backend: Backend) -> (Arc<dyn AuthStore>, test_support::TestDatabase) {
    let db = backend.fresh_database().await;
    let store = auth_service::storage::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.expect("migrations are idempotent");
    store.ping().await.unwrap();
    (store, db)
}

fn identity(email: &str) -> NewIdentity {
    NewIdentity {
        id: Uuid::now_v7(),
        email: email.into(),
        display_name: "Ada".into(),
        password_hash: "$argon2id$fake".into(),
        roles: vec!["user".into(), "admin".into()],
        created_at: Utc::now(),
    }
}

fn event(identity: &NewIdentity) -> OutboxEvent {
    OutboxEvent::new(
        "user.registered",
        identity.id,
        "{}".into(),
        identity.created_at,
    )
}

fn token(byte: u8, session_id: Uuid, expires_in: Duration) -> NewRefreshToken {
    let now = Utc::now();
    NewRefreshToken {
        hash: [byte; 32],
        session_id,
        created_at: now,
        expires_at: now + expires_in,
    }
}

async fn identities(backend: Backend) {
    let (s, _db) = store(backend).await;
    let ada = identity("ada@example.com");
    s.insert_identity(&ada, &event(&ada)).await.unwrap();
    assert!(matches!(
        s.insert_identity(&identity("ada@example.com"), &event(&ada))
            .await,
        Err(StoreError::EmailTaken)
    ));
    let found = s
        .identity_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id, found.display_name.as_str(), found.disabled),
        (ada.id, "Ada", false)
    );
    assert!(
        s.identity_by_email("nobody@example.com")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        s.subject_roles(ada.id).await.unwrap().unwrap(),
        vec!["admin".to_owned(), "user".to_owned()]
    );
    s.set_password_hash(ada.id, "$argon2id$new", Utc::now())
        .await
        .unwrap();
    let found = s
        .identity_by_email("ada@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.password_hash, "$argon2id$new");
}

async fn refresh_token_rotation(backend: Backend) {
    let (s, _db) = store(backend).await;
    let ada = identity("ada@example.com");
    s.insert_identity(&ada, &event(&ada)).await.unwrap();
    let session = NewSession {
        id: Uuid::now_v7(),
        user_id: ada.id,
        created_at: Utc::now(),
        client_address: None,
        user_agent: None,
    };
    s.insert_session(&session, &token(1, session.id, Duration::days(1)))
        .await
        .unwrap();

    let now = Utc::now();
    let rotated = s
        .rotate_refresh_token(&[1; 32], &token(2, Uuid::nil(), Duration::days(1)), now)
        .await
        .unwrap();
    assert_eq!(
        rotated,
        Rotation::Rotated {
            session_id: session.id,
            user_id: ada.id
        }
    );
    assert_eq!(
        s.rotate_refresh_token(&[9; 32], &token(3, Uuid::nil(), Duration::days(1)), now)
            .await
            .unwrap(),
        Rotation::Unknown
    );
    // Token 1 again: reuse, the session is revoked, and token 2 is dead with it.
    assert_eq!(
        s.rotate_refresh_token(&[1; 32], &token(4, Uuid::nil(), Duration::days(1)), now)
            .await
            .unwrap(),
        Rotation::Reused {
            session_id: session.id
        }
    );
    assert_eq!(
        s.rotate_refresh_token(&[2; 32], &token(5, Uuid::nil(), Duration::days(1)), now)
            .await
            .unwrap(),
        Rotation::Dead
    );
    let revoked = s
        .revoked_sessions_since(now - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(
        revoked.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![session.id]
    );

    // An expired token is dead, not rotated.
    let other = NewSession {
        id: Uuid::now_v7(),
        user_id: ada.id,
        created_at: Utc::now(),
        client_address: None,
        user_agent: None,
    };
    s.insert_session(&other, &token(6, other.id, Duration::seconds(-1)))
        .await
        .unwrap();
    assert_eq!(
        s.rotate_refresh_token(
            &[6; 32],
            &token(7, Uuid::nil(), Duration::days(1)),
            Utc::now()
        )
        .await
        .unwrap(),
        Rotation::Dead
    );
}

async fn revocations_and_keys(backend: Backend) {
    let (s, _db) = store(backend).await;
    let ada = identity("ada@example.com");
    s.insert_identity(&ada, &event(&ada)).await.unwrap();
    let session = NewSession {
        id: Uuid::now_v7(),
        user_id: ada.id,
        created_at: Utc::now(),
        client_address: None,
        user_agent: None,
    };
    s.insert_session(&session, &token(1, session.id, Duration::days(1)))
        .await
        .unwrap();
    let t0 = Utc::now();
    assert!(
        s.revoked_sessions_since(t0 - Duration::hours(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        s.revoke_session_by_refresh_token(&[1; 32], t0, "logout")
            .await
            .unwrap(),
        Some(session.id)
    );
    assert_eq!(
        s.revoke_session_by_refresh_token(&[1; 32], t0, "logout")
            .await
            .unwrap(),
        None,
        "already revoked"
    );
    assert_eq!(
        s.revoke_session_by_refresh_token(&[8; 32], t0, "logout")
            .await
            .unwrap(),
        None
    );
    let since = s
        .revoked_sessions_since(t0 - Duration::seconds(1))
        .await
        .unwrap();
    assert_eq!(since.len(), 1);
    assert!(
        (since[0].1 - t0).num_milliseconds().abs() < 1,
        "times round-trip to the microsecond"
    );
    assert!(
        s.revoked_sessions_since(t0 + Duration::seconds(1))
            .await
            .unwrap()
            .is_empty()
    );

    let key = |generation: i64, kid: &str| SigningKeyRecord {
        generation,
        kid: kid.into(),
        algorithm: "ES256".into(),
        public_key: vec![4; 65],
        private_key: vec![1, 2, 3],
        encrypted: false,
        created_at: t0,
        activates_at: t0 + Duration::days(generation),
    };
    assert!(s.insert_signing_key(&key(1, "a")).await.unwrap());
    assert!(
        !s.insert_signing_key(&key(1, "b")).await.unwrap(),
        "a generation is created once"
    );
    assert!(s.insert_signing_key(&key(2, "c")).await.unwrap());
    s.set_key_activation(2, t0).await.unwrap();
    let keys = s.signing_keys().await.unwrap();
    assert_eq!(
        keys.iter().map(|k| k.kid.as_str()).collect::<Vec<_>>(),
        vec!["a", "c"]
    );
    assert_eq!(
        keys[1].activates_at.timestamp_micros(),
        t0.timestamp_micros()
    );
    assert_eq!(keys[0].private_key, vec![1, 2, 3]);

    // Disabling revokes every live session, once.
    let other = NewSession {
        id: Uuid::now_v7(),
        user_id: ada.id,
        created_at: Utc::now(),
        client_address: None,
        user_agent: None,
    };
    s.insert_session(&other, &token(2, other.id, Duration::days(1)))
        .await
        .unwrap();
    assert_eq!(
        s.disable_identity(ada.id, Utc::now(), "deleted")
            .await
            .unwrap(),
        vec![other.id]
    );
    assert!(
        s.disable_identity(ada.id, Utc::now(), "deleted")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        s.identity_by_email("ada@example.com")
            .await
            .unwrap()
            .unwrap()
            .disabled
    );
}
