//! A verifier whose feed is cut fails closed after `max_staleness`, and a
//! reconnect resumes from its cursor: a revocation made meanwhile (on another
//! replica) is applied, none lost.

use crate::helpers::{Backend, both_backends, refused_within, spawn_auth, spawn_on};
use identity_proto::auth::v1 as pb;
use identity_verifier::{Rejection, Verifier};
use std::time::Duration;

both_backends!(
    a_cut_feed_fails_closed_and_a_reconnect_loses_nothing,
    an_old_cursor_resynchronises_and_older_tokens_must_refresh,
    the_fallback_asks_validate_token_while_stale
);

async fn a_cut_feed_fails_closed_and_a_reconnect_loses_nothing(backend: Backend) {
    let mut primary = spawn_auth(backend).await;
    let replica = spawn_on(&primary.db_url, "127.0.0.1:0", primary.clock.clone()).await;
    let max_staleness = Duration::from_secs(3);
    let verifier = Verifier::connect(primary.config(max_staleness).await)
        .await
        .unwrap();
    let (_, doomed) = primary.new_session().await;
    let (_, survivor) = primary.new_session().await;
    verifier.verify(&doomed.access_token).unwrap();

    // Cut: the verifier's Auth Service stops.
    let port = primary.addr.to_string();
    primary.stop().await;
    let stale = refused_within(
        &verifier,
        &survivor.access_token,
        Rejection::Stale,
        max_staleness + Duration::from_secs(2),
    )
    .await;
    assert!(!verifier.is_ready());
    tracing::info!(?stale, "stale after the cut");

    // Meanwhile, on the other replica, a session ends.
    replica
        .grpc
        .clone()
        .logout(pb::LogoutRequest {
            refresh_token: doomed.refresh_token.clone(),
        })
        .await
        .unwrap();

    // The service comes back where the verifier expects it: it resumes.
    let _back = spawn_on(&primary.db_url, &port, primary.clock.clone()).await;
    assert!(verifier.wait_ready(Duration::from_secs(10)).await);
    refused_within(
        &verifier,
        &doomed.access_token,
        Rejection::Revoked,
        Duration::from_secs(1),
    )
    .await;
    verifier.verify(&survivor.access_token).unwrap();
}

async fn an_old_cursor_resynchronises_and_older_tokens_must_refresh(backend: Backend) {
    let mut primary = spawn_auth(backend).await;
    let replica = spawn_on(&primary.db_url, "127.0.0.1:0", primary.clock.clone()).await;
    let verifier = Verifier::connect(primary.config(Duration::from_secs(3)).await)
        .await
        .unwrap();
    let (_, before) = primary.new_session().await;
    let port = primary.addr.to_string();
    primary.stop().await;
    refused_within(
        &verifier,
        &before.access_token,
        Rejection::Stale,
        Duration::from_secs(5),
    )
    .await;
    // Meanwhile a session ends, and the verifier stays away longer than the
    // feed keeps events (AUTH_EVENTS_RETENTION, 1 h, and pruning's hour of
    // margin): pruning deletes what the verifier never saw, so its cursor
    // is out of range and whatever happened meanwhile is unknown.
    let (_, gone) = replica.new_session().await;
    replica
        .grpc
        .clone()
        .logout(pb::LogoutRequest {
            refresh_token: gone.refresh_token.clone(),
        })
        .await
        .unwrap();
    primary.clock.advance(chrono::Duration::minutes(181));
    let pruned = replica.pruner.prune_once().await.unwrap();
    assert!(pruned.security_events >= 1, "{pruned:?}");
    let (_, during) = replica.new_session().await;
    let _back = spawn_on(&primary.db_url, &port, primary.clock.clone()).await;
    assert!(verifier.wait_ready(Duration::from_secs(10)).await);
    assert_eq!(
        verifier.verify(&during.access_token),
        Err(Rejection::Refresh),
        "a token from before the resynchronisation must be refreshed"
    );
    primary.clock.advance(chrono::Duration::seconds(2));
    let (_, after) = replica.new_session().await;
    verifier.verify(&after.access_token).unwrap();
}

async fn the_fallback_asks_validate_token_while_stale(backend: Backend) {
    let auth = spawn_auth(backend).await;
    // Never current (its bound is shorter than the heartbeat): `verify` is
    // stale, the fallback answers.
    let mut config = auth.config(Duration::from_millis(1)).await;
    config.fallback = true;
    let stop = tokio_util::sync::CancellationToken::new();
    let mut tasks = platform::tasks::Supervisor::new(stop.clone());
    let verifier = Verifier::start(config, &mut tasks).unwrap();
    let (_, session) = auth.new_session().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        verifier.verify(&session.access_token),
        Err(Rejection::Stale)
    );
    let claims = verifier
        .verify_or_fallback(&session.access_token)
        .await
        .unwrap();
    assert_eq!(claims.session_id.uuid().to_string(), session.session_id);
    assert!(claims.roles.contains(&"user".to_owned()));
    auth.grpc
        .clone()
        .logout(pb::LogoutRequest {
            refresh_token: session.refresh_token,
        })
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        verifier.verify_or_fallback(&session.access_token).await,
        Err(Rejection::Revoked)
    );
    assert_eq!(
        verifier.verify_or_fallback("not-a-token").await,
        Err(Rejection::Malformed),
        "a malformed token is refused locally, never sent"
    );
    stop.cancel();
    tasks.join().await;
}
