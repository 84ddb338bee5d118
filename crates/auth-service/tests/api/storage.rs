//! The storage conformance suite: the same expectations of both backends.

use crate::helpers::{Backend, both_backends};
use auth_service::access::{RoleName, RoleSql};
use auth_service::credentials::NewIdentity;
use auth_service::credentials::changes::CredentialChange;
use auth_service::credentials::{EndsSql, IdentitySql};
use auth_service::keys::SigningKeyRecord;
use auth_service::sessions::{Amr, NewRefreshToken, NewSession};
use auth_service::storage::StoreError;
use auth_service::{keys::KeySql, sessions::SessionSql};
use chrono::{Duration, Utc};
use platform::db::Database;
use platform::ids::{SessionId, UserId};
use platform::outbox::{OutboxEvent, SqlOutbox};

both_backends!(
    identities,
    refresh_token_rotation,
    revocations_and_keys,
    logins_racing_a_credential_change,
    delivered_outbox_events_are_pruned_undelivered_kept
);

async fn store(backend: Backend) -> (Database, test_support::TestDatabase) {
    let db = backend.fresh_database().await;
    let store = auth_service::storage::connect(&db.url).await.unwrap();
    store.migrate().await.unwrap();
    store.migrate().await.expect("migrations are idempotent");
    store.ping().await.unwrap();
    (store, db)
}

fn identity(email: &str) -> NewIdentity {
    NewIdentity {
        id: UserId::generate(),
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
        identity.id.uuid(),
        "{}".into(),
        identity.created_at,
    )
}

/// Registers `identity` as the use case does: its rows and its event.
async fn insert(s: &Database, identity: &NewIdentity) -> Result<(), StoreError> {
    let mut tx = s.write().await?;
    platform::sql!(&mut tx, IdentitySql::insert_identity(identity))?;
    platform::sql!(&mut tx, SqlOutbox::insert_all(&[event(identity)]))?;
    Ok(tx.commit().await?)
}

/// A password change as the use case writes it: the hash if still
/// `expected`, and what the change ends, in one transaction.
async fn change_password(
    s: &Database,
    (user_id, current): (UserId, Option<SessionId>),
    expected: &str,
    hash: &str,
) -> Option<Vec<SessionId>> {
    let (mut tx, now) = (s.write().await.unwrap(), Utc::now());
    if !platform::sql!(
        &mut tx,
        IdentitySql::replace_hash(user_id, expected, hash, now)
    )
    .unwrap()
    {
        return None;
    }
    let change = CredentialChange::PasswordChanged;
    let revoked = platform::sql!(
        &mut tx,
        EndsSql::end_artefacts(user_id, change, current, now)
    );
    tx.commit().await.unwrap();
    Some(revoked.unwrap())
}

/// Disables an identity as the use case does; the sessions revoked.
async fn disable(s: &Database, user_id: UserId) -> Vec<SessionId> {
    let (mut tx, now) = (s.write().await.unwrap(), Utc::now());
    platform::sql!(&mut tx, IdentitySql::disable(user_id, false, now)).unwrap();
    let change = CredentialChange::AccountDisabled;
    let revoked = platform::sql!(&mut tx, EndsSql::end_artefacts(user_id, change, None, now));
    tx.commit().await.unwrap();
    revoked.unwrap()
}

fn token(byte: u8, session_id: SessionId, expires_in: Duration) -> NewRefreshToken {
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
    insert(&s, &ada).await.unwrap();
    assert!(matches!(
        insert(&s, &identity("ada@example.com")).await,
        Err(StoreError::EmailTaken)
    ));
    let found = platform::sql!(read(&s), IdentitySql::identity_by_email("ada@example.com"))
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.id, found.display_name.as_str(), found.disabled),
        (ada.id, "Ada", false)
    );
    assert!(
        platform::sql!(
            read(&s),
            IdentitySql::identity_by_email("nobody@example.com")
        )
        .unwrap()
        .is_none()
    );
    assert_eq!(
        platform::sql!(read(&s), RoleSql::subject_roles(ada.id.into()))
            .unwrap()
            .unwrap(),
        [RoleName::builtin("admin"), RoleName::builtin("user")]
    );
    assert!(
        !platform::sql!(
            write(&s),
            IdentitySql::replace_hash(ada.id, "$argon2id$other", "$argon2id$new", Utc::now())
        )
        .unwrap(),
        "a re-hash never overwrites a password changed meanwhile"
    );
    assert!(
        platform::sql!(
            write(&s),
            IdentitySql::replace_hash(ada.id, "$argon2id$fake", "$argon2id$new", Utc::now())
        )
        .unwrap()
    );
    let found = platform::sql!(read(&s), IdentitySql::identity_by_email("ada@example.com"))
        .unwrap()
        .unwrap();
    assert_eq!(found.password_hash, "$argon2id$new");

    // A password change is conditional on the hash it checked, and ends every
    // other session in the same transaction.
    let session = |id| NewSession {
        id,
        user_id: ada.id,
        created_at: Utc::now(),
        client_address: None,
        user_agent: None,
        amr: Amr::Password,
    };
    let (kept, other) = (
        session(SessionId::generate()),
        session(SessionId::generate()),
    );
    for (n, s2) in [(1, &kept), (2, &other)] {
        assert!(
            platform::sql!(
                write(&s),
                SessionSql::open_session_rows(
                    s2,
                    &token(n, s2.id, Duration::days(1)),
                    ("$argon2id$new", 0)
                )
            )
            .unwrap()
        );
    }
    assert_eq!(
        change_password(&s, (ada.id, Some(kept.id)), "$argon2id$fake", "$argon2id$x").await,
        None,
        "a stale hash changes nothing"
    );
    assert_eq!(
        change_password(&s, (ada.id, Some(kept.id)), "$argon2id$new", "$argon2id$x").await,
        Some(vec![other.id])
    );
    let late = session(SessionId::generate());
    assert!(
        !platform::sql!(
            write(&s),
            SessionSql::open_session_rows(
                &late,
                &token(3, late.id, Duration::days(1)),
                ("$argon2id$new", 0)
            )
        )
        .unwrap(),
        "a login checked against the old password opens no session"
    );
}

async fn refresh_token_rotation(backend: Backend) {
    let (s, _db) = store(backend).await;
    let ada = identity("ada@example.com");
    insert(&s, &ada).await.unwrap();
    let session = NewSession {
        id: SessionId::generate(),
        user_id: ada.id,
        created_at: Utc::now(),
        client_address: None,
        user_agent: None,
        amr: Amr::Password,
    };
    let first = token(1, session.id, Duration::days(1));
    assert!(
        platform::sql!(
            write(&s),
            SessionSql::open_session_rows(&session, &first, ("$argon2id$fake", 0))
        )
        .unwrap()
    );

    // Twenty refreshes race with one token: exactly one spends it.
    let now = Utc::now();
    let racers: Vec<_> = (0..20)
        .map(|_| {
            let s = s.clone();
            tokio::spawn(async move {
                platform::sql!(write(&s), SessionSql::spend_refresh_token(&[1; 32], now)).unwrap()
            })
        })
        .collect();
    let mut spent = Vec::new();
    for racer in racers {
        spent.extend(racer.await.unwrap());
    }
    let micros =
        |(session, at): (SessionId, chrono::DateTime<Utc>)| (session, at.timestamp_micros());
    assert_eq!(
        spent.into_iter().map(micros).collect::<Vec<_>>(),
        vec![micros((session.id, first.expires_at))]
    );
    assert_eq!(
        platform::sql!(read(&s), SessionSql::refresh_token_session(&[1; 32])).unwrap(),
        Some((session.id, true)),
        "a spent token still names its session, for reuse detection"
    );
    assert_eq!(
        platform::sql!(read(&s), SessionSql::refresh_token_session(&[9; 32])).unwrap(),
        None
    );

    let next = token(2, session.id, Duration::days(1));
    platform::sql!(write(&s), SessionSql::rotate_to(&next, now)).unwrap();
    let live = platform::sql!(read(&s), SessionSql::live_session(session.id))
        .unwrap()
        .expect("live");
    assert_eq!(
        (
            live.holder.user_id,
            live.holder.email_verified,
            live.holder.amr
        ),
        (ada.id, false, Amr::Password)
    );
    assert!(
        platform::sql!(
            write(&s),
            SessionSql::revoke_session(session.id, now, "refresh_token_reuse")
        )
        .unwrap()
    );
    assert_eq!(
        platform::sql!(read(&s), SessionSql::live_session(session.id)).unwrap(),
        None,
        "a revoked session is not live"
    );
    let revoked = platform::sql!(
        read(&s),
        SessionSql::revoked_sessions_since(now - Duration::seconds(1))
    )
    .unwrap();
    assert_eq!(
        revoked.iter().map(|r| r.0).collect::<Vec<_>>(),
        vec![session.id]
    );
}

async fn revocations_and_keys(backend: Backend) {
    let (s, _db) = store(backend).await;
    let ada = identity("ada@example.com");
    insert(&s, &ada).await.unwrap();
    let session = NewSession {
        id: SessionId::generate(),
        user_id: ada.id,
        created_at: Utc::now(),
        client_address: None,
        user_agent: None,
        amr: Amr::Password,
    };
    assert!(
        platform::sql!(
            write(&s),
            SessionSql::open_session_rows(
                &session,
                &token(1, session.id, Duration::days(1)),
                ("$argon2id$fake", 0)
            )
        )
        .unwrap()
    );
    let t0 = Utc::now();
    assert!(
        platform::sql!(
            read(&s),
            SessionSql::revoked_sessions_since(t0 - Duration::hours(1))
        )
        .unwrap()
        .is_empty()
    );
    assert!(
        platform::sql!(
            write(&s),
            SessionSql::revoke_session(session.id, t0, "logout")
        )
        .unwrap()
    );
    assert!(
        !platform::sql!(
            write(&s),
            SessionSql::revoke_session(session.id, t0, "logout")
        )
        .unwrap(),
        "already revoked"
    );
    let since = platform::sql!(
        read(&s),
        SessionSql::revoked_sessions_since(t0 - Duration::seconds(1))
    )
    .unwrap();
    assert_eq!(since.len(), 1);
    assert!(
        (since[0].1 - t0).num_milliseconds().abs() < 1,
        "times round-trip to the microsecond"
    );
    assert!(
        platform::sql!(
            read(&s),
            SessionSql::revoked_sessions_since(t0 + Duration::seconds(1))
        )
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
    assert!(platform::sql!(read(&s), KeySql::insert_signing_key(&key(1, "a"))).unwrap());
    assert!(
        !platform::sql!(read(&s), KeySql::insert_signing_key(&key(1, "b"))).unwrap(),
        "a generation is created once"
    );
    assert!(platform::sql!(read(&s), KeySql::insert_signing_key(&key(2, "c"))).unwrap());
    platform::sql!(read(&s), KeySql::set_key_activation(2, t0)).unwrap();
    let keys = platform::sql!(read(&s), KeySql::signing_keys()).unwrap();
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
        id: SessionId::generate(),
        user_id: ada.id,
        created_at: Utc::now(),
        client_address: None,
        user_agent: None,
        amr: Amr::Password,
    };
    assert!(
        platform::sql!(
            write(&s),
            SessionSql::open_session_rows(
                &other,
                &token(2, other.id, Duration::days(1)),
                ("$argon2id$fake", 0)
            )
        )
        .unwrap()
    );
    assert_eq!(disable(&s, ada.id).await, vec![other.id]);
    assert!(disable(&s, ada.id).await.is_empty());
    assert!(
        platform::sql!(read(&s), IdentitySql::identity_by_email("ada@example.com"))
            .unwrap()
            .unwrap()
            .disabled
    );
    let late = NewSession {
        id: SessionId::generate(),
        user_id: ada.id,
        created_at: Utc::now(),
        client_address: None,
        user_agent: None,
        amr: Amr::Password,
    };
    assert!(
        !platform::sql!(
            write(&s),
            SessionSql::open_session_rows(
                &late,
                &token(3, late.id, Duration::days(1)),
                ("$argon2id$fake", 0)
            )
        )
        .unwrap(),
        "a login checked before the disable opens no session"
    );
}

/// Logins fired at once with a password change or a disable of the same
/// identity: each login either opened its session before the change (and the
/// change revoked it) or opened none. No session checked against the old
/// credential survives the change.
async fn logins_racing_a_credential_change(backend: Backend) {
    let (s, _db) = store(backend).await;
    for (round, change) in [(0u8, "password"), (1, "disable")] {
        let ada = identity(&format!("{change}@example.com"));
        insert(&s, &ada).await.unwrap();
        let logins: Vec<_> = (0..40u8)
            .map(|n| {
                let (s, user_id) = (s.clone(), ada.id);
                tokio::spawn(async move {
                    tokio::time::sleep(std::time::Duration::from_millis(u64::from(n))).await;
                    let session = NewSession {
                        id: SessionId::generate(),
                        user_id,
                        created_at: Utc::now(),
                        client_address: None,
                        user_agent: None,
                        amr: Amr::Password,
                    };
                    let hash = round * 100 + n;
                    platform::sql!(
                        write(&s),
                        SessionSql::open_session_rows(
                            &session,
                            &token(hash, session.id, Duration::days(1)),
                            ("$argon2id$fake", 0),
                        )
                    )
                    .unwrap()
                })
            })
            .collect();
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        let revoked = if change == "password" {
            change_password(&s, (ada.id, None), "$argon2id$fake", "$argon2id$new")
                .await
                .expect("the hash checked is current")
        } else {
            disable(&s, ada.id).await
        };
        let mut opened = 0;
        for login in logins {
            opened += usize::from(login.await.unwrap());
        }
        assert!(
            platform::sql!(read(&s), SessionSql::list_sessions(ada.id, None, 10))
                .unwrap()
                .is_empty(),
            "{change}: a session opened with the old credential survived"
        );
        assert_eq!(
            revoked.len(),
            opened,
            "{change}: every session opened before the change was revoked by it"
        );
    }
}

/// Both migration folders describe the same tables and columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_schemas_have_the_same_columns() {
    let (pg, _pg_db) = store(Backend::Postgres).await;
    let (lite, _lite_db) = store(Backend::Sqlite).await;
    drop((pg, lite));
    let pg = test_support::schema::columns(&_pg_db.url).await;
    let lite = test_support::schema::columns(&_lite_db.url).await;
    assert!(pg.len() > 40, "{pg:?}");
    assert_eq!(pg, lite);
}

async fn delivered_outbox_events_are_pruned_undelivered_kept(backend: Backend) {
    let (s, _db) = store(backend).await;
    let (ada, bob) = (identity("ada@example.com"), identity("bob@example.com"));
    for i in [&ada, &bob] {
        insert(&s, i).await.unwrap();
    }
    let now = Utc::now();
    let lease = now + Duration::minutes(1);
    let due = platform::sql!(write(&s), SqlOutbox::claim_due(now, lease, 10)).unwrap();
    assert_eq!(due.len(), 2);
    platform::sql!(write(&s), SqlOutbox::mark_delivered(due[0].id, now)).unwrap();
    let soon = now + Duration::hours(1);
    assert_eq!(
        platform::outbox::prune_delivered(&s, soon).await.unwrap(),
        0
    );
    let later = now + Duration::days(2);
    assert_eq!(
        platform::outbox::prune_delivered(&s, later).await.unwrap(),
        1
    );
    assert_eq!(
        platform::sql!(read(&s), SqlOutbox::backlog()).unwrap(),
        1,
        "the undelivered event stays"
    );
}
