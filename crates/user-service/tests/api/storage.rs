//! The storage conformance suite: the same expectations of the SQL functions
//! on both backends.

use crate::helpers::{Backend, both_backends};
use chrono::{Duration, Utc};
use platform::db::Database;
use platform::ids::UserId;
use platform::sql;
use platform::sql::Read;
use platform::sql::Tx;
use test_support::TestDatabase;
use user_service::domain::Filter;
use user_service::storage::{ListCursor, MIGRATIONS, Sql, StoreError, UserRecord};

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

/// A migrated database of `backend` and a connection to it.
async fn open(backend: Backend) -> (TestDatabase, Database, Read) {
    let test_db = backend.fresh_database().await;
    let db = Database::connect(&test_db.url, &MIGRATIONS).await.unwrap();
    db.migrate().await.unwrap();
    let conn = db.read().await.unwrap();
    (test_db, db, conn)
}

async fn users_round_trip(backend: Backend) {
    let (_keep, db, mut c) = open(backend).await;
    db.migrate().await.expect("migrations are idempotent");
    let ada = record("ada");
    let stored = platform::sql!(&mut c, Sql::insert_user(&ada))
        .unwrap()
        .unwrap();
    assert_eq!(stored.id, ada.id);
    assert_eq!(
        stored.created_at.timestamp_micros(),
        ada.created_at.timestamp_micros()
    );
    assert_eq!(
        platform::sql!(&mut c, Sql::insert_user(&ada)).unwrap(),
        None,
        "same id: nothing inserted"
    );
    assert_eq!(
        platform::sql!(&mut c, Sql::any_user(ada.id)).unwrap(),
        Some(stored)
    );
    assert!(matches!(
        platform::sql!(&mut c, Sql::insert_user(&record("ada"))),
        Err(StoreError::UsernameTaken)
    ));

    let names = ["ab_c", "abx", "a%c", "bob"];
    let mut ids = vec![ada.id];
    for n in names {
        let user = platform::sql!(&mut c, Sql::insert_user(&record(n))).unwrap();
        ids.push(user.unwrap().id);
    }
    let got = platform::sql!(&mut c, Sql::get_user(ada.id))
        .unwrap()
        .unwrap();
    assert_eq!(got.username, "ada");
    let nobody = UserId::generate();
    assert!(
        platform::sql!(&mut c, Sql::get_user(nobody))
            .unwrap()
            .is_none()
    );
    assert!(platform::sql!(&mut c, Sql::exists(ada.id)).unwrap());
    assert!(!platform::sql!(&mut c, Sql::exists(nobody)).unwrap());
    assert_eq!(
        platform::sql!(&mut c, Sql::get_users(&ids)).unwrap().len(),
        5
    );
    assert!(
        platform::sql!(&mut c, Sql::get_users(&[]))
            .unwrap()
            .is_empty()
    );

    let pool = &db.pool;
    let list = |filter: Filter, after: Option<ListCursor>, limit: i64| async move {
        let mut c = Read::open(pool).await.unwrap();
        platform::sql!(&mut c, Sql::list_users(&filter, after.as_ref(), limit))
            .unwrap()
            .into_iter()
            .map(|row| row.user)
            .collect::<Vec<_>>()
    };
    let all = list(Filter::All, None, 100).await;
    assert_eq!(
        all.iter().map(|u| u.id).collect::<Vec<_>>(),
        ids,
        "id order"
    );
    let cursor = ListCursor {
        key: String::new(),
        id: ids[1],
    };
    let after = list(Filter::All, Some(cursor), 2).await;
    assert_eq!(
        after.iter().map(|u| u.id).collect::<Vec<_>>(),
        ids[2..4].to_vec()
    );
    // Wildcards in a prefix are literal.
    let under = list(Filter::UsernamePrefix("ab_".into()), None, 100).await;
    assert_eq!(
        under
            .iter()
            .map(|u| u.username.as_str())
            .collect::<Vec<_>>(),
        vec!["ab_c"]
    );
    assert_eq!(
        list(Filter::UsernamePrefix("a%".into()), None, 100)
            .await
            .len(),
        1
    );
    assert_eq!(
        list(Filter::DisplayNamePrefix("bob d".into()), None, 100)
            .await
            .len(),
        1
    );
    assert_eq!(
        list(Filter::UsernameIs("abx".into()), None, 100)
            .await
            .len(),
        1
    );
}

async fn conditional_writes_and_deletion(backend: Backend) {
    let (_keep, db, mut c) = open(backend).await;
    let ada = platform::sql!(&mut c, Sql::insert_user(&record("ada")))
        .unwrap()
        .unwrap();
    let bob = platform::sql!(&mut c, Sql::insert_user(&record("bob")))
        .unwrap()
        .unwrap();

    let changed = UserRecord {
        display_name: "Countess".into(),
        updated_at: Utc::now() + Duration::seconds(1),
        ..ada.clone()
    };
    let mut tx = Tx::write(&db.pool).await.unwrap();
    let v2 = sql!(&mut tx, Sql::update_user(&changed)).unwrap().unwrap();
    tx.commit().await.unwrap();
    assert_eq!((v2.version, v2.display_name.as_str()), (2, "Countess"));
    assert_eq!(
        platform::sql!(&mut c, Sql::update_user(&changed)).unwrap(),
        None,
        "version 1 is gone"
    );
    let steal = UserRecord {
        username: "bob".into(),
        ..v2.clone()
    };
    assert!(matches!(
        platform::sql!(&mut c, Sql::update_user(&steal)),
        Err(StoreError::UsernameTaken)
    ));
    let ghost = UserRecord {
        id: UserId::generate(),
        ..v2.clone()
    };
    assert_eq!(
        platform::sql!(&mut c, Sql::update_user(&ghost)).unwrap(),
        None
    );

    let now = Utc::now();
    assert!(!platform::sql!(&mut c, Sql::soft_delete(ada.id, Some(1), now)).unwrap());
    let mut tx = Tx::write(&db.pool).await.unwrap();
    assert!(sql!(&mut tx, Sql::soft_delete(ada.id, Some(2), now)).unwrap());
    drop(tx);
    assert!(
        platform::sql!(&mut c, Sql::exists(ada.id)).unwrap(),
        "a deletion rolled back leaves the user"
    );
    assert!(platform::sql!(&mut c, Sql::soft_delete(ada.id, None, now)).unwrap());
    assert!(!platform::sql!(&mut c, Sql::soft_delete(ada.id, None, now)).unwrap());
    assert!(
        platform::sql!(&mut c, Sql::get_user(ada.id))
            .unwrap()
            .is_none()
    );
    let deleted = platform::sql!(&mut c, Sql::any_user(ada.id))
        .unwrap()
        .unwrap();
    assert_eq!(deleted.version, 3);
    assert_eq!(
        platform::sql!(&mut c, Sql::list_users(&Filter::All, None, 10))
            .unwrap()
            .into_iter()
            .map(|row| row.user)
            .collect::<Vec<_>>(),
        vec![bob]
    );
    // Deleted usernames are free again; the deleted row still holds its id.
    assert!(
        platform::sql!(&mut c, Sql::insert_user(&record("ada")))
            .unwrap()
            .is_some()
    );
    assert_eq!(
        platform::sql!(&mut c, Sql::insert_user(&ada)).unwrap(),
        None
    );
}

/// Both migration folders describe the same tables and columns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_schemas_have_the_same_columns() {
    let mut columns = Vec::new();
    for backend in [Backend::Postgres, Backend::Sqlite] {
        let db = backend.fresh_database().await;
        let opened = Database::connect(&db.url, &MIGRATIONS).await.unwrap();
        opened.migrate().await.unwrap();
        columns.push(test_support::schema::columns(&db.url).await);
    }
    assert!(columns[0].len() > 15, "{:?}", columns[0]);
    assert_eq!(columns[0], columns[1]);
}
