//! Access tokens against the JWKS and every forgery we know of.

use crate::helpers::{Backend, assert_code, both_backends, spawn_app, spawn_replica};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use tonic::Code;

both_backends!(
    tokens_verify_with_the_jwks_alone_across_rotation,
    scheduled_rotation_publishes_ahead_and_retires_late,
    forged_expired_and_foreign_tokens_are_refused,
);

/// Verifies `token` the way any other service would: with the published JWKS only.
fn verify_with_jwks(jwks: &serde_json::Value, token: &str) -> serde_json::Value {
    let set: JwkSet = serde_json::from_value(jwks.clone()).expect("a valid JWK set");
    let kid = jsonwebtoken::decode_header(token)
        .unwrap()
        .kid
        .expect("kid header");
    let jwk = set.find(&kid).expect("the token's key is published");
    let mut validation = Validation::new(Algorithm::ES256);
    validation.set_audience(&["identity-platform"]);
    validation.set_issuer(&["identity-auth"]);
    validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("token verifies with the JWKS")
    .claims
}

fn kid_of(token: &str) -> String {
    jsonwebtoken::decode_header(token).unwrap().kid.unwrap()
}

async fn tokens_verify_with_the_jwks_alone_across_rotation(backend: Backend) {
    let app = spawn_app(backend).await;
    let before = app.new_session().await;
    let claims = verify_with_jwks(&app.jwks().await, &before.access_token);
    for claim in [
        "iss", "aud", "sub", "sid", "jti", "iat", "exp", "nbf", "roles", "kind",
    ] {
        assert!(
            claims.get(claim).is_some(),
            "claim {claim} missing: {claims}"
        );
    }
    assert_eq!(claims["sub"], before.user_id);
    assert_eq!(claims["kind"], "user");
    assert_eq!(claims["sid"], before.session_id);
    let header = jsonwebtoken::decode_header(&before.access_token).unwrap();
    assert_eq!(header.alg, Algorithm::ES256);

    // The gRPC JWKS is the HTTP one.
    let grpc_jwks = app
        .grpc
        .clone()
        .get_jwks(identity_proto::auth::v1::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner();
    let from_grpc: serde_json::Value = serde_json::from_str(&grpc_jwks.jwks_json).unwrap();
    assert_eq!(from_grpc, app.jwks().await);
    assert_eq!(
        grpc_jwks.keys.len(),
        from_grpc["keys"].as_array().unwrap().len()
    );

    app.handle.keys.rotate_now().await.unwrap();
    let after = app.new_session().await;
    assert_ne!(
        kid_of(&before.access_token),
        kid_of(&after.access_token),
        "rotation changes the signer"
    );
    let jwks = app.jwks().await;
    verify_with_jwks(&jwks, &before.access_token);
    verify_with_jwks(&jwks, &after.access_token);
    app.validate(&before.access_token)
        .await
        .expect("old-key token still validates");
    app.validate(&after.access_token).await.unwrap();
    // The key that will sign next is already published.
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        3,
        "previous, current and next: {jwks}"
    );
}

async fn scheduled_rotation_publishes_ahead_and_retires_late(backend: Backend) {
    let app = spawn_app(backend).await;
    let first = app.new_session().await;
    let first_kid = kid_of(&first.access_token);
    let published = |jwks: &serde_json::Value| -> Vec<String> {
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    let initial = published(&app.jwks().await);
    assert_eq!(initial.len(), 2, "current and next");
    let next_kid = initial.iter().find(|k| **k != first_kid).unwrap().clone();

    app.clock
        .advance(chrono::Duration::days(30) + chrono::Duration::seconds(1));
    app.handle.keys.refresh().await.unwrap();
    let second = app.new_session().await;
    assert_eq!(
        kid_of(&second.access_token),
        next_kid,
        "the published next key took over"
    );
    let now_published = published(&app.jwks().await);
    assert!(
        now_published.contains(&first_kid),
        "the previous key stays while its tokens live"
    );
    assert_eq!(now_published.len(), 3);

    app.clock.advance(chrono::Duration::minutes(17));
    app.handle.keys.refresh().await.unwrap();
    let later = published(&app.jwks().await);
    assert!(
        !later.contains(&first_kid),
        "a key is dropped once its tokens have expired"
    );
    app.validate(&second.access_token).await.unwrap_err(); // expired by now, 17 minutes later
}

async fn forged_expired_and_foreign_tokens_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let session = app.new_session().await;
    let token = session.access_token.clone();
    let kid = kid_of(&token);
    let payload_b64 = token.split('.').nth(1).unwrap().to_owned();
    let claims: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&payload_b64).unwrap()).unwrap();

    for garbage in ["garbage", "a.b.c", "....", &"x".repeat(9000)] {
        assert_code(app.validate(garbage).await, Code::Unauthenticated);
    }

    // Signed by another P-256 key that claims our kid.
    let rng = aws_lc_rs::rand::SystemRandom::new();
    let pkcs8 = aws_lc_rs::signature::EcdsaKeyPair::generate_pkcs8(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_FIXED_SIGNING,
        &rng,
    )
    .unwrap();
    let mut header = Header::new(Algorithm::ES256);
    header.kid = Some(kid.clone());
    let forged =
        jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ec_der(pkcs8.as_ref())).unwrap();
    let msg = assert_code(app.validate(&forged).await, Code::Unauthenticated);
    assert!(msg.contains("signature"), "{msg}");

    // A tampered payload keeps the real signature but not its meaning.
    let mut tampered_claims = claims.clone();
    tampered_claims["roles"] = serde_json::json!(["admin"]);
    let parts: Vec<&str> = token.split('.').collect();
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&tampered_claims).unwrap()),
        parts[2]
    );
    assert_code(app.validate(&tampered).await, Code::Unauthenticated);

    // alg: none, and HS256 keyed with the public key (algorithm confusion).
    let none_header =
        URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#));
    assert_code(
        app.validate(&format!("{none_header}.{payload_b64}.")).await,
        Code::Unauthenticated,
    );
    let jwks = app.jwks().await;
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some(kid.clone());
    let confused = jsonwebtoken::encode(
        &hs,
        &claims,
        &EncodingKey::from_secret(jwks.to_string().as_bytes()),
    )
    .unwrap();
    assert_code(app.validate(&confused).await, Code::Unauthenticated);

    // Unknown kid.
    let mut unknown = Header::new(Algorithm::ES256);
    unknown.kid = Some("not-a-key".into());
    let foreign =
        jsonwebtoken::encode(&unknown, &claims, &EncodingKey::from_ec_der(pkcs8.as_ref())).unwrap();
    assert_code(app.validate(&foreign).await, Code::Unauthenticated);

    // Same keys, other audience or issuer: a replica configured differently refuses.
    let other_aud = spawn_replica(&app, |s| s.audience = "another-platform".into()).await;
    let msg = assert_code(other_aud.validate(&token).await, Code::Unauthenticated);
    assert!(msg.contains("audience"), "{msg}");
    let other_iss = spawn_replica(&app, |s| s.issuer = "someone-else".into()).await;
    let msg = assert_code(other_iss.validate(&token).await, Code::Unauthenticated);
    assert!(msg.contains("issuer"), "{msg}");

    // Expiry follows the service's clock.
    app.validate(&token).await.unwrap();
    app.clock.advance(chrono::Duration::minutes(16));
    let msg = assert_code(app.validate(&token).await, Code::Unauthenticated);
    assert!(msg.contains("expired"), "{msg}");
}
