//! Why a token was refused, each reason saying what the caller can do about it,
//! and how each maps to gRPC and HTTP answers.

use http::StatusCode;

/// Why [`crate::Verifier::verify`] refused a token.
///
/// Every variant but [`Rejection::Stale`] is the token's fault (gRPC
/// `UNAUTHENTICATED`, HTTP 401); `Stale` is the verifier's (the feed of
/// revocations is not current, so it cannot vouch for any token: gRPC
/// `UNAVAILABLE`, HTTP 503, retry later or fall back to `ValidateToken`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Rejection {
    /// Not a compact JWS with the expected claims, or longer than
    /// [`crate::MAX_TOKEN_LEN`].
    #[error("access token is malformed")]
    Malformed,
    /// Not ES256.
    #[error("access token is signed with an unsupported algorithm")]
    Algorithm,
    /// Its `kid` is not in the JWKS (a refetch has been asked for).
    #[error("access token is signed by an unknown key")]
    UnknownKey,
    /// The signature does not verify.
    #[error("access token signature is invalid")]
    Signature,
    /// Past `exp` (plus leeway).
    #[error("access token has expired: refresh your token")]
    Expired,
    /// Before `nbf` or `iat` (minus leeway).
    #[error("access token is not valid yet")]
    NotYetValid,
    /// Another `aud`.
    #[error("access token was issued for another audience")]
    Audience,
    /// Another `iss`.
    #[error("access token was issued by another issuer")]
    Issuer,
    /// Its session ended (logout, revocation): the user must log in again.
    #[error("access token's session has been revoked: log in again")]
    Revoked,
    /// Its subject was disabled or deleted.
    #[error("the account is disabled or deleted")]
    Disabled,
    /// Issued before a change to its subject's credentials or roles, or to a
    /// role it carries (or before this verifier had to resynchronise): the
    /// roles it carries are no longer trusted, a refreshed token will be.
    #[error("access token predates a change to the account or its roles: refresh your token")]
    Refresh,
    /// The Auth Service refused it when asked directly (fallback).
    #[error("access token is not valid")]
    Invalid,
    /// The verifier's view of revocations is older than `max_staleness` (or
    /// it is resynchronising): it vouches for no token until caught up.
    #[error("cannot verify access tokens now: the revocation feed is not current; retry shortly")]
    Stale,
}

impl Rejection {
    /// Every reason (the order the metrics keep their counters in).
    pub const ALL: [Rejection; 13] = [
        Self::Malformed,
        Self::Algorithm,
        Self::UnknownKey,
        Self::Signature,
        Self::Expired,
        Self::NotYetValid,
        Self::Audience,
        Self::Issuer,
        Self::Revoked,
        Self::Disabled,
        Self::Refresh,
        Self::Invalid,
        Self::Stale,
    ];

    /// The metric label.
    pub const fn label(self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::UnknownKey => "unknown_key",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Audience => "audience",
            Self::Issuer => "issuer",
            Self::Revoked => "revoked",
            Self::Disabled => "disabled",
            Self::Refresh => "refresh",
            Self::Invalid => "invalid",
            Self::Stale => "stale",
        }
    }

    /// The position in [`Rejection::ALL`].
    pub(crate) const fn index(self) -> usize {
        self as usize
    }

    /// The gRPC status: `UNAVAILABLE` for [`Rejection::Stale`],
    /// `UNAUTHENTICATED` otherwise, the message saying what to do.
    pub fn to_status(self) -> tonic::Status {
        match self {
            Self::Stale => tonic::Status::unavailable(self.to_string()),
            _ => tonic::Status::unauthenticated(self.to_string()),
        }
    }

    /// The HTTP status: 503 for [`Rejection::Stale`], 401 otherwise.
    pub const fn http_status(self) -> StatusCode {
        match self {
            Self::Stale => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }
}

impl From<Rejection> for tonic::Status {
    fn from(r: Rejection) -> Self {
        r.to_status()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_is_in_index_order_and_labels_are_distinct() {
        for (i, r) in Rejection::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
        let labels: std::collections::HashSet<_> =
            Rejection::ALL.iter().map(|r| r.label()).collect();
        assert_eq!(labels.len(), Rejection::ALL.len());
        assert_eq!(
            Rejection::Stale.to_status().code(),
            tonic::Code::Unavailable
        );
        assert_eq!(
            Rejection::Refresh.to_status().code(),
            tonic::Code::Unauthenticated
        );
        assert!(
            Rejection::Refresh
                .to_string()
                .contains("refresh your token")
        );
    }
}
