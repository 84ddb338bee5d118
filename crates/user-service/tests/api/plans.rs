//! At scale, every ListUsers filter and the outbox's polling and pruning read
//! an index: the statements the service sends, on a PostgreSQL database of
//! tens of thousands of users, under custom and generic plans alike. Plans,
//! not timings: the figures at a million users are in BENCHMARKS.md.

use chrono::{Duration, Utc};
use platform::db::Database;
use platform::outbox::SqlOutbox;
use sqlx::{PgConnection, Postgres};
use test_support::Backend;
use test_support::plans::{PlanMode, Plans};
use user_service::domain::Filter;
use user_service::storage::{ListCursor, MIGRATIONS, Sql};

const USERS: i64 = 50_000;

async fn seed(conn: &mut PgConnection) {
    // Usernames and display names spread over many prefixes, a few deleted,
    // an outbox of delivered events.
    for statement in [
        "INSERT INTO users (id, email, username, display_name, created_at, updated_at,
                            deleted_at)
         SELECT md5('u' || i)::uuid, 'user' || i || '@example.com',
                substr(md5('n' || i), 1, 6) || '.' || i,
                initcap(substr(md5('d' || i), 1, 5)) || ' ' || i,
                now(), now(), CASE WHEN i % 100 = 0 THEN now() END
         FROM generate_series(1, $1) i",
        "INSERT INTO outbox (id, topic, aggregate_id, payload, created_at, next_attempt_at,
                             delivered_at)
         SELECT md5('o' || i)::uuid, 'user.deleted', md5('u' || i)::uuid, '{}',
                now() - interval '1 hour', now() - interval '1 hour', now()
         FROM generate_series(1, $1) i",
    ] {
        sqlx::query(statement)
            .bind(USERS)
            .execute(&mut *conn)
            .await
            .expect(statement);
    }
    sqlx::raw_sql("ANALYZE").execute(&mut *conn).await.unwrap();
}

/// Each filter, its first page and the next; the outbox's statements.
async fn run_statements(c: &mut PgConnection) -> usize {
    type Users = Sql<Postgres>;
    let mut ran = 0;
    for filter in [
        Filter::All,
        Filter::UsernameIs("0a1b2c.7".into()),
        Filter::UsernamePrefix("ab".into()),
        Filter::UsernamePrefix("abc".into()),
        Filter::DisplayNamePrefix("b".into()),
        Filter::DisplayNamePrefix("bc1".into()),
    ] {
        let rows = Users::list_users(c, &filter, None, 21).await.unwrap();
        ran += 1;
        if let Some(last) = rows.last() {
            let cursor = ListCursor {
                key: last.sort_key.clone(),
                id: last.user.id,
            };
            Users::list_users(c, &filter, Some(&cursor), 21)
                .await
                .unwrap();
            ran += 1;
        }
    }
    let now = Utc::now();
    type Outbox = SqlOutbox<Postgres>;
    Outbox::prune_delivered(c, now - Duration::days(365), 1000)
        .await
        .unwrap();
    Outbox::backlog(c).await.unwrap();
    Outbox::claim_due(c, now, now + Duration::seconds(30), 10)
        .await
        .unwrap();
    ran + 3
}

#[tokio::test(flavor = "current_thread")]
async fn list_filters_and_the_outbox_read_indexes_at_scale() {
    let db = Backend::Postgres.fresh_database().await;
    Database::connect(&db.url, &MIGRATIONS)
        .await
        .unwrap()
        .migrate()
        .await
        .unwrap();
    seed(&mut Plans::connect(&db.url, PlanMode::Custom).await).await;

    let plans = Plans::collect();
    for mode in [PlanMode::Custom, PlanMode::Generic] {
        let mut conn = Plans::connect(&db.url, mode).await;
        let ran = run_statements(&mut conn).await;
        plans.assert_indexed(mode, ran, &["users", "outbox"]);
    }

    // Paging through a prefix by the index's order yields exactly the users
    // a plain LIKE finds, each once.
    let mut conn = Plans::connect(&db.url, PlanMode::Generic).await;
    for (filter, like) in [
        (Filter::UsernamePrefix("ab".into()), "username LIKE 'ab%'"),
        (
            Filter::DisplayNamePrefix("c".into()),
            "lower(display_name) LIKE 'c%'",
        ),
    ] {
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let rows = Sql::<Postgres>::list_users(&mut conn, &filter, cursor.as_ref(), 50)
                .await
                .unwrap();
            let Some(last) = rows.last() else { break };
            cursor = Some(ListCursor {
                key: last.sort_key.clone(),
                id: last.user.id,
            });
            paged.extend(rows.iter().map(|row| row.user.id.uuid()));
        }
        let mut expected: Vec<uuid::Uuid> = sqlx::query_scalar(&format!(
            "SELECT id FROM users WHERE deleted_at IS NULL AND {like}"
        ))
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert!(expected.len() > 100, "{like}: the seed spreads prefixes");
        let pages = paged.len();
        paged.sort();
        paged.dedup();
        expected.sort();
        assert_eq!(pages, paged.len(), "{like}: a user twice");
        assert_eq!(paged, expected, "{like}");
    }
}
