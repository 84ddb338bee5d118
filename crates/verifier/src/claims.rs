//! What a verified token says about its caller ([`Claims`]), and the access
//! token's claims as they are on the wire.

use platform::ids::{SessionId, SubjectId, UserId};
use serde::Deserialize;
use uuid::Uuid;

/// The permission that grants every permission.
pub const ALL_PERMISSIONS: &str = "*";

/// The claims of an access token as the Auth Service signs them (see its
/// `crypto/jwt.rs`): `sub` and `kind` (`user` or `service`, absent: `user`),
/// `sid`, `jti`, `iat`, `nbf`, `exp`, `roles`, `email_verified`, `amr`. `iss`
/// and `aud` are checked while decoding and not kept.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct TokenClaims {
    #[serde(flatten)]
    pub sub: SubjectId,
    pub sid: SessionId,
    pub jti: Uuid,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default)]
    pub amr: Vec<String>,
}

/// A verified caller: who, in which session, holding which roles, and the
/// permissions those roles grant now (from the role table the feed keeps
/// current). Inserted into request extensions by [`crate::VerifyLayer`] and
/// [`crate::VerifyInterceptor`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The user or service account (`sub` and `kind`).
    pub subject: SubjectId,
    /// The session (`sid`); a service account's tokens carry a per-account id.
    pub session_id: SessionId,
    /// The roles the token carries (`roles`).
    pub roles: Vec<String>,
    /// What those roles grant now, sorted; `*` grants everything.
    pub permissions: Vec<String>,
    /// Whether the user's email address was verified at issue.
    pub email_verified: bool,
    /// How the session was authenticated (RFC 8176 `amr`).
    pub amr: Vec<String>,
    /// `exp`, Unix seconds.
    pub expires_at: i64,
    /// `iat`, Unix seconds.
    pub issued_at: i64,
    /// `jti`.
    pub token_id: Uuid,
}

impl Claims {
    /// Whether the caller's roles grant `permission` (or `*`). Ownership rules
    /// (a user editing their own profile) are the service's to add.
    pub fn allows(&self, permission: &str) -> bool {
        self.permissions
            .iter()
            .any(|p| p == permission || p == ALL_PERMISSIONS)
    }

    /// The caller's user id, unless the caller is a service account.
    pub fn user_id(&self) -> Option<UserId> {
        self.subject.user()
    }

    pub(crate) fn of(token: &TokenClaims, permissions: Vec<String>) -> Self {
        Self {
            subject: token.sub,
            session_id: token.sid,
            roles: token.roles.clone(),
            permissions,
            email_verified: token.email_verified,
            amr: token.amr.clone(),
            expires_at: token.exp,
            issued_at: token.iat,
            token_id: token.jti,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_exact_permissions_and_the_wildcard() {
        let mut c = Claims {
            subject: SubjectId::new(Uuid::nil(), false),
            session_id: SessionId::from_uuid(Uuid::nil()),
            roles: vec![],
            permissions: vec!["users:read".into()],
            email_verified: false,
            amr: vec![],
            expires_at: 0,
            issued_at: 0,
            token_id: Uuid::nil(),
        };
        assert!(c.allows("users:read"));
        assert!(!c.allows("users:write"));
        assert!(!c.allows("users:*"), "no pattern matching but `*`");
        c.permissions = vec![ALL_PERMISSIONS.into()];
        assert!(c.allows("audit:read"));
    }

    #[test]
    fn wire_claims_default_to_a_user() {
        let json = serde_json::json!({
            "sub": Uuid::nil(), "sid": Uuid::nil(), "jti": Uuid::nil(),
            "iat": 1, "nbf": 1, "exp": 2, "roles": ["user"]
        });
        let c: TokenClaims = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(c.sub, SubjectId::new(Uuid::nil(), false));
        let mut service = json;
        service["kind"] = "service".into();
        let c: TokenClaims = serde_json::from_value(service.clone()).unwrap();
        assert_eq!(c.sub, SubjectId::new(Uuid::nil(), true));
        service["kind"] = "robot".into();
        assert!(serde_json::from_value::<TokenClaims>(service).is_err());
    }
}
