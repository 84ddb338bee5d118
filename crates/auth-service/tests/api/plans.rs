//! At scale, every list, poll and pruning statement reads an index, never a
//! whole table that grows: the statements the service sends, run on a
//! PostgreSQL database seeded with tens of thousands of users (plus their
//! sessions, refresh tokens, audit events, links, counters and outbox
//! events), under custom and generic plans alike. Plans, not timings: the
//! figures at a million users are in BENCHMARKS.md.

use auth_service::access::RoleSql;
use auth_service::audit::{AuditQuery, AuditSql};
use auth_service::credentials::IdentitySql;
use auth_service::retention::RetentionSql;
use auth_service::sessions::SessionSql;
use auth_service::signals::SignalSql;
use chrono::{Duration, Utc};
use platform::ids::{SessionId, UserId};
use platform::outbox::SqlOutbox;
use sqlx::{PgConnection, Postgres};
use test_support::Backend;
use test_support::plans::{PlanMode, Plans};
use uuid::Uuid;

/// Users seeded; every other table is a multiple of this.
const USERS: i64 = 50_000;

/// The tables that grow with the users and with time.
const GROWING: &[&str] = &[
    "identities",
    "subject_roles",
    "sessions",
    "refresh_tokens",
    "audit_events",
    "one_time_tokens",
    "throttle_counters",
    "outbox",
    "mfa_challenges",
    "mfa_recovery_codes",
    "mfa_totp",
    "security_events",
];

async fn seed(conn: &mut PgConnection) {
    // Three sessions a user (one revoked long ago), a refresh token each,
    // four audit events a user over the last weeks, a link, a counter, a
    // delivered outbox event, a challenge: all in the past, none due.
    let statements = [
        "INSERT INTO identities (id, email, display_name, password_hash, created_at, updated_at)
         SELECT md5('u' || i)::uuid, 'user' || i || '@example.com', 'User ' || i, 'x',
                now() - interval '30 days', now() - interval '30 days'
         FROM generate_series(1, $1) i",
        "INSERT INTO subject_roles (subject_id, role) SELECT id, 'user' FROM identities",
        "INSERT INTO sessions (id, user_id, created_at, last_used_at, revoked_at)
         SELECT md5('s' || i || '.' || k)::uuid, md5('u' || i)::uuid,
                now() - k * interval '1 hour', now() - k * interval '1 minute',
                CASE WHEN k = 3 THEN now() - interval '2 minutes' END
         FROM generate_series(1, $1) i, generate_series(1, 3) k",
        "INSERT INTO refresh_tokens (token_hash, session_id, created_at, expires_at)
         SELECT decode(md5('r' || id), 'hex'), id, created_at, now() + interval '30 days'
         FROM sessions",
        "INSERT INTO audit_events (id, at, kind, actor_id, subject, details)
         SELECT md5('a' || i)::uuid, now() - i * interval '5 seconds',
                (ARRAY['login', 'logout', 'password_changed', 'role_assigned'])[1 + i % 4],
                md5('u' || (1 + i % $1))::uuid::text,
                CASE WHEN i % 2 = 0 THEN md5('u' || (1 + (i * 7) % $1))::uuid::text END, '{}'
         FROM generate_series(1, 4 * $1) i",
        "INSERT INTO one_time_tokens (token_hash, purpose, user_id, email, created_at, expires_at)
         SELECT decode(md5('t' || i), 'hex'), 'password_reset', md5('u' || i)::uuid,
                'user' || i || '@example.com', now(), now() + interval '1 hour'
         FROM generate_series(1, $1) i",
        "INSERT INTO throttle_counters (key, count, window_start, updated_at)
         SELECT 'login:address:10.0.' || i, 1, now(), now() FROM generate_series(1, $1) i",
        "INSERT INTO outbox (id, topic, aggregate_id, payload, created_at, next_attempt_at,
                             delivered_at)
         SELECT md5('o' || i)::uuid, 'user.registered', md5('u' || i)::uuid, '{}',
                now() - interval '1 hour', now() - interval '1 hour', now()
         FROM generate_series(1, $1) i",
        "INSERT INTO mfa_challenges (challenge_hash, user_id, credential, created_at, expires_at)
         SELECT decode(md5('c' || i), 'hex'), md5('u' || i)::uuid, '\\x00', now(),
                now() + interval '5 minutes'
         FROM generate_series(1, $1 / 10) i",
        // Two revocations a user in the feed, from many transactions.
        "INSERT INTO security_events (tx, id, at, kind, subject_id, subject_kind, session_id)
         SELECT 1000 + i / 3, md5('e' || i)::uuid, now() - i * interval '50 milliseconds',
                'session-revoked', md5('u' || (1 + i % $1))::uuid::text, 'user',
                md5('s' || i)::uuid
         FROM generate_series(1, 2 * $1) i",
    ];
    for statement in statements {
        let query = sqlx::query(statement);
        let query = if statement.contains("$1") {
            query.bind(USERS)
        } else {
            query
        };
        query.execute(&mut *conn).await.expect(statement);
    }
    sqlx::raw_sql("ANALYZE").execute(&mut *conn).await.unwrap();
}

/// Runs every statement that reads a growing table by something other than
/// its key; returns how many ran.
async fn run_statements(c: &mut PgConnection, someone: UserId) -> usize {
    type Audit = AuditSql<Postgres>;
    type Sessions = SessionSql<Postgres>;
    type Retention = RetentionSql<Postgres>;
    type Outbox = SqlOutbox<Postgres>;
    let now = Utc::now();
    let long_ago = now - Duration::days(365);
    let mut ran = 0;
    let subject = someone.to_string();
    let page = |q: AuditQuery| AuditQuery { limit: 21, ..q };
    let first_pages = [
        page(AuditQuery::default()),
        page(AuditQuery {
            kind: Some("logout".into()),
            ..Default::default()
        }),
        page(AuditQuery {
            involving: Some(subject.clone()),
            ..Default::default()
        }),
        page(AuditQuery {
            since: Some(now - Duration::hours(2)),
            ..Default::default()
        }),
        page(AuditQuery {
            kind: Some("login".into()),
            since: Some(now - Duration::hours(2)),
            ..Default::default()
        }),
    ];
    for q in first_pages {
        let rows = Audit::list_audit(c, &q).await.unwrap();
        ran += 1;
        // The next page, after the first's last row.
        if let Some(last) = rows.last() {
            let next = AuditQuery {
                before: Some((last.at, last.id)),
                ..q
            };
            Audit::list_audit(c, &next).await.unwrap();
            ran += 1;
        }
    }
    let sessions = Sessions::list_sessions(c, someone, None, 21).await.unwrap();
    assert!(!sessions.is_empty(), "the seed gave every user sessions");
    let last = sessions.last().unwrap();
    let cursor: (chrono::DateTime<Utc>, SessionId) = (last.created_at, last.id);
    Sessions::list_sessions(c, someone, Some(cursor), 21)
        .await
        .unwrap();
    Sessions::revoked_sessions_since(c, now - Duration::seconds(5))
        .await
        .unwrap();
    RoleSql::<Postgres>::subject_changes_since(c, now - Duration::seconds(5))
        .await
        .unwrap();
    IdentitySql::<Postgres>::identity_by_email(c, "user7@example.com")
        .await
        .unwrap()
        .expect("seeded");
    ran += 5;
    // Pruning when nothing is due: the pass that must not scan.
    Retention::prune_refresh_tokens(c, long_ago, 1000)
        .await
        .unwrap();
    Retention::prune_sessions(c, long_ago, long_ago, long_ago, 1000)
        .await
        .unwrap();
    Retention::prune_throttle(c, long_ago, 1000).await.unwrap();
    Retention::prune_one_time_tokens(c, long_ago, 1000)
        .await
        .unwrap();
    Retention::prune_mfa_challenges(c, long_ago, 1000)
        .await
        .unwrap();
    Retention::prune_audit(c, long_ago, 1000).await.unwrap();
    Outbox::prune_delivered(c, long_ago, 1000).await.unwrap();
    Retention::prune_security_events(c, long_ago, 1000)
        .await
        .unwrap();
    // The feed: a subscriber from the start, one mid-way, the head poll.
    type Signals = SignalSql<Postgres>;
    let first = Signals::read_after(c, None, 256).await.unwrap();
    let middle = first.last().map(|l| l.position);
    Signals::read_after(c, middle, 256).await.unwrap();
    Signals::head(c).await.unwrap();
    ran += 4;
    Outbox::backlog(c).await.unwrap();
    Outbox::claim_due(c, now, now + Duration::seconds(30), 10)
        .await
        .unwrap();
    ran + 11
}

#[tokio::test(flavor = "current_thread")]
async fn lists_polls_and_pruning_read_indexes_at_scale() {
    let db = Backend::Postgres.fresh_database().await;
    auth_service::storage::connect(&db.url)
        .await
        .unwrap()
        .migrate()
        .await
        .unwrap();
    let mut conn = Plans::connect(&db.url, PlanMode::Custom).await;
    seed(&mut conn).await;
    let someone: Uuid = sqlx::query_scalar("SELECT md5('u' || 42)::uuid")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let someone = UserId::from_uuid(someone);
    drop(conn);

    let plans = Plans::collect();
    for mode in [PlanMode::Custom, PlanMode::Generic] {
        let mut conn = Plans::connect(&db.url, mode).await;
        let ran = run_statements(&mut conn, someone).await;
        // Each statement ran at least once (a pruning pass runs several).
        plans.assert_indexed(mode, ran, GROWING);
    }
}

/// Replicas starting together on one new database all migrate it: the one
/// building indexes concurrently never waits on another blocked behind it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_migrating_at_once_all_succeed() {
    let db = Backend::Postgres.fresh_database().await;
    let replica = || async {
        auth_service::storage::connect(&db.url)
            .await
            .unwrap()
            .migrate()
            .await
    };
    let (a, b, c) = tokio::join!(replica(), replica(), replica());
    for migrated in [a, b, c] {
        migrated.expect("every replica migrates");
    }
}
