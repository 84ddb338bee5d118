//! The permission each User Service action needs, and who decides. A user may
//! always read and write their own profile; `users:read` and `users:write`
//! cover everyone else's; `users:create` is for the Auth Service's
//! registrations. Email addresses are shown to their owner and to holders of
//! `users:read_email` only.
//!
//! Decisions are made here, in-process, from the token the verifier checked
//! (identity-verifier: signature, revocations and role changes from the
//! security-event feed), by the same rule as the Auth Service's
//! `CheckPermission`. A revoked, disabled, expired or forged token is refused
//! here; while the verifier cannot vouch for a token (its feed is stale, the
//! token's key is newer than its JWKS, or the token predates a change to its
//! subject's roles or credentials) the Auth Service is asked instead, as it is
//! for every decision with `USER_TOKEN_VERIFICATION=remote`.

use identity_verifier::{Claims, Rejection, Verifier};
use platform::access::Authorizer;
use platform::ids::{SubjectId, UserId};
use tonic::Status;
use tonic::metadata::MetadataMap;

/// Reading profiles.
pub const READ: &str = "users:read";
/// Changing or deleting profiles.
pub const WRITE: &str = "users:write";
/// Seeing anyone's email address (one's own is always visible).
pub const READ_EMAIL: &str = "users:read_email";
/// Creating profiles.
pub const CREATE: &str = "users:create";

/// What a user may always do to their own profile.
const SELF_SERVICE: [&str; 2] = [READ, WRITE];

/// The resource name of a user.
pub fn resource(id: UserId) -> String {
    format!("users/{id}")
}

/// The Auth Service's rule (`access/authz.rs`): granted by a role holding the
/// permission (or `*`), or, for a user and a self-service permission, by
/// naming their own profile as the resource.
pub fn decide(
    claims: &Claims,
    permission: &str,
    resource_name: Option<&str>,
) -> Result<SubjectId, Status> {
    if claims.allows(permission) {
        return Ok(claims.subject);
    }
    let own = claims
        .user_id()
        .is_some_and(|id| resource_name == Some(resource(id).as_str()));
    if own && SELF_SERVICE.contains(&permission) {
        return Ok(claims.subject);
    }
    Err(Status::permission_denied(format!(
        "missing permission {permission}"
    )))
}

/// Who decides: the verifier in-process (with `CheckPermission` while it
/// cannot vouch), or `CheckPermission` alone.
#[derive(Debug, Clone)]
pub struct Access {
    verifier: Option<Verifier>,
    authorizer: Authorizer,
}

impl Access {
    /// Every decision asked of the Auth Service.
    pub fn remote(authorizer: Authorizer) -> Self {
        Self {
            verifier: None,
            authorizer,
        }
    }

    /// Decisions made locally, `authorizer` asked while `verifier` is stale.
    pub fn local(verifier: Verifier, authorizer: Authorizer) -> Self {
        Self {
            verifier: Some(verifier),
            authorizer,
        }
    }

    /// The caller of `metadata` if they may do `permission` (on
    /// `resource_name`); UNAUTHENTICATED (saying what to do), PERMISSION_DENIED
    /// or UNAVAILABLE otherwise.
    pub async fn require(
        &self,
        metadata: &MetadataMap,
        permission: &str,
        resource_name: Option<&str>,
    ) -> Result<SubjectId, Status> {
        if let Some(verifier) = &self.verifier {
            let token = platform::access::bearer(metadata)?;
            match verifier.verify(token) {
                Ok(claims) => return decide(&claims, permission, resource_name),
                // The Auth Service knows better: the feed is not current, the
                // token's key is newer than our JWKS (a refetch is under way),
                // or the token predates a change to its roles or credentials
                // (the Auth Service decides with the subject's current roles
                // rather than making the caller refresh; within the change's
                // own second the verifier cannot tell before from after).
                Err(Rejection::Stale | Rejection::UnknownKey | Rejection::Refresh) => {}
                Err(r) => return Err(r.to_status()),
            }
        }
        self.authorizer
            .require(metadata, permission, resource_name)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform::ids::SessionId;

    fn claims(service: bool, permissions: &[&str]) -> Claims {
        Claims {
            subject: SubjectId::new(uuid::Uuid::new_v4(), service),
            session_id: SessionId::from_uuid(uuid::Uuid::nil()),
            roles: vec![],
            permissions: permissions.iter().map(|p| (*p).to_owned()).collect(),
            email_verified: false,
            amr: vec![],
            expires_at: 0,
            issued_at: 0,
            token_id: uuid::Uuid::nil(),
        }
    }

    /// The same table as the Auth Service's `roles_grant_and_owners_self_serve`.
    #[test]
    fn roles_grant_and_owners_self_serve() {
        let user = claims(false, &[READ]);
        let own = resource(user.user_id().unwrap());
        let allowed = |c: &Claims, p: &str, r: Option<&str>| decide(c, p, r).is_ok();
        assert!(allowed(&user, READ, None));
        assert!(!allowed(&user, WRITE, None));
        assert!(allowed(&user, WRITE, Some(&own)));
        assert!(
            !allowed(&user, "roles:admin", Some(&own)),
            "ownership grants only self-service"
        );
        assert!(!allowed(&user, READ_EMAIL, Some(&own)));
        assert!(!allowed(&user, WRITE, Some("users/someone-else")));
        assert!(allowed(&claims(false, &["*"]), "audit:read", None));
        let service = claims(true, &[]);
        let own = format!("users/{}", service.subject);
        assert!(!allowed(&service, WRITE, Some(&own)));
        let denied = decide(&user, CREATE, None).unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert_eq!(denied.message(), "missing permission users:create");
    }
}
