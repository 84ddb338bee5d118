//! A verifier whose feed is cut fails closed after `max_staleness`, and a
//! reconnect resumes from its cursor: a revocation made meanwhile (on another
//! replica) is applied, none lost.

use crate::helpers::{Backend, both_backends, refused_within, spawn_auth, spawn_on};
use identity_proto::auth::v1 as pb;
use identity_verifier::{Rejection, Verifier};
use std::time::Duration;

both_backends!(a_cut_feed_fails_closed_and_a_reconnect_loses_nothing);

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
