//! Criterion micro-benchmarks of the functions on the Auth Service's hot paths:
//! access-token verification (cold: ECDSA; warm: the verified-token cache),
//! signing, refresh-token minting and hashing, and permission evaluation.
//! Run with `cargo bench -p auth-service --bench hot_paths`.

// A benchmark harness: a broken set-up should stop it loudly.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::disallowed_methods)]

use auth_service::access::authz::{self, Principal};
use auth_service::access::{Permission, RoleName};
use auth_service::crypto::jwt::{TokenAuthority, TokenSubject, check_time};
use auth_service::crypto::refresh;
use auth_service::crypto::verified::VerifiedTokens;
use auth_service::keys::{KeyRing, KeySet};
use chrono::{Duration, Utc};
use criterion::{Criterion, criterion_group, criterion_main};
use platform::clock::{SharedClock, SystemClock};
use secrecy::SecretString;
use std::hint::black_box;
use std::sync::Arc;
use uuid::Uuid;

/// Real keys, made the way the service makes them, in a throwaway SQLite file.
fn key_set() -> Arc<KeySet> {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("keys.db").display());
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let store = auth_service::storage::connect(&url).await.expect("store");
        store.migrate().await.expect("migrations");
        let clock: SharedClock = Arc::new(SystemClock);
        let ring = KeyRing::new(store, clock, None, Duration::days(30), Duration::hours(1));
        ring.refresh().await.expect("keys");
        ring.keys().expect("loaded")
    })
}

fn roles(n: usize) -> Vec<RoleName> {
    let name = |i| RoleName::parse(&format!("role-{i}"), "role").expect("a role name");
    (0..n).map(name).collect()
}

fn tokens(c: &mut Criterion) {
    let keys = key_set();
    let authority = TokenAuthority::new(
        "https://auth.example".into(),
        "platform".into(),
        Duration::minutes(15),
    );
    let now = Utc::now();
    let (token, claims) = authority
        .issue(
            &keys,
            TokenSubject {
                id: platform::ids::UserId::generate().into(),
                session_id: platform::ids::SessionId::generate(),
                roles: roles(2),
                email_verified: true,
                amr: vec!["pwd".into()],
            },
            now,
        )
        .expect("signed");

    c.bench_function("access token: sign (ES256)", |b| {
        b.iter(|| {
            authority.issue(
                &keys,
                TokenSubject {
                    id: black_box(claims.sub),
                    session_id: claims.sid,
                    roles: roles(2),
                    email_verified: true,
                    amr: vec!["pwd".into()],
                },
                now,
            )
        });
    });
    c.bench_function("access token: verify cold (ES256 + claims)", |b| {
        b.iter(|| {
            authority
                .verify(&keys, black_box(&token), now)
                .expect("valid")
        });
    });
    let cache = VerifiedTokens::default();
    cache.insert(&token, &claims, now.timestamp());
    c.bench_function("access token: verify warm (cache hit + time check)", |b| {
        b.iter(|| {
            let claims = cache.get(black_box(&token)).expect("cached");
            check_time(&claims, now).expect("in time");
        });
    });
}

fn refresh_tokens(c: &mut Criterion) {
    let minted = refresh::mint().expect("random");
    let presented: SecretString = minted.token.clone();
    c.bench_function("refresh token: mint (256 random bits + SHA-256)", |b| {
        b.iter(refresh::mint);
    });
    c.bench_function("refresh token: parse and hash a presented one", |b| {
        b.iter(|| refresh::parse(black_box(&presented)).expect("well formed"));
    });
}

fn permissions(c: &mut Criterion) {
    let mut definitions = authz::Definitions::new();
    for (i, role) in roles(20).into_iter().enumerate() {
        let permission = |p| Permission::parse(&format!("res{i}:perm{p}"), "p").expect("valid");
        definitions.insert(role, (0..10).map(permission).collect());
    }
    let held = roles(3);
    let subject = platform::ids::UserId::generate();
    let principal = Principal {
        subject_id: subject.into(),
        session_id: platform::ids::SessionId::generate(),
        permissions: authz::permissions_of(&held, &definitions),
        roles: held.clone(),
        expires_at: 0,
        issued_at: 0,
        token_id: Uuid::now_v7(),
        email_verified: true,
        amr: vec!["pwd".into()],
    };
    let own = format!("users/{subject}");

    c.bench_function("permissions: expand 3 roles of 20 (30 grants)", |b| {
        b.iter(|| authz::permissions_of(black_box(&held), &definitions));
    });
    c.bench_function("permissions: decide, granted by a role", |b| {
        b.iter(|| authz::decide(&principal, black_box("res2:perm9"), None));
    });
    c.bench_function("permissions: decide, self-service ownership", |b| {
        b.iter(|| authz::decide(&principal, black_box("users:read"), Some(&own)));
    });
    c.bench_function("permissions: decide, denied", |b| {
        b.iter(|| authz::decide(&principal, black_box("users:delete"), Some("users/other")));
    });
}

criterion_group!(benches, tokens, refresh_tokens, permissions);
criterion_main!(benches);
