//! The storage conformance suite: the same expectations of both backends.

use crate::helpers::{Backend, both_backends};
use chrono::{Duration, Utc};
use platform::ids::UserId;
use platform::outbox::OutboxEvent;
use user_service::domain::Filter;
use user_service::storage::{StoreError, UserRecord, Written};

both_backends!(users_round_trip, conditional_writes_and_deletion);

fn record(username: &str) -> UserRecord {
    let now = Utc::now();
    UserRecord {
        id: UserId::generate(),
        email: format!("{username}@example.com"),
        username: username.into(),
        display_name: format!("{username} Display"),
        avatar_url: String::new(),
        bio: "bio".into(),
        locale: "en".into(),
        time_zone: "UTC".into(),
        version: 1,
        created_at: now,
        updated_at: now,
    }
}

async fn users_round_trip(backend: Backend) {
    let db = backend.fresh_database().await;
    let s = user_service::storage::connect(&db.url).await.unwrap();
    s.db.migrate().await.unwrap();
    s.db.migrate().await.expect("migrations are idempotent");
    let ada = record("ada");
    let (stored, created) = s.users.create_user(&ada).await.unwrap();
    assert!(created);
    assert_eq!(stored.id, ada.id);
    assert_eq!(
        stored.created_at.timestamp_micros(),
        ada.created_at.timestamp_micros()
    );
    let (again, created) = s.users.create_user(&ada).await.unwrap();
    assert!(!created, "same id: nothing created");
    assert_eq!(again, stored);
    assert!(matches!(
        s.users.create_user(&record("ada")).await,
        Err(StoreError::UsernameTaken)
    ));

    let names = ["ab_c", "abx", "a%c", "bob"];
    let mut ids = vec![ada.id];
    for n in names {
        ids.push(s.users.create_user(&record(n)).await.unwrap().0.id);
    }
    assert_eq!(
        s.users.get_user(ada.id).await.unwrap().unwrap().username,
        "ada"
    );
    assert!(
        s.users
            .get_user(UserId::generate())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(s.users.get_users(&ids).await.unwrap().len(), 5);
    assert!(s.users.get_users(&[]).await.unwrap().is_empty());

    let all = s.users.list_users(&Filter::All, None, 100).await.unwrap();
    assert_eq!(
        all.iter().map(|u| u.id).collect::<Vec<_>>(),
        ids,
        "id order"
    );
    let after = s
        .users
        .list_users(&Filter::All, Some(ids[1]), 2)
        .await
        .unwrap();
    assert_eq!(
        after.iter().map(|u| u.id).collect::<Vec<_>>(),
        ids[2..4].to_vec()
    );
    // LIKE wildcards in a prefix are literal.
    let under = s
        .users
        .list_users(&Filter::UsernamePrefix("ab_".into()), None, 100)
        .await
        .unwrap();
    assert_eq!(
        under
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        vec!["ab_c"]
    );
    let pct = s
        .users
        .list_users(&Filter::UsernamePrefix("a%".into()), None, 100)
        .await
        .unwrap();
    assert_eq!(pct.len(), 1);
    let shown = s
        .users
        .list_users(&Filter::DisplayNamePrefix("bob d".into()), None, 100)
        .await
        .unwrap();
    assert_eq!(shown.len(), 1);
    assert_eq!(
        s.users
            .list_users(&Filter::UsernameIs("abx".into()), None, 100)
            .await
            .unwrap()
            .len(),
        1
    );
}

async fn conditional_writes_and_deletion(backend: Backend) {
    let db = backend.fresh_database().await;
    let s = user_service::storage::connect(&db.url).await.unwrap();
    s.db.migrate().await.unwrap();
    let ada = s.users.create_user(&record("ada")).await.unwrap().0;
    let bob = s.users.create_user(&record("bob")).await.unwrap().0;

    let changed = UserRecord {
        display_name: "Countess".into(),
        updated_at: Utc::now() + Duration::seconds(1),
        ..ada.clone()
    };
    let Written::Done(v2) = s.users.update_user(&changed).await.unwrap() else {
        panic!("update refused")
    };
    assert_eq!((v2.version, v2.display_name.as_str()), (2, "Countess"));
    assert_eq!(
        s.users.update_user(&changed).await.unwrap(),
        Written::Stale,
        "version 1 is gone"
    );
    let steal = UserRecord {
        username: "bob".into(),
        ..v2.clone()
    };
    assert!(matches!(
        s.users.update_user(&steal).await,
        Err(StoreError::UsernameTaken)
    ));
    let ghost = UserRecord {
        id: UserId::generate(),
        ..v2.clone()
    };
    assert_eq!(
        s.users.update_user(&ghost).await.unwrap(),
        Written::NotFound
    );

    let event = OutboxEvent::new("user.deleted", ada.id.uuid(), "{}".into(), Utc::now());
    assert_eq!(
        s.users
            .delete_user(ada.id, Some(1), Utc::now(), &event)
            .await
            .unwrap(),
        Written::Stale
    );
    assert_eq!(
        s.outbox.clone().backlog().await.unwrap(),
        0,
        "no event without the change"
    );
    assert_eq!(
        s.users
            .delete_user(ada.id, Some(2), Utc::now(), &event)
            .await
            .unwrap(),
        Written::Done(())
    );
    assert_eq!(
        s.outbox.clone().backlog().await.unwrap(),
        1,
        "the event is written with the change"
    );
    assert_eq!(
        s.users
            .delete_user(ada.id, None, Utc::now(), &event)
            .await
            .unwrap(),
        Written::NotFound
    );
    assert!(s.users.get_user(ada.id).await.unwrap().is_none());
    assert_eq!(
        s.users.list_users(&Filter::All, None, 10).await.unwrap(),
        vec![bob]
    );
    // Deleted usernames are free again; the deleted row still answers a redelivery.
    s.users.create_user(&record("ada")).await.unwrap();
    let (redelivered, created) = s.users.create_user(&ada).await.unwrap();
    assert!(!created && redelivered.id == ada.id);
}

/// Both migration folders describe the same tables and columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_schemas_have_the_same_columns() {
    let mut columns = Vec::new();
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let db = backend.fresh_database().await;
        user_service::storage::connect(&db.url)
            .await
            .unwrap()
            .db
            .migrate()
            .await
            .unwrap();
        columns.push(test_support::schema::columns(&db.url).await);
    }
    assert!(columns[0].len() > 15, "{:?}", columns[0]);
    assert_eq!(columns[0], columns[1]);
}
