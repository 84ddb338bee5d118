//! Access to the platform's RPCs, as every service needs it: reading the bearer
//! token of a request, asking the Auth Service whether its subject may do
//! something (`CheckPermission`, so revocation and role changes are honoured at
//! once), and obtaining a service account's own token for outgoing calls (the
//! client-credentials grant, cached until shortly before it expires). Fails
//! closed: no token, a bad token or an unreachable Auth Service never allows.

use crate::ids::{ClientId, SubjectId};
use futures::future::BoxFuture;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use identity_proto::auth::v1::{CheckPermissionRequest, IssueServiceTokenRequest, SubjectKind};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tonic::metadata::{AsciiMetadataValue, MetadataMap};
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
use uuid::Uuid;

/// Bound on the `authorization` header before any work is done on it.
const MAX_AUTHORIZATION_LEN: usize = 8 * 1024;

/// The bearer token of a request, or UNAUTHENTICATED saying what is wrong.
pub fn bearer(metadata: &MetadataMap) -> Result<&str, Status> {
    let value = metadata.get("authorization").ok_or_else(|| {
        Status::unauthenticated("missing `authorization: Bearer <token>` metadata")
    })?;
    let value = value
        .to_str()
        .map_err(|_| Status::unauthenticated("the authorization metadata is not valid ASCII"))?;
    parse_bearer(value).map_err(Status::unauthenticated)
}

/// The token of an `authorization` value `Bearer <token>` (scheme in any case),
/// or what is wrong with it; the value's size is bounded before any work.
/// The token is RFC 6750's `b64token` (`A-Z a-z 0-9 - . _ ~ + /`, then `=`
/// padding), which every JWT is: no white space or control character gets
/// past here. Shared by gRPC metadata and the HTTP headers gateways forward.
pub fn parse_bearer(value: &str) -> Result<&str, &'static str> {
    if value.len() > MAX_AUTHORIZATION_LEN {
        return Err("the authorization value is too long");
    }
    let malformed = "authorization must be `Bearer <token>`";
    let ows = [' ', '\t'];
    let (scheme, token) = value.trim_matches(ows).split_once(' ').ok_or(malformed)?;
    let token = token.trim_start_matches(' ');
    if !scheme.eq_ignore_ascii_case("bearer") || !is_b64token(token) {
        return Err(malformed);
    }
    Ok(token)
}

/// RFC 6750 §2.1: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// `Bearer <token>` as sensitive metadata (never logged by tonic).
pub fn authorization(token: &str) -> Result<AsciiMetadataValue, Status> {
    let mut v: AsciiMetadataValue = format!("Bearer {token}")
        .parse()
        .map_err(|_| Status::internal("token is not valid metadata"))?;
    v.set_sensitive(true);
    Ok(v)
}

/// Why a peer's client could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error("invalid URL {url:?}: {source}")]
    Url {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("TLS configuration: {0}")]
    Tls(tonic::transport::Error),
}

/// A lazily connecting endpoint for a peer service at `url`.
pub fn peer_endpoint(
    url: &str,
    timeout: Duration,
    tls: Option<tonic::transport::ClientTlsConfig>,
) -> Result<Endpoint, PeerError> {
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(|source| PeerError::Url {
            url: url.to_owned(),
            source,
        })?
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout);
    if let Some(tls) = tls {
        endpoint = endpoint.tls_config(tls).map_err(PeerError::Tls)?;
    }
    Ok(endpoint)
}

/// An Auth Service client with the timeouts every caller wants.
pub fn auth_client(
    url: &str,
    tls: Option<tonic::transport::ClientTlsConfig>,
) -> Result<AuthServiceClient<Channel>, PeerError> {
    let endpoint = peer_endpoint(url, Duration::from_secs(5), tls)?;
    Ok(AuthServiceClient::new(endpoint.connect_lazy()))
}

/// Why a service could not obtain its own access token.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the Auth Service refused a service token: {code:?}: {message}")]
    Refused { code: tonic::Code, message: String },
    #[error("cannot issue a service token: {0}")]
    Issuer(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// How long a decision is reused: short enough that a logout or a role change
/// still takes effect well within a second.
pub const DECISION_TTL: Duration = Duration::from_millis(250);
/// Decisions remembered at most.
const DECISION_CAPACITY: usize = 10_000;

/// A subject allowed, or (denied rather than unauthenticated, reason).
type Decision = Result<SubjectId, (bool, String)>;
/// Recent decisions by the hash of (token, permission, resource).
type Recent = parking_lot::RwLock<std::collections::HashMap<[u8; 32], (Instant, Decision)>>;

/// Asks the Auth Service for decisions, reusing each for [`DECISION_TTL`] (the
/// Gateway sends the same token with every request of a user).
#[derive(Debug, Clone)]
pub struct Authorizer {
    auth: AuthServiceClient<Channel>,
    recent: Arc<Recent>,
}

fn decision_key(token: &str, permission: &str, resource: Option<&str>) -> [u8; 32] {
    use aws_lc_rs::digest::{Context, SHA256};
    let mut ctx = Context::new(&SHA256);
    for part in [token, permission, resource.unwrap_or_default()] {
        ctx.update(part.as_bytes());
        ctx.update(&[0]);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

impl Authorizer {
    /// Over an Auth Service client.
    pub fn new(auth: AuthServiceClient<Channel>) -> Self {
        Self {
            auth,
            recent: Arc::default(),
        }
    }

    fn remembered(&self, key: &[u8; 32]) -> Option<Decision> {
        let map = self.recent.read();
        map.get(key)
            .filter(|(at, _)| at.elapsed() < DECISION_TTL)
            .map(|(_, d)| d.clone())
    }

    fn remember(&self, key: [u8; 32], decision: Decision) {
        let mut map = self.recent.write();
        if map.len() >= DECISION_CAPACITY {
            map.retain(|_, (at, _)| at.elapsed() < DECISION_TTL);
            if map.len() >= DECISION_CAPACITY {
                map.clear();
            }
        }
        map.insert(key, (crate::clock::monotonic_now(), decision));
    }

    fn outcome(decision: Decision) -> Result<SubjectId, Status> {
        decision.map_err(|(denied, reason)| {
            if denied {
                Status::permission_denied(reason)
            } else {
                Status::unauthenticated(reason)
            }
        })
    }

    /// The caller of `metadata` (as the Auth Service knows them) if they may
    /// do `permission` (on `resource`); UNAUTHENTICATED, PERMISSION_DENIED or
    /// UNAVAILABLE otherwise.
    pub async fn require(
        &self,
        metadata: &MetadataMap,
        permission: &str,
        resource: Option<&str>,
    ) -> Result<SubjectId, Status> {
        let token = bearer(metadata)?;
        let key = decision_key(token, permission, resource);
        if let Some(decision) = self.remembered(&key) {
            return Self::outcome(decision);
        }
        let reply = self
            .auth
            .clone()
            .check_permission(CheckPermissionRequest {
                access_token: token.to_owned(),
                permission: permission.to_owned(),
                resource: resource.unwrap_or_default().to_owned(),
            })
            .await
            .map_err(|s| match s.code() {
                Code::Unauthenticated | Code::InvalidArgument => {
                    self.remember(key, Err((false, s.message().to_owned())));
                    Status::unauthenticated(s.message().to_owned())
                }
                _ => {
                    tracing::warn!(code = ?s.code(), "permission check failed: Auth Service unreachable");
                    Status::unavailable("cannot check permissions now: the Auth Service is unavailable; retry")
                }
            })?
            .into_inner();
        let decision = if reply.allowed {
            let id = Uuid::parse_str(&reply.subject_id).map_err(|_| {
                Status::unavailable("the Auth Service answered an invalid subject id")
            })?;
            let service = reply.subject_kind == SubjectKind::ServiceAccount as i32;
            Ok(SubjectId::new(id, service))
        } else {
            Err((true, reply.reason))
        };
        self.remember(key, decision.clone());
        Self::outcome(decision)
    }
}

/// Where a service gets the token it presents to its peers.
pub trait TokenSource: Send + Sync + 'static {
    /// A currently valid access token.
    fn token(&self) -> BoxFuture<'_, Result<String, TokenError>>;

    /// Drops `token` if it is the one kept: its peer refused it.
    fn forget(&self, _token: &str) {}

    /// After a call that presented `token` failed with `status`: a token the
    /// peer refused as unauthenticated (its account disabled and enabled
    /// again, say) is forgotten, so the next call gets a fresh one instead of
    /// failing until the kept one is due for renewal.
    fn failed(&self, token: &str, status: &tonic::Status) {
        if status.code() == tonic::Code::Unauthenticated {
            self.forget(token);
        }
    }
}

/// Something that issues a fresh access token, with its lifetime in seconds.
pub trait TokenIssuer: Send + Sync + 'static {
    /// A new token and its `expires_in`.
    fn issue(&self) -> BoxFuture<'_, Result<(String, i64), TokenError>>;
}

/// Reuses an issuer's token until 80 % of its lifetime, so a token never
/// expires in flight and is not re-issued for every call.
pub struct CachedToken<I> {
    issuer: I,
    cached: Mutex<Option<(String, Instant)>>,
}

impl<I> CachedToken<I> {
    /// Caches `issuer`'s tokens.
    pub fn new(issuer: I) -> Arc<Self> {
        Arc::new(Self {
            issuer,
            cached: Mutex::new(None),
        })
    }
}

impl<I: TokenIssuer> TokenSource for CachedToken<I> {
    fn token(&self) -> BoxFuture<'_, Result<String, TokenError>> {
        Box::pin(async move {
            let mut cached = self.cached.lock().await;
            if let Some((token, renew_at)) = cached.as_ref()
                && crate::clock::monotonic_now() < *renew_at
            {
                return Ok(token.clone());
            }
            let (token, expires_in) = self.issuer.issue().await?;
            let life = Duration::from_secs(expires_in.max(1) as u64);
            *cached = Some((
                token.clone(),
                crate::clock::monotonic_now() + life.mul_f32(0.8),
            ));
            Ok(token)
        })
    }

    fn forget(&self, token: &str) {
        // Held by a renewal: the token it brings is a fresh one anyway.
        if let Ok(mut cached) = self.cached.try_lock()
            && cached.as_ref().is_some_and(|(kept, _)| kept == token)
        {
            *cached = None;
        }
    }
}

/// A service account's client credentials, exchanged for tokens (the
/// client-credentials grant).
pub struct ClientCredentials {
    auth: AuthServiceClient<Channel>,
    client_id: ClientId,
    secret: SecretString,
}

impl std::fmt::Debug for ClientCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentials")
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

impl ClientCredentials {
    /// Credentials presented to `auth`, their tokens cached.
    pub fn new(
        auth: AuthServiceClient<Channel>,
        client_id: ClientId,
        secret: SecretString,
    ) -> Arc<CachedToken<Self>> {
        CachedToken::new(Self {
            auth,
            client_id,
            secret,
        })
    }
}

impl TokenIssuer for ClientCredentials {
    fn issue(&self) -> BoxFuture<'_, Result<(String, i64), TokenError>> {
        Box::pin(async move {
            let reply = self
                .auth
                .clone()
                .issue_service_token(IssueServiceTokenRequest {
                    client_id: self.client_id.as_str().to_owned(),
                    client_secret: self.secret.expose_secret().to_owned(),
                })
                .await
                .map_err(|s| TokenError::Refused {
                    code: s.code(),
                    message: s.message().to_owned(),
                })?
                .into_inner();
            Ok((reply.access_token, reply.expires_in))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use identity_proto::auth::v1::CheckPermissionResponse;
    use identity_proto::auth::v1::auth_service_server::{AuthService, AuthServiceServer};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Issues `token-1`, `token-2`, ... for an hour each.
    struct Numbered(AtomicUsize);

    impl TokenIssuer for Numbered {
        fn issue(&self) -> BoxFuture<'_, Result<(String, i64), TokenError>> {
            let n = self.0.fetch_add(1, Ordering::SeqCst) + 1;
            Box::pin(async move { Ok((format!("token-{n}"), 3600)) })
        }
    }

    #[tokio::test]
    async fn a_refused_token_is_renewed_at_the_next_call() {
        let source = CachedToken::new(Numbered(AtomicUsize::new(0)));
        let first = source.token().await.unwrap();
        assert_eq!(source.token().await.unwrap(), first, "kept");
        source.failed(&first, &Status::unavailable("the peer is down"));
        source.failed("another token", &Status::unauthenticated("refused"));
        assert_eq!(source.token().await.unwrap(), first, "kept still");
        source.failed(&first, &Status::unauthenticated("refused"));
        assert_eq!(source.token().await.unwrap(), "token-2");
    }

    /// An Auth Service that allows `users:read` to anyone and counts the checks.
    #[derive(Default)]
    struct Counting(Arc<AtomicUsize>);

    #[tonic::async_trait]
    impl AuthService for Counting {
        async fn check_permission(
            &self,
            request: tonic::Request<CheckPermissionRequest>,
        ) -> Result<tonic::Response<CheckPermissionResponse>, Status> {
            self.0.fetch_add(1, Ordering::SeqCst);
            let allowed = request.get_ref().permission == "users:read";
            Ok(tonic::Response::new(CheckPermissionResponse {
                allowed,
                reason: if allowed { "granted" } else { "missing" }.into(),
                subject_id: Uuid::nil().to_string(),
                ..Default::default()
            }))
        }
    }

    #[tokio::test]
    async fn decisions_are_reused_for_their_ttl_then_asked_again() {
        let calls = Arc::new(AtomicUsize::new(0));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // Served beside the test body rather than spawned: it stops with the test.
        let server = tonic::transport::Server::builder()
            .add_service(AuthServiceServer::new(Counting(calls.clone())))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
        let test = async {
            let authorizer = Authorizer::new(auth_client(&url, None).unwrap());
            let mut m = MetadataMap::new();
            m.insert("authorization", "Bearer tok".parse().unwrap());

            let asked = || calls.load(Ordering::SeqCst);
            let read =
                |resource: &'static str| authorizer.require(&m, "users:read", Some(resource));

            for _ in 0..3 {
                read("users/a").await.unwrap();
            }
            assert_eq!(asked(), 1, "allowed decisions are reused");
            for _ in 0..3 {
                let denied = authorizer.require(&m, "users:delete", None).await;
                assert_eq!(denied.unwrap_err().code(), Code::PermissionDenied);
            }
            assert_eq!(asked(), 2, "denials are reused");
            read("users/b").await.unwrap();
            assert_eq!(asked(), 3, "another resource is another decision");

            tokio::time::sleep(DECISION_TTL + Duration::from_millis(50)).await;
            read("users/a").await.unwrap();
            assert_eq!(asked(), 4, "expired decisions are asked again");
        };
        tokio::select! {
            stopped = server => panic!("the Auth Service stand-in stopped: {stopped:?}"),
            () = test => {}
        }
    }

    #[test]
    fn bearer_parsing() {
        let mut m = MetadataMap::new();
        assert_eq!(bearer(&m).unwrap_err().code(), Code::Unauthenticated);
        m.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&m).unwrap_err().code(), Code::Unauthenticated);
        m.insert("authorization", "bearer abc.def".parse().unwrap());
        assert_eq!(bearer(&m).unwrap(), "abc.def");
        for (value, token) in [
            ("Bearer a.b_c-d~e+f/g==", Some("a.b_c-d~e+f/g==")),
            ("BEARER  abc ", Some("abc")),
            ("Bearer", None),
            ("Bearer ", None),
            ("Bearer ===", None),
            ("Bearer a b", None),
            ("Bearer a\tb", None),
            ("Bearer a=b", None),
            ("Bearer a,b", None),
            ("Bearerabc", None),
            ("Basic abc", None),
        ] {
            assert_eq!(parse_bearer(value).ok(), token, "{value:?}");
        }
        assert!(parse_bearer(&format!("Bearer {}", "a".repeat(9000))).is_err());
    }

    proptest::proptest! {
        /// Whatever the value: never a panic, and a token only when the
        /// scheme is Bearer and the token a bounded b64token found in it.
        #[test]
        fn bearer_parsing_accepts_only_b64tokens(value in "(?s).{0,200}|[Bb][Ee][Aa][Rr][Ee][Rr] {1,2}[ -~]{0,60}") {
            if let Ok(token) = parse_bearer(&value) {
                proptest::prop_assert!(is_b64token(token));
                proptest::prop_assert!(value.contains(token));
                proptest::prop_assert!(value.trim_start_matches([' ', '\t']).get(..6).is_some_and(|s| s.eq_ignore_ascii_case("bearer")));
            }
            // The gRPC path agrees with the text parser wherever metadata can carry the value.
            if let Ok(v) = value.parse::<AsciiMetadataValue>() {
                let mut m = MetadataMap::new();
                m.insert("authorization", v);
                proptest::prop_assert_eq!(bearer(&m).ok(), parse_bearer(&value).ok());
            }
        }

        /// Every b64token round-trips, whatever the scheme's case.
        #[test]
        fn bearer_tokens_round_trip(token in "[A-Za-z0-9._~+/-]{1,100}={0,2}", upper in proptest::bool::ANY) {
            let scheme = if upper { "BEARER" } else { "Bearer" };
            let value = format!("{scheme} {token}");
            proptest::prop_assert_eq!(parse_bearer(&value), Ok(token.as_str()));
        }
    }
}
