//! A database outage longer than the sync bound, on a PostgreSQL cluster of
//! this test's own that it stops and starts: validation fails closed and
//! `/readyz` turns 503 while the replica's view of revocations is stale, and
//! both recover by themselves once the database is back.

use crate::helpers::{settings, spawn_with};
use platform::clock::ManualClock;
use std::time::{Duration, Instant};
use test_support::postgres::Cluster;
use tonic::Code;

async fn readyz(http: &str) -> u16 {
    reqwest::get(format!("{http}/readyz"))
        .await
        .map_or(0, |r| r.status().as_u16())
}

async fn view_age(http: &str) -> f64 {
    test_support::service::metric(http, "auth_sync_view_age_seconds")
        .await
        .expect("auth_sync_view_age_seconds is exported")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_revocation_view_fails_closed_and_recovers_by_itself() {
    let mut cluster = tokio::task::spawn_blocking(Cluster::start_private)
        .await
        .unwrap();
    let url = cluster.create_database().await;
    let mut s = settings(&url);
    s.max_sync_age = Duration::from_secs(1);
    let app = spawn_with(s, ManualClock::default(), true).await;
    let session = app.new_session().await;
    app.validate(&session.access_token).await.unwrap();
    assert_eq!(readyz(&app.http).await, 200);

    // The outage starts when the stop does: connections are terminated at once,
    // while pg_ctl waits for the server to exit.
    let stopped = Instant::now();
    let mut cluster = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    })
    .await
    .unwrap();
    // Within the bound the replica keeps answering from its (recent) view.
    let refused = loop {
        match app.validate(&session.access_token).await {
            Err(status) => break status,
            Ok(_) => {
                assert!(
                    stopped.elapsed() < Duration::from_secs(5),
                    "still validating 5 s into the outage"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    };
    assert!(
        stopped.elapsed() >= Duration::from_millis(900),
        "failed closed only past the bound, not at the first failed poll"
    );
    assert_eq!(refused.code(), Code::Unavailable, "{refused:?}");
    assert!(refused.message().contains("retry"), "{}", refused.message());
    assert_eq!(readyz(&app.http).await, 503);
    assert!(view_age(&app.http).await > 1.0);

    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart();
        cluster
    })
    .await
    .unwrap();
    let restarted = Instant::now();
    while app.validate(&session.access_token).await.is_err() {
        assert!(
            restarted.elapsed() < Duration::from_secs(15),
            "did not recover within 15 s of the database's return"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(readyz(&app.http).await, 200);
    assert!(view_age(&app.http).await < 1.0);
    drop(app);
    drop(cluster);
}

/// Requests in flight while PostgreSQL stops and starts again: every failure is
/// one a client may retry (UNAVAILABLE, or ABORTED), never INTERNAL, and the
/// service serves again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_stopping_under_load_is_unavailable_never_internal() {
    use identity_proto::auth::v1 as pb;
    let mut cluster = tokio::task::spawn_blocking(Cluster::start_private)
        .await
        .unwrap();
    let url = cluster.create_database().await;
    let app = spawn_with(settings(&url), ManualClock::default(), true).await;
    let email = crate::helpers::unique_email();
    app.register(&email, crate::helpers::PASSWORD)
        .await
        .unwrap();
    let token = app
        .login(&email, crate::helpers::PASSWORD)
        .await
        .unwrap()
        .access_token;

    let stop = tokio_util::sync::CancellationToken::new();
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (grpc, stop, email) = (app.grpc.clone(), stop.clone(), email.clone());
            let token = token.clone();
            tokio::spawn(async move {
                let mut codes = Vec::new();
                let mut n = 0;
                while !stop.is_cancelled() {
                    n += 1;
                    // Most workers keep queries in flight (no hashing); two also
                    // write through the hash pool.
                    let result = if w < 6 {
                        grpc.clone()
                            .list_sessions(crate::helpers::bearer(
                                pb::ListSessionsRequest::default(),
                                &token,
                            ))
                            .await
                            .map(drop)
                    } else if w == 6 {
                        grpc.clone()
                            .login(pb::LoginRequest {
                                email: email.clone(),
                                password: crate::helpers::PASSWORD.into(),
                            })
                            .await
                            .map(drop)
                    } else {
                        grpc.clone()
                            .register(pb::RegisterRequest {
                                email: format!("load-{w}-{n}-{email}"),
                                password: crate::helpers::PASSWORD.into(),
                                display_name: String::new(),
                            })
                            .await
                            .map(drop)
                    };
                    if let Err(s) = result {
                        codes.push((s.code(), s.message().to_owned()));
                    }
                    tokio::task::yield_now().await;
                }
                codes
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut cluster = tokio::task::spawn_blocking(move || {
        cluster.stop();
        cluster
    })
    .await
    .unwrap();
    // Down longer than the pool's acquire timeout (5 s): besides the queries
    // the stop cut off, requests waiting for a connection time out, so the
    // outage is seen however the cut-off moment fell on a loaded machine.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let cluster = tokio::task::spawn_blocking(move || {
        cluster.restart();
        cluster
    })
    .await
    .unwrap();
    let restarted = Instant::now();
    while app.login(&email, crate::helpers::PASSWORD).await.is_err() {
        assert!(
            restarted.elapsed() < Duration::from_secs(15),
            "logins did not recover within 15 s of the database's return"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.cancel();
    let mut failures = Vec::new();
    for w in workers {
        failures.extend(w.await.unwrap());
    }
    assert!(
        failures.iter().any(|(c, _)| *c == Code::Unavailable),
        "the outage was seen: {failures:?}"
    );
    let wrong: Vec<_> = failures
        .iter()
        .filter(|(c, _)| {
            !matches!(
                c,
                Code::Unavailable | Code::Aborted | Code::ResourceExhausted
            )
        })
        .collect();
    assert!(wrong.is_empty(), "not retryable: {wrong:?}");
    drop(app);
    drop(cluster);
}
