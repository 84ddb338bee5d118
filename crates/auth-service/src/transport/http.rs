//! The Auth Service's own HTTP routes, for gateways and generic JWT middleware:
//! the JWKS (cacheable for as long as rotation allows), OpenID discovery, HTTP
//! forward auth (nginx `auth_request`, Traefik `ForwardAuth`, Caddy
//! `forward_auth`), RFC 7662 token introspection, and the Shared Signals
//! metadata and poll delivery ([`ssf`]).

mod ssf;

use crate::accounts::Accounts;
use crate::audit::ClientInfo;
use crate::context::Context;
use crate::error::AuthError;
use crate::gateway::{Access, Verdict};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Form, Json, Router};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use platform::ids::ClientId;
use secrecy::SecretString;
use serde::Deserialize;
use std::sync::Arc;

/// What the routes need.
#[derive(Debug, Clone)]
pub struct HttpState {
    pub core: Arc<Context>,
    /// The issuer of our tokens (the `iss` claim).
    pub issuer: String,
    /// The public base URL of this port, without a trailing slash.
    pub public_url: String,
    /// How long a gateway may cache the JWKS: less than the time between a
    /// key's publication and its first signature.
    pub jwks_max_age: std::time::Duration,
    /// The one header forward auth reads the original request target from
    /// (`AUTH_FORWARD_URI_HEADER`).
    pub forward_uri_header: HeaderName,
    /// Whose forwarded client address is believed (`AUTH_TRUSTED_PROXIES`),
    /// as on the gRPC port.
    pub proxies: crate::transport::client::TrustedProxies,
}

impl HttpState {
    /// Who sent a request: its peer, or the client a trusted proxy names in
    /// `x-forwarded-for`, by the gRPC port's one rule.
    pub fn client(&self, extensions: &axum::http::Extensions, headers: &HeaderMap) -> ClientInfo {
        let peer = extensions
            .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
            .map(|c| c.0);
        let metadata = tonic::metadata::MetadataMap::from_headers(headers.clone());
        self.proxies.client(peer, &metadata)
    }
}

/// Every route of the HTTP port that is the Auth Service's own.
pub fn routes(state: HttpState) -> Router {
    Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/forward-auth", any(forward_auth))
        .route("/oauth2/introspect", post(introspect))
        .merge(ssf::routes())
        .with_state(Arc::new(state))
}

async fn jwks(State(s): State<Arc<HttpState>>, headers: HeaderMap) -> Response {
    let Ok(keys) = s.core.key_set() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "signing keys not loaded\n").into_response();
    };
    let tag = keys.jwks_etag.clone();
    let cache = format!("public, max-age={}", s.jwks_max_age.as_secs());
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag));
    if fresh {
        return (
            StatusCode::NOT_MODIFIED,
            [(header::ETAG, tag), (header::CACHE_CONTROL, cache)],
        )
            .into_response();
    }
    (
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, "application/jwk-set+json".to_owned()),
            (header::CACHE_CONTROL, cache),
            (header::ETAG, tag),
        ],
        keys.jwks_json.clone(),
    )
        .into_response()
}

async fn discovery(State(s): State<Arc<HttpState>>) -> Response {
    let base = &s.public_url;
    let body = serde_json::json!({
        "issuer": s.issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "introspection_endpoint": format!("{base}/oauth2/introspect"),
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "id_token_signing_alg_values_supported": ["ES256"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256"],
        "subject_types_supported": ["public"],
        "response_types_supported": ["token"],
        "claims_supported": ["iss", "sub", "aud", "exp", "iat", "jti", "sid", "roles", "kind"],
    });
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        Json(body),
    )
        .into_response()
}

#[derive(Debug, Deserialize)]
struct RouteRequirement {
    permission: Option<String>,
    resource: Option<String>,
    amr: Option<String>,
}

/// The original request target, from the one header configured for it
/// (`AUTH_FORWARD_URI_HEADER`) and never another: behind Traefik or Caddy a
/// client can write every header the proxy does not set, so a second candidate
/// would let the client choose the path decided on. Fail closed: missing or
/// repeated is refused, as is a value [`RequestPath`] refuses (raw non-ASCII
/// bytes included), never replaced by anything else.
///
/// [`RequestPath`]: crate::gateway::RequestPath
fn original_target<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Result<&'h [u8], String> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (Some(value), None) => Ok(value.as_bytes()),
        (None, _) => Err(format!(
            "no `{name}` header: the gateway must send the original request target in it"
        )),
        (Some(_), Some(_)) => Err(format!("more than one `{name}` header")),
    }
}

async fn forward_auth(
    State(s): State<Arc<HttpState>>,
    Query(route): Query<RouteRequirement>,
    headers: HeaderMap,
) -> Response {
    let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let verdict = match original_target(&headers, &s.forward_uri_header) {
        Err(reason) => Verdict::Malformed(reason),
        Ok(target) => {
            let access = Access {
                authorization: text("authorization"),
                target,
                permission: route.permission.as_deref().filter(|p| !p.is_empty()),
                resource: route.resource.as_deref().filter(|r| !r.is_empty()),
                amr: route.amr.as_deref().filter(|r| !r.is_empty()),
            };
            match s.core.gateway(&access) {
                Ok(v) => v,
                Err(e) => return service_fault(e),
            }
        }
    };
    let mut response = match &verdict {
        Verdict::Allow(forwarded) => {
            let mut r = StatusCode::OK.into_response();
            for (name, value) in forwarded.headers() {
                if let Ok(v) = HeaderValue::from_str(value) {
                    r.headers_mut().insert(name, v);
                }
            }
            r
        }
        Verdict::Unauthenticated { reason, .. } => {
            (StatusCode::UNAUTHORIZED, format!("{reason}\n")).into_response()
        }
        // 403 for a target we refuse too: nginx's `auth_request` turns any
        // status but 2xx, 401 and 403 into a 500.
        Verdict::Forbidden(reason) | Verdict::Malformed(reason) => {
            (StatusCode::FORBIDDEN, format!("{reason}\n")).into_response()
        }
    };
    if let Some(challenge) = verdict.challenge() {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        );
    }
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// 429 with `Retry-After`: the client address has failed too often.
pub(super) fn throttled(wait: chrono::Duration) -> Response {
    let seconds = wait.num_seconds().max(1);
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, seconds.to_string())],
        Json(serde_json::json!({
            "error": "slow_down",
            "error_description": format!("too many failed attempts; retry in {seconds} seconds"),
        })),
    )
        .into_response()
}

/// Our own trouble, through the service's one error mapping (logged with an
/// error id, never shown): 503 when a retry may help, so the gateway's failure
/// handling decides; 500 otherwise.
fn service_fault(e: AuthError) -> Response {
    let status = tonic::Status::from(e);
    let http = if status.code() == tonic::Code::Unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    (http, format!("{}\n", status.message())).into_response()
}

#[derive(Deserialize)]
struct IntrospectForm {
    token: String,
}

/// Bound on an `Authorization: Basic` value before it is decoded: room for a
/// 128-character client id and a 512-character secret, each percent-encoded.
const MAX_BASIC_LEN: usize = 4096;

/// Why `Authorization: Basic` credentials were refused; each is HTTP 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BasicError {
    /// No `Authorization: Basic` header, or one that does not decode.
    Malformed,
    /// A client id that cannot name an account ([`ClientId`]'s rules).
    ClientId,
}

/// The client id and secret of `Authorization: Basic` (RFC 6749 §2.3.1): the
/// id is a [`ClientId`], under the same rules as IssueServiceToken's.
fn basic_credentials(headers: &HeaderMap) -> Result<(ClientId, SecretString), BasicError> {
    use BasicError::Malformed;
    let value = headers.get(header::AUTHORIZATION).ok_or(Malformed)?;
    if value.len() > MAX_BASIC_LEN {
        return Err(Malformed);
    }
    let value = value.to_str().map_err(|_| Malformed)?;
    let (scheme, encoded) = value.trim().split_once(' ').ok_or(Malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Malformed);
    }
    let decoded = STANDARD.decode(encoded.trim()).map_err(|_| Malformed)?;
    let decoded = String::from_utf8(decoded).map_err(|_| Malformed)?;
    let (id, secret) = decoded.split_once(':').ok_or(Malformed)?;
    // Client credentials are form-urlencoded before Basic encoding.
    let unescape = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8()
            .map(|c| c.into_owned())
            .map_err(|_| Malformed)
    };
    let id = ClientId::try_from(unescape(id)?.as_str()).map_err(|_| BasicError::ClientId)?;
    Ok((id, SecretString::from(unescape(secret)?)))
}

async fn introspect(
    State(s): State<Arc<HttpState>>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    Form(form): Form<IntrospectForm>,
) -> Response {
    let refused = || {
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, r#"Basic realm="introspection""#)],
            Json(serde_json::json!({"error": "invalid_client"})),
        )
            .into_response()
    };
    // Malformed credentials (a client id of 60,000 characters, with CR/LF or
    // NUL, ...) are refused here, as unknown ones are below: never looked up,
    // never audited.
    let Ok((client_id, secret)) = basic_credentials(&headers) else {
        return refused();
    };
    let principal = match Accounts(&s.core)
        .introspect(
            &client_id,
            &secret,
            form.token.trim(),
            &s.client(&extensions, &headers),
        )
        .await
    {
        Ok(p) => p,
        Err(AuthError::Unauthenticated(_)) => return refused(),
        Err(AuthError::Throttled(wait)) => return throttled(wait),
        Err(e) => return service_fault(e),
    };
    let body = match principal {
        None => serde_json::json!({ "active": false }),
        Some(p) => serde_json::json!({
            "active": true,
            "token_type": "access_token",
            "sub": p.subject_id.uuid(),
            "sid": p.session_id,
            "jti": p.token_id,
            "exp": p.expires_at,
            "iat": p.issued_at,
            "iss": s.issuer,
            "roles": p.roles,
            "scope": p.permissions.join(" "),
            "email_verified": p.email_verified,
            "amr": p.amr,
            "kind": p.subject_id.kind(),
        }),
    };
    ([(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_decoded() {
        let mut h = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode("sa-1:s%3Acret+x"));
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        let (id, secret) = basic_credentials(&h).unwrap();
        assert_eq!(id.as_str(), "sa-1");
        assert_eq!(secrecy::ExposeSecret::expose_secret(&secret), "s:cret x");
        h.insert(header::AUTHORIZATION, "Bearer x".parse().unwrap());
        assert_eq!(basic_credentials(&h).err(), Some(BasicError::Malformed));
    }

    fn basic(raw: &[u8]) -> HeaderMap {
        let mut h = HeaderMap::new();
        let value = format!("Basic {}", STANDARD.encode(raw));
        h.insert(header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn basic_client_ids_follow_the_client_id_rules() {
        let refused = Some(BasicError::ClientId);
        let long = format!("{}:s", "a".repeat(2000));
        for raw in [
            "sa%0D%0Ax:s",
            "sa\r\nx:s",
            "sa%C2%85x:s",
            "sa%E2%80%A8x:s",
            "sa%00x:s",
            "sa\0x:s",
            "sa+x:s",
            "sa%ZZ:s",
            ":s",
            long.as_str(),
        ] {
            assert_eq!(
                basic_credentials(&basic(raw.as_bytes())).err(),
                refused,
                "{raw:?}"
            );
        }
        // Past the size bound, nothing is decoded.
        let huge = format!("{}:s", "a".repeat(60_000));
        assert_eq!(
            basic_credentials(&basic(huge.as_bytes())).err(),
            Some(BasicError::Malformed)
        );
        for raw in [&b"sa-1"[..], b"\xff\xfe:s", b"sa-1:%FF"] {
            assert_eq!(
                basic_credentials(&basic(raw)).err(),
                Some(BasicError::Malformed),
                "{raw:?}"
            );
        }
    }

    proptest::proptest! {
        /// Whatever the header: never a panic, and credentials only with a
        /// client id that follows its rules.
        #[test]
        fn basic_parsing_never_panics(
            value in "(?s).{0,300}",
            pair in ("(?s).{0,150}|[A-Za-z0-9._~-]{1,40}", "(?s).{0,40}"),
            scheme in "[Bb][Aa][Ss][Ii][Cc]|Bearer| ",
        ) {
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(header::AUTHORIZATION, v);
                if let Ok((id, _)) = basic_credentials(&h) {
                    proptest::prop_assert!(ClientId::try_from(id.as_str()).is_ok());
                }
            }
            let encoded = format!("{scheme} {}", STANDARD.encode(format!("{}:{}", pair.0, pair.1)));
            if let Ok(v) = HeaderValue::from_str(&encoded) {
                h.insert(header::AUTHORIZATION, v);
                let parsed = basic_credentials(&h).map(|(id, _)| id.as_str().to_owned());
                if let Ok(id) = &parsed {
                    proptest::prop_assert!(scheme.eq_ignore_ascii_case("basic"));
                    proptest::prop_assert!(ClientId::try_from(id.as_str()).is_ok());
                }
                // A valid id (with a secret free of escapes) decodes to itself.
                if scheme.eq_ignore_ascii_case("basic")
                    && ClientId::try_from(pair.0.as_str()).is_ok()
                    && !pair.1.contains('%')
                {
                    proptest::prop_assert_eq!(parsed.ok(), Some(pair.0.clone()));
                }
            }
        }
    }
}
