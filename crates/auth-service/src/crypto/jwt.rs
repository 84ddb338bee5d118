//! Access tokens: ES256 JWTs that any stock library verifies with the JWKS alone.
//!
//! ES256 rather than EdDSA: every mainstream JWT library (PyJWT, jose, Nimbus,
//! golang-jwt, System.IdentityModel) verifies ES256, while EdDSA support is still
//! missing or optional in several; with aws-lc-rs it verifies in about 40 µs.

use crate::access::{RoleName, SubjectId};
use crate::keys::KeySet;
use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation};
use platform::ids::SessionId;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The longest token accepted before any parsing (real ones are under 1 KiB).
pub const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Tolerated clock difference between replicas.
const LEEWAY_SECS: i64 = 5;

/// The claims of an access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    /// The `sub` (the subject's id) and `kind` (`user` or `service`; absent
    /// means `user`) claims.
    #[serde(flatten)]
    pub sub: SubjectId,
    pub sid: SessionId,
    pub jti: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub roles: Vec<RoleName>,
    /// Whether the user's email address was verified when the token was
    /// issued; always present (false for service accounts).
    #[serde(default)]
    pub email_verified: bool,
    /// How the session was authenticated (RFC 8176): `["pwd"]` or
    /// `["pwd", "otp"]`; empty for service accounts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub amr: Vec<String>,
}

/// Whom a token is for: the claims that describe the subject.
#[derive(Debug, Clone)]
pub struct TokenSubject {
    pub id: SubjectId,
    pub session_id: SessionId,
    pub roles: Vec<RoleName>,
    pub email_verified: bool,
    pub amr: Vec<String>,
}

/// Why a token was refused. Each says what a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("access token is malformed")]
    Malformed,
    #[error("access token is signed with an unsupported algorithm")]
    Algorithm,
    #[error("access token is signed by an unknown key")]
    UnknownKey,
    #[error("access token signature is invalid")]
    Signature,
    #[error("access token has expired")]
    Expired,
    #[error("access token is not valid yet")]
    NotYetValid,
    #[error("access token was issued for another audience")]
    Audience,
    #[error("access token was issued by another issuer")]
    Issuer,
    #[error("access token's session has been revoked")]
    Revoked,
}

/// Issues and verifies access tokens for one issuer and audience.
#[derive(Debug, Clone)]
pub struct TokenAuthority {
    issuer: String,
    audience: String,
    ttl: Duration,
    validation: Validation,
}

impl TokenAuthority {
    /// Tokens from `issuer`, for `audience`, living `ttl`.
    pub fn new(issuer: String, audience: String, ttl: Duration) -> Self {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[&issuer]);
        validation.set_audience(&[&audience]);
        validation.set_required_spec_claims(&["exp", "iat", "nbf", "sub", "iss", "aud"]);
        // Time is checked against the injected clock below, not the wall clock.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Self {
            issuer,
            audience,
            ttl,
            validation,
        }
    }

    /// The access-token lifetime.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The `iss` of issued tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// Signs a token for a session.
    pub fn issue(
        &self,
        keys: &KeySet,
        subject: TokenSubject,
        now: DateTime<Utc>,
    ) -> Result<(String, AccessClaims), jsonwebtoken::errors::Error> {
        let claims = AccessClaims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.id,
            sid: subject.session_id,
            jti: platform::clock::time_ordered_id(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: (now + self.ttl).timestamp(),
            roles: subject.roles,
            email_verified: subject.email_verified,
            amr: subject.amr,
        };
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(keys.signing.kid.clone());
        let token = jsonwebtoken::encode(&header, &claims, &keys.signing.encoding)?;
        Ok((token, claims))
    }

    /// Verifies signature, issuer, audience and time; revocation is the caller's.
    pub fn verify(
        &self,
        keys: &KeySet,
        token: &str,
        now: DateTime<Utc>,
    ) -> Result<AccessClaims, TokenError> {
        if token.len() > MAX_TOKEN_LEN {
            return Err(TokenError::Malformed);
        }
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        if header.alg != Algorithm::ES256 {
            return Err(TokenError::Algorithm);
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = keys.verifying.get(&kid).ok_or(TokenError::UnknownKey)?;
        let data = jsonwebtoken::decode::<AccessClaims>(token, key, &self.validation).map_err(
            |e| match e.kind() {
                ErrorKind::InvalidSignature => TokenError::Signature,
                ErrorKind::InvalidAudience => TokenError::Audience,
                ErrorKind::InvalidIssuer => TokenError::Issuer,
                ErrorKind::InvalidAlgorithm => TokenError::Algorithm,
                _ => TokenError::Malformed,
            },
        )?;
        let claims = data.claims;
        check_time(&claims, now)?;
        Ok(claims)
    }
}

/// Refuses a token outside its validity window (with leeway for clock skew).
pub fn check_time(claims: &AccessClaims, now: DateTime<Utc>) -> Result<(), TokenError> {
    let now = now.timestamp();
    if now >= claims.exp + LEEWAY_SECS {
        return Err(TokenError::Expired);
    }
    if now + LEEWAY_SECS < claims.nbf || now + LEEWAY_SECS < claims.iat {
        return Err(TokenError::NotYetValid);
    }
    Ok(())
}
