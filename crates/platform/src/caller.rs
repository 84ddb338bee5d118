//! Who is calling an RPC: an end user, whose bearer token the Auth Service
//! validates (so revocation is honoured at once), or an internal service that
//! presents the platform's shared service secret. Fails closed: no token, a bad
//! token, or an unreachable Auth Service never yields a caller.

use identity_proto::auth::v1::ValidateTokenRequest;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use secrecy::{ExposeSecret, SecretString};
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use uuid::Uuid;

/// The shortest service secret accepted.
pub const MIN_SECRET_LEN: usize = 32;
/// Bound on the `authorization` header before any work is done on it.
const MAX_AUTHORIZATION_LEN: usize = 8 * 1024;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// An end user with a valid access token.
    User {
        /// The user's id.
        id: Uuid,
        /// The session the token belongs to.
        session_id: Uuid,
        /// The roles the token carries.
        roles: Vec<String>,
    },
    /// An internal service.
    Service,
}

/// The secret internal services present to each other.
#[derive(Clone)]
pub struct ServiceSecret(SecretString);

impl std::fmt::Debug for ServiceSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServiceSecret(..)")
    }
}

impl ServiceSecret {
    /// Accepts a secret of at least [`MIN_SECRET_LEN`] visible ASCII characters.
    pub fn new(secret: SecretString) -> Result<Self, String> {
        let s = secret.expose_secret();
        if s.len() < MIN_SECRET_LEN || !s.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(format!(
                "the service secret must be at least {MIN_SECRET_LEN} visible ASCII characters"
            ));
        }
        Ok(Self(secret))
    }

    /// Whether `presented` is the secret, in time independent of where they differ.
    pub fn matches(&self, presented: &str) -> bool {
        use aws_lc_rs::digest::{SHA256, digest};
        use subtle::ConstantTimeEq;
        // Comparing digests keeps the comparison constant-time across lengths too.
        let a = digest(&SHA256, self.0.expose_secret().as_bytes());
        let b = digest(&SHA256, presented.as_bytes());
        a.as_ref().ct_eq(b.as_ref()).into()
    }

    /// The `authorization` metadata value presenting this secret.
    pub fn authorization(&self) -> Result<AsciiMetadataValue, Status> {
        let mut v: AsciiMetadataValue = format!("Bearer {}", self.0.expose_secret())
            .parse()
            .map_err(|_| Status::internal("service secret is not valid metadata"))?;
        v.set_sensitive(true);
        Ok(v)
    }
}

/// The bearer token of a request, or UNAUTHENTICATED saying what is wrong.
pub fn bearer(metadata: &MetadataMap) -> Result<&str, Status> {
    let value = metadata.get("authorization").ok_or_else(|| {
        Status::unauthenticated("missing `authorization: Bearer <token>` metadata")
    })?;
    let value = value
        .to_str()
        .map_err(|_| Status::unauthenticated("the authorization metadata is not valid ASCII"))?;
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err(Status::unauthenticated(
            "the authorization metadata is too long",
        ));
    }
    let (scheme, token) = value
        .split_once(' ')
        .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return Err(Status::unauthenticated(
            "authorization must be `Bearer <token>`",
        ));
    }
    Ok(token.trim())
}

/// Identifies callers, asking the Auth Service about user tokens.
#[derive(Debug, Clone)]
pub struct CallerResolver {
    auth: AuthServiceClient<Channel>,
    service_secret: Option<ServiceSecret>,
}

impl CallerResolver {
    /// Talks to the Auth Service at `auth_url` (connecting lazily); accepts
    /// internal services presenting `service_secret`.
    pub fn new(auth_url: &str, service_secret: Option<ServiceSecret>) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(auth_url.to_owned())
            .map_err(|e| format!("invalid Auth Service URL {auth_url:?}: {e}"))?
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(std::time::Duration::from_secs(5));
        Ok(Self {
            auth: AuthServiceClient::new(endpoint.connect_lazy()),
            service_secret,
        })
    }

    /// The Auth Service client, for other calls.
    pub fn auth_client(&self) -> AuthServiceClient<Channel> {
        self.auth.clone()
    }

    /// Who presented the request's bearer token.
    pub async fn resolve(&self, metadata: &MetadataMap) -> Result<Caller, Status> {
        let token = bearer(metadata)?;
        if self
            .service_secret
            .as_ref()
            .is_some_and(|s| s.matches(token))
        {
            return Ok(Caller::Service);
        }
        let reply = self
            .auth
            .clone()
            .validate_token(ValidateTokenRequest { access_token: token.to_owned() })
            .await
            .map_err(|s| match s.code() {
                Code::Unauthenticated | Code::InvalidArgument => {
                    Status::unauthenticated(s.message().to_owned())
                }
                _ => {
                    tracing::warn!(code = ?s.code(), "token validation failed: Auth Service unreachable");
                    Status::unavailable("cannot verify the access token now: the Auth Service is unavailable; retry")
                }
            })?
            .into_inner();
        let id = Uuid::parse_str(&reply.user_id)
            .map_err(|_| Status::unavailable("the Auth Service answered an invalid user id"))?;
        let session_id = Uuid::parse_str(&reply.session_id)
            .map_err(|_| Status::unavailable("the Auth Service answered an invalid session id"))?;
        Ok(Caller::User {
            id,
            session_id,
            roles: reply.roles,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_match_exactly() {
        let s = ServiceSecret::new(SecretString::from("x".repeat(40))).unwrap();
        assert!(s.matches(&"x".repeat(40)));
        assert!(!s.matches(&"x".repeat(39)));
        assert!(!s.matches(""));
        assert!(ServiceSecret::new(SecretString::from("short".to_owned())).is_err());
    }

    #[test]
    fn bearer_parsing() {
        let mut m = MetadataMap::new();
        assert_eq!(bearer(&m).unwrap_err().code(), Code::Unauthenticated);
        m.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&m).unwrap_err().code(), Code::Unauthenticated);
        m.insert("authorization", "bearer abc.def".parse().unwrap());
        assert_eq!(bearer(&m).unwrap(), "abc.def");
    }
}
