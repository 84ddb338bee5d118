//! Access-token checks that need no feed: size, ES256 only, a published
//! `kid`, signature, `iss`, `aud` (all cached once verified), then the
//! validity window against the injected clock with the Auth Service's leeway.

use crate::cache::Verified;
use crate::claims::TokenClaims;
use crate::keys::KeyStore;
use crate::rejection::Rejection;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use std::sync::Arc;

/// The longest token looked at (real ones are under 1 KiB), as the Auth
/// Service bounds it.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Tolerated clock difference between the Auth Service and this process, in
/// seconds: the Auth Service's own.
pub const LEEWAY_SECS: i64 = 5;

/// What an access token must say to be one of ours.
#[derive(Debug, Clone)]
pub(crate) struct TokenRules {
    validation: Validation,
}

impl TokenRules {
    pub(crate) fn new(issuer: &str, audience: &str) -> Self {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "sub", "iss", "aud"]);
        // Time is checked against the injected clock, on every call (cached
        // tokens too), not by the library against the wall clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Self { validation }
    }

    /// Decodes and verifies `token`'s signature, issuer and audience.
    pub(crate) fn decode(&self, keys: &KeyStore, token: &str) -> Result<Verified, Rejection> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(Rejection::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| Rejection::Malformed)?;
        if header.alg != Algorithm::ES256 {
            return Err(Rejection::Algorithm);
        }
        let kid = header.kid.ok_or(Rejection::UnknownKey)?;
        let Some(key) = keys.get(&kid) else {
            keys.request_refetch();
            return Err(Rejection::UnknownKey);
        };
        let data = jsonwebtoken::decode::<TokenClaims>(token, &key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::InvalidSignature => Rejection::Signature,
                ErrorKind::InvalidAudience => Rejection::Audience,
                ErrorKind::InvalidIssuer => Rejection::Issuer,
                ErrorKind::InvalidAlgorithm => Rejection::Algorithm,
                _ => Rejection::Malformed,
            },
        )?;
        Ok((Arc::new(data.claims), Arc::from(kid)))
    }
}

/// Refuses a token outside its validity window, `now` in Unix seconds.
pub(crate) fn check_time(claims: &TokenClaims, now: i64) -> Result<(), Rejection> {
    if now >= claims.exp.saturating_add(LEEWAY_SECS) {
        return Err(Rejection::Expired);
    }
    if now.saturating_add(LEEWAY_SECS) < claims.nbf || now.saturating_add(LEEWAY_SECS) < claims.iat
    {
        return Err(Rejection::NotYetValid);
    }
    Ok(())
}
