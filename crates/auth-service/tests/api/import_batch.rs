//! An import decides a whole batch from a few reads: a later line meets an
//! earlier one of its batch (or of an earlier batch) exactly as it would meet
//! a stored row, and a registration racing a batch sends it line by line.

use crate::helpers::{Backend, both_backends, spawn_app};
use auth_service::access::RoleSql;
use auth_service::credentials::{IdentitySql, NewIdentity};
use auth_service::import::{Import, Imported, Tally};
use platform::ids::UserId;
use platform::outbox::SqlOutbox;
use std::collections::BTreeMap;

both_backends!(
    a_batch_refuses_what_line_by_line_would,
    a_registration_racing_a_batch_sends_it_line_by_line,
);

async fn import(app: &crate::helpers::TestApp, text: &str) -> (Tally, BTreeMap<u64, String>) {
    let mut refused = BTreeMap::new();
    let tally = Import(&app.handle.core)
        .run(text.as_bytes(), |n, outcome| {
            if let Imported::Refused(why) = outcome {
                refused.insert(n, why.clone());
            }
        })
        .await
        .unwrap();
    (tally, refused)
}

async fn a_batch_refuses_what_line_by_line_would(backend: Backend) {
    let app = spawn_app(backend).await;
    let db = auth_service::storage::connect(&app.db_url).await.unwrap();
    let mut lines = vec![
        r#"{"email": "dup@example.com", "external_id": "x-1"}"#.to_owned(),
        r#"{"email": "DUP@Example.com"}"#.into(),
        r#"{"email": "other@example.com", "external_id": "x-1"}"#.into(),
        r#"{"email": "norole@example.com", "roles": ["ghost"]}"#.into(),
        // The line before was refused: nothing holds the address.
        r#"{"email": "norole@example.com"}"#.into(),
        r#"{"email": "twice@example.com", "roles": ["user", "admin", "user"]}"#.into(),
    ];
    // Lines 7 to 505 fill the first batch of 500; 506 and 507 are in the second.
    lines.extend((7..=505).map(|i| format!(r#"{{"email": "filler{i}@example.com"}}"#)));
    lines.push(r#"{"email": "dup@example.com", "external_id": "x-1"}"#.into());
    lines.push(r#"{"email": "third@example.com", "external_id": "x-1"}"#.into());
    let text = lines.join("\n");

    let backlog = platform::sql!(read(&db), SqlOutbox::backlog()).unwrap();
    let (tally, refused) = import(&app, &text).await;
    let earlier = "the email is on an earlier line".to_owned();
    let other = "external_id was imported with another email".to_owned();
    let expected = BTreeMap::from([
        (2, earlier.clone()),
        (3, other.clone()),
        (4, "no such role: ghost".to_owned()),
        (506, earlier),
        (507, other.clone()),
    ]);
    assert_eq!(refused, expected);
    assert_eq!((tally.imported, tally.skipped, tally.failed), (502, 0, 5));
    let owed = platform::sql!(read(&db), SqlOutbox::backlog()).unwrap();
    assert_eq!(owed - backlog, 502);
    let twice = platform::sql!(
        read(&db),
        IdentitySql::identity_by_email("twice@example.com")
    )
    .unwrap()
    .unwrap();
    let roles = platform::sql!(read(&db), RoleSql::subject_roles(twice.id.into()))
        .unwrap()
        .unwrap();
    let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    assert_eq!(roles, ["admin", "user"]);

    // Again: what the first run brought is skipped, and so are the lines
    // whose address it brought with the same external id (4 and 506: the
    // address decides first); nothing is owed twice.
    let (again, refused) = import(&app, &text).await;
    let expected = BTreeMap::from([
        (2, "email already registered".to_owned()),
        (3, other.clone()),
        (507, other),
    ]);
    assert_eq!(refused, expected);
    assert_eq!((again.imported, again.skipped, again.failed), (0, 504, 3));
    assert_eq!(
        platform::sql!(read(&db), SqlOutbox::backlog()).unwrap(),
        owed
    );
}

/// A registration commits an address between the batch's reads and its
/// insert: the batch's insert fails on the address, and the batch goes again
/// line by line, refusing only that line.
async fn a_registration_racing_a_batch_sends_it_line_by_line(backend: Backend) {
    let app = spawn_app(backend).await;
    let db = auth_service::storage::connect(&app.db_url).await.unwrap();
    // The registration's transaction, left open while the import starts.
    let mut registration = db.write().await.unwrap();
    let racer = NewIdentity {
        id: UserId::generate(),
        email: "race@example.com".into(),
        display_name: "Racer".into(),
        password_hash: "x".into(),
        roles: vec!["user".into()],
        created_at: chrono::Utc::now(),
    };
    platform::sql!(&mut registration, IdentitySql::insert_identity(&racer)).unwrap();
    let text = [
        r#"{"email": "before@example.com"}"#,
        r#"{"email": "race@example.com"}"#,
        r#"{"email": "after@example.com"}"#,
    ]
    .join("\n");
    let importing = {
        let app_core = app.handle.core.clone();
        tokio::spawn(async move {
            let mut refused = Vec::new();
            let tally = Import(&app_core)
                .run(text.as_bytes(), |n, outcome| {
                    if let Imported::Refused(why) = outcome {
                        refused.push((n, why.clone()));
                    }
                })
                .await
                .unwrap();
            (tally, refused)
        })
    };
    wait_until_blocked(backend, &app.db_url).await;
    registration.commit().await.unwrap();
    let (tally, refused) = importing.await.unwrap();
    assert_eq!(refused, [(2, "email already registered".to_owned())]);
    assert_eq!((tally.imported, tally.failed), (2, 1));
}

/// Until the import waits on the registration: on PostgreSQL its insert
/// waits for the registration's row lock (it read before the row was
/// committed); SQLite lets one writer at a time, so there the import waits
/// to begin, and meets the row once committed.
async fn wait_until_blocked(backend: Backend, url: &str) {
    let Backend::Postgres = backend else {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        return;
    };
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    for _ in 0..200 {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        if waiting > 0 {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("the import never waited for the registration");
}
