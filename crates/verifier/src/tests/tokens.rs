//! The token alone: claims, signature, issuer, audience, time, size, keys.

use super::*;

#[test]
fn a_valid_token_gives_its_claims_and_its_roles_permissions() {
    let b = Bench::new();
    let (user, sid) = (Uuid::new_v4(), Uuid::new_v4());
    let token = b.token(user, sid, &["user", "editor"], b.now());
    let claims = b.verifier.verify(&token).unwrap();
    assert_eq!(claims.subject.uuid(), user);
    assert_eq!(claims.user_id().map(|u| u.uuid()), Some(user));
    assert_eq!(claims.session_id.uuid(), sid);
    assert_eq!(claims.roles, ["user", "editor"]);
    assert_eq!(
        claims.permissions,
        ["profile:read", "users:read", "users:write"]
    );
    assert!(claims.allows("users:write") && !claims.allows("roles:admin"));
    assert!(claims.email_verified);
    assert_eq!(claims.amr, ["pwd"]);
    // The second time comes from the cache, with the same answer.
    assert_eq!(b.verifier.verify(&token).unwrap(), claims);
    assert_eq!(b.shared.cache.len(), 1);

    let service = b.key.sign(
        "JWT",
        &b.claims(Uuid::new_v4(), true, Uuid::new_v4(), &["admin"], b.now()),
    );
    let claims = b.verifier.verify(&service).unwrap();
    assert!(claims.user_id().is_none());
    assert!(claims.allows("anything:at-all"), "`*` grants everything");
}

#[test]
fn the_token_itself_is_checked_signature_issuer_audience_time_size() {
    let b = Bench::new();
    let (user, sid, now) = (Uuid::new_v4(), Uuid::new_v4(), b.now());
    let mut c = b.claims(user, false, sid, &["user"], now);
    let check = |claims: &Value, want: Rejection| {
        let token = b.key.sign("JWT", claims);
        assert_eq!(b.verifier.verify(&token), Err(want), "{claims}");
    };
    c["iss"] = "someone-else".into();
    check(&c, Rejection::Issuer);
    c["iss"] = ISS.into();
    c["aud"] = "another-platform".into();
    check(&c, Rejection::Audience);
    c["aud"] = AUD.into();
    // Leeway: 5 s either side, as the Auth Service.
    c["exp"] = (now - 5).into();
    check(&c, Rejection::Expired);
    c["exp"] = (now - 4).into();
    b.verifier.verify(&b.key.sign("JWT", &c)).unwrap();
    c["exp"] = (now + 900).into();
    c["nbf"] = (now + 6).into();
    check(&c, Rejection::NotYetValid);
    c["nbf"] = (now + 5).into();
    c["iat"] = (now + 5).into();
    b.verifier.verify(&b.key.sign("JWT", &c)).unwrap();

    // Another key under our kid: the signature fails.
    let forger = Key::generate("k1");
    let forged = forger.sign("JWT", &b.claims(user, false, sid, &["admin"], now));
    assert_eq!(b.verifier.verify(&forged), Err(Rejection::Signature));
    // HS256 is refused before any key is looked at.
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("k1".into());
    let hs = jsonwebtoken::encode(&h, &c, &EncodingKey::from_secret(b"k")).unwrap();
    assert_eq!(b.verifier.verify(&hs), Err(Rejection::Algorithm));
    assert_eq!(b.verifier.verify("garbage"), Err(Rejection::Malformed));
    let long = format!("{}{}", b.token(user, sid, &[], now), "A".repeat(9000));
    assert_eq!(b.verifier.verify(&long), Err(Rejection::Malformed));

    // An expired token that was cached is still refused: time is checked every call.
    let token = b.token(user, sid, &["user"], now);
    b.verifier.verify(&token).unwrap();
    b.clock.advance(chrono::Duration::seconds(905));
    assert_eq!(b.verifier.verify(&token), Err(Rejection::Expired));
    assert!(b.shared.metrics.rejected_count(Rejection::Expired) >= 2);
}

#[test]
fn an_unknown_kid_is_refused_and_asks_for_one_refetch() {
    use futures::FutureExt;
    let b = Bench::new();
    let other = Key::generate("k2");
    let token = other.sign(
        "JWT",
        &b.claims(Uuid::new_v4(), false, Uuid::new_v4(), &["user"], b.now()),
    );
    assert_eq!(b.verifier.verify(&token), Err(Rejection::UnknownKey));
    assert!(b.shared.keys.refetch.notified().now_or_never().is_some());
    assert_eq!(b.verifier.verify(&token), Err(Rejection::UnknownKey));
    assert!(
        b.shared.keys.refetch.notified().now_or_never().is_none(),
        "a second unknown kid within the interval asks nothing"
    );
    // Rotation: the new key is published beside the old one, both verify.
    let old = b.token(Uuid::new_v4(), Uuid::new_v4(), &["user"], b.now());
    b.verifier.verify(&old).unwrap();
    b.shared
        .keys
        .replace(parse_jwks(&jwks(&[&b.key, &other])).unwrap());
    b.verifier.verify(&token).unwrap();
    b.verifier.verify(&old).unwrap();
    // The old key leaves the JWKS: its tokens go, even cached ones.
    b.shared.keys.replace(parse_jwks(&jwks(&[&other])).unwrap());
    assert_eq!(b.verifier.verify(&old), Err(Rejection::UnknownKey));
    // An empty or foreign JWKS is never taken.
    assert!(parse_jwks(r#"{"keys":[]}"#).is_err());
    assert!(parse_jwks(r#"{"keys":[{"kty":"oct","k":"AA","kid":"x"}]}"#).is_err());
}

proptest::proptest! {
    /// Whatever a caller sends, and whatever is flipped in a genuine token or
    /// SET: never a panic, never a pass for a changed token.
    #[test]
    fn forged_input_never_panics_nor_passes(
        junk in "(?s).{0,300}",
        at in 0usize..2000,
        byte in proptest::num::u8::ANY,
    ) {
        let b = Bench::new();
        let _ = b.verifier.verify(&junk);
        let token = b.token(Uuid::new_v4(), Uuid::new_v4(), &["admin"], b.now());
        let mut bytes = token.clone().into_bytes();
        let i = at % bytes.len();
        if bytes[i] != byte {
            bytes[i] = byte;
            if let Ok(changed) = String::from_utf8(bytes) {
                // base64url decoders may ignore a final sub-byte change; the
                // signature input (header.payload) is what must be exact.
                if changed.rsplit_once('.').map(|(signed, _)| signed) != token.rsplit_once('.').map(|(signed, _)| signed) {
                    proptest::prop_assert!(b.verifier.verify(&changed).is_err());
                }
            }
        }
        let msg = b.user_event(EventType::AccountDisabled, Uuid::new_v4(), b.now());
        let forged = SecurityEvent { set: junk.clone(), ..msg };
        proptest::prop_assert!(matches!(b.shared.handle(&forged), Handled::Ignored(_)));
    }
}
