//! The gateway contract, one for Envoy's ext_authz and for HTTP forward auth
//! (nginx, Traefik, Caddy): the bearer token of the original request, an
//! optional permission and resource per route, an optional authentication
//! method the route demands (`amr`, e.g. `otp`: RFC 9470 step-up), and the
//! identity forwarded to the upstream when allowed. Same semantics as
//! ValidateToken/CheckPermission. Every decision is on the request path as
//! [`RequestPath`] accepts it (RFC 3986 normal form, nothing a server reads
//! differently), or the request is refused.

mod path;

pub use path::{PathRejection, RequestPath};

use crate::access::authz;
use crate::context::Context;
use crate::error::AuthError;

/// Upstream request headers set (overwritten) on an allowed request.
pub const USER_ID: &str = "x-user-id";
pub const SESSION_ID: &str = "x-session-id";
pub const USER_ROLES: &str = "x-user-roles";

/// What a gateway asks about one request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Access<'a> {
    /// The original request's `authorization` header.
    pub authorization: Option<&'a str>,
    /// The original request target (`/path?query`) as the gateway sent it:
    /// bytes, since a header may hold anything. Parsed by [`RequestPath`].
    pub target: &'a [u8],
    /// The permission the route requires, if any.
    pub permission: Option<&'a str>,
    /// The resource, possibly with `{path.N}` placeholders.
    pub resource: Option<&'a str>,
    /// An authentication method the session must have used (`otp`).
    pub amr: Option<&'a str>,
}

/// Why a request is unauthenticated, as RFC 6750 / RFC 9470 name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// No token at all.
    Token,
    /// A token that is malformed, expired, revoked or forged.
    ValidToken,
    /// A valid token of a session that lacks the authentication method the
    /// route demands: log in again with it.
    Method,
}

/// The answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Forward the request with these headers.
    Allow(Forwarded),
    /// HTTP 401, with the challenge `missing` calls for.
    Unauthenticated { missing: Missing, reason: String },
    /// HTTP 403.
    Forbidden(String),
    /// The request target is not one a decision can be made on (see
    /// [`RequestPath`]): ext_authz answers 400, forward auth 403 (nginx's
    /// `auth_request` understands no other refusal).
    Malformed(String),
}

/// The identity an upstream receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    pub user_id: String,
    pub session_id: String,
    pub roles: String,
}

impl Forwarded {
    /// The headers, by name.
    pub fn headers(&self) -> [(&'static str, &str); 3] {
        [
            (USER_ID, &self.user_id),
            (SESSION_ID, &self.session_id),
            (USER_ROLES, &self.roles),
        ]
    }
}

impl Verdict {
    /// The `WWW-Authenticate` value of a 401 or 403 (RFC 6750).
    pub fn challenge(&self) -> Option<&'static str> {
        match self {
            Verdict::Unauthenticated { missing, .. } => Some(match missing {
                Missing::Token => "Bearer",
                Missing::ValidToken => r#"Bearer error="invalid_token""#,
                Missing::Method => r#"Bearer error="insufficient_user_authentication""#,
            }),
            Verdict::Forbidden(_) => Some(r#"Bearer error="insufficient_scope""#),
            Verdict::Allow(_) | Verdict::Malformed(_) => None,
        }
    }
}

/// The token of an `Authorization: Bearer <token>` value (scheme case-insensitive).
pub fn bearer(authorization: &str) -> Option<&str> {
    platform::access::parse_bearer(authorization).ok()
}

/// `template` with every `{path.N}` replaced by the N-th segment of `path`
/// (from 1); `None` when a placeholder names a segment the path lacks, one that
/// is not a plain name (see [`RequestPath::plain_segment`]), or is malformed,
/// so that a route never checks a resource other than the one meant.
pub fn expand(template: &str, path: &RequestPath) -> Option<String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{path.") {
        out.push_str(&rest[..start]);
        let after = &rest[start + "{path.".len()..];
        let end = after.find('}')?;
        let n: usize = after[..end].parse().ok()?;
        out.push_str(path.plain_segment(n)?);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Some(out)
}

impl Context {
    /// Decides a gateway's request. Trouble of our own (a stale view, keys not
    /// loaded) is an error, so that the gateway's failure mode decides.
    pub fn gateway(&self, access: &Access<'_>) -> Result<Verdict, AuthError> {
        // First, whatever the route: a request on a path the upstream may read
        // differently is refused, never decided on.
        let path = match RequestPath::parse(access.target) {
            Ok(p) => p,
            Err(e) => return Ok(Verdict::Malformed(e.to_string())),
        };
        let Some(token) = access.authorization.and_then(bearer) else {
            return Ok(Verdict::Unauthenticated {
                missing: Missing::Token,
                reason: "missing `Authorization: Bearer <token>`".into(),
            });
        };
        let principal = match self.validate(token) {
            Ok(p) => p,
            Err(e) if e.is_service_fault() => return Err(e),
            Err(e) => {
                return Ok(Verdict::Unauthenticated {
                    missing: Missing::ValidToken,
                    reason: e.to_string(),
                });
            }
        };
        if let Some(method) = access.amr
            && !principal.amr.iter().any(|m| m == method)
        {
            return Ok(Verdict::Unauthenticated {
                missing: Missing::Method,
                reason: format!("this route needs a login with `{method}` (a second factor)"),
            });
        }
        if let Some(permission) = access.permission {
            let resource = match access.resource {
                None => None,
                Some(t) => match expand(t, &path) {
                    Some(r) => Some(r),
                    None => {
                        return Ok(Verdict::Forbidden(format!(
                            "the route's resource {t:?} names a path segment this request lacks, \
                             or one that is not a plain name"
                        )));
                    }
                },
            };
            let decision = authz::decide(&principal, permission, resource.as_deref());
            if !decision.allowed {
                return Ok(Verdict::Forbidden(decision.reason));
            }
        }
        Ok(Verdict::Allow(Forwarded {
            user_id: principal.subject_id.to_string(),
            session_id: principal.session_id.to_string(),
            roles: principal.roles.join(","),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_placeholders() {
        let p = RequestPath::parse(b"/users/0193-abc/avatar?size=2").unwrap();
        assert_eq!(
            expand("users/{path.2}", &p).as_deref(),
            Some("users/0193-abc")
        );
        assert_eq!(
            expand("{path.1}/{path.3}", &p).as_deref(),
            Some("users/avatar")
        );
        assert_eq!(expand("static", &p).as_deref(), Some("static"));
        assert_eq!(expand("users/{path.4}", &p), None);
        assert_eq!(expand("users/{path.0}", &p), None);
        assert_eq!(expand("users/{path.x}", &p), None);
        assert_eq!(expand("users/{path.2", &p), None);
        // Never a value holding an escape, a sub-delimiter or `@`.
        for raw in [
            "/users/a%2Cb",
            "/users/a,b",
            "/users/a@b",
            "/users/a:b",
            "/users/*",
        ] {
            let p = RequestPath::parse(raw.as_bytes()).unwrap();
            assert_eq!(expand("users/{path.2}", &p), None, "{raw}");
        }
    }

    #[test]
    fn bearer_tokens() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer a b"), None);
    }
}
