//! What every use case shares: the database, the clock, the signing keys and
//! token authority, the password hasher, the audit trail, the throttle and the
//! in-memory views of revocations and roles. The use cases themselves live in
//! the feature folders, each a view ([`use_cases!`]) over this context.

use crate::access::authz::{self, AuthzState, Decision, Principal};
use crate::access::revocation::RevocationSet;
use crate::access::{Permission, Resource, RoleSql};
use crate::accounts::AccountSql;
use crate::audit::{ClientInfo, Event};
use crate::credentials::IdentitySql;
use crate::crypto::hasher::PasswordHasher;
use crate::crypto::jwt::{TokenAuthority, TokenError, TokenSubject};
use crate::error::AuthError;
use crate::keys::{KeyRing, KeySet};
use chrono::{DateTime, Duration, Utc};
use platform::clock::SharedClock;
use platform::ids::{ServiceAccountId, SessionId, UserId};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::Notify;

pub use crate::mfa::{MfaCode, TotpEnrolment};
pub use crate::recovery::RecoverySettings;

/// Declares a feature's use cases: a view over the shared [`Context`] (the
/// feature's methods read the context's fields as their own).
macro_rules! use_cases {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy)]
        pub struct $name<'a>(pub &'a std::sync::Arc<$crate::context::Context>);

        impl std::ops::Deref for $name<'_> {
            type Target = $crate::context::Context;
            fn deref(&self) -> &Self::Target {
                self.0
            }
        }
    };
}
pub(crate) use use_cases;

/// The role that grants every permission.
pub const ADMIN_ROLE: &str = "admin";
/// The role every new identity holds.
pub const DEFAULT_ROLE: &str = "user";
/// The role of the identity services' own accounts.
pub const SERVICE_ROLE: &str = "identity-service";
/// The Auth Service's own service account, used by its outbox relay.
pub const OWN_ACCOUNT: &str = "auth-service";

/// A session's tokens, as Login and RefreshToken return them.
#[derive(Debug)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: SecretString,
    pub expires_in: i64,
    pub session_id: SessionId,
    pub user_id: UserId,
    pub refresh_expires_at: DateTime<Utc>,
}

/// What a login with the right password gets: tokens, or, with a second
/// factor on, a challenge to answer with VerifyMfa.
#[derive(Debug)]
pub enum LoginOutcome {
    Tokens(IssuedTokens),
    MfaRequired(MfaChallenge),
}

/// A login waiting for its second factor.
#[derive(Debug)]
pub struct MfaChallenge {
    pub challenge: SecretString,
    pub expires_at: DateTime<Utc>,
}

/// The event the User Service receives for every registration.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserRegistered {
    pub user_id: UserId,
    pub email: String,
    pub display_name: String,
    /// An imported user's username (the User Service derives one otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
}

/// The outbox topic of [`UserRegistered`].
pub const USER_REGISTERED: &str = "user.registered";

/// The event the User Service receives when an identity's address changed;
/// the relay sends the address current at delivery, so a late or repeated
/// delivery never brings back an old one.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserEmailChanged {
    pub user_id: UserId,
}

/// The outbox topic of [`UserEmailChanged`].
pub const USER_EMAIL_CHANGED: &str = "user.email_changed";

/// The Auth Service's shared state, one per process.
#[derive(Debug)]
pub struct Context {
    pub(crate) db: platform::db::Database,
    pub(crate) hasher: PasswordHasher,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) tokens: TokenAuthority,
    pub(crate) revoked: Arc<RevocationSet>,
    pub(crate) authz: Arc<AuthzState>,
    /// Tokens whose signature was already checked.
    pub(crate) verified: crate::crypto::verified::VerifiedTokens,
    pub(crate) clock: SharedClock,
    pub(crate) refresh_ttl: Duration,
    /// Registrations one client address may make per minute.
    pub(crate) registrations_per_minute: u32,
    /// A session ends this long after its login, however often it is refreshed.
    pub(crate) session_max_lifetime: Duration,
    /// Wakes the outbox relay when an event is written.
    pub(crate) outbox_wake: Arc<Notify>,
    /// How old this replica's view of revocations is; past its bound,
    /// validation fails closed.
    pub(crate) freshness: Arc<crate::access::freshness::Freshness>,
    /// Email verification and password reset.
    pub(crate) recovery: RecoverySettings,
    /// Work a request starts and does not wait for; joined at shutdown.
    pub(crate) jobs: platform::tasks::Jobs,
    /// The security-event feed's settings and head.
    pub(crate) feed: crate::signals::Feed,
    /// Imports over the RPC this replica runs at once.
    pub(crate) imports: Arc<tokio::sync::Semaphore>,
}

/// Jobs (queued password resets) that may run at once.
pub const MAX_JOBS: usize = 1024;

impl Context {
    /// Waits a little for the jobs requests started (at shutdown).
    pub async fn finish_jobs(&self) {
        self.jobs.join(std::time::Duration::from_secs(5)).await;
    }

    /// Checks an access token without touching the database, and resolves the
    /// subject's current roles and permissions.
    pub fn validate(&self, token: &str) -> Result<Principal, AuthError> {
        self.freshness.check(platform::clock::monotonic_now())?;
        let now = self.clock.now();
        let claims = match self.verified.get(token) {
            Some(claims) => {
                crate::crypto::jwt::check_time(&claims, now)?;
                claims
            }
            None => {
                let keys = self.key_set()?;
                let claims = self.tokens.verify(&keys, token, now)?;
                self.verified.insert(token, &claims, now.timestamp());
                claims
            }
        };
        if self.revoked.is_revoked(&claims.sid) {
            return Err(TokenError::Revoked.into());
        }
        let roles = self
            .authz
            .current_roles(&claims.sub, claims.iat, &claims.roles)
            .ok_or(TokenError::Revoked)?;
        let permissions = authz::permissions_of(&roles, &self.authz.definitions());
        Ok(Principal {
            subject_id: claims.sub,
            session_id: claims.sid,
            roles,
            permissions,
            expires_at: claims.exp,
            issued_at: claims.iat,
            token_id: claims.jti,
            email_verified: claims.email_verified,
            amr: claims.amr,
        })
    }

    /// The caller behind a bearer token, for RPCs that need one.
    pub fn caller(&self, bearer: Option<&str>) -> Result<Principal, AuthError> {
        let token = bearer.ok_or_else(|| {
            AuthError::Unauthenticated("missing `authorization: Bearer <token>` metadata".into())
        })?;
        self.validate(token)
    }

    /// Decides whether the subject of `token` may do `permission` on `resource`.
    pub fn check_permission(
        &self,
        token: &str,
        permission: &Permission,
        resource: Option<&Resource>,
    ) -> Result<(Principal, Decision), AuthError> {
        let principal = self.validate(token)?;
        let resource = resource.map(Resource::as_str);
        let decision = authz::decide(&principal, permission.as_str(), resource);
        Ok((principal, decision))
    }

    /// The current key set (for the JWKS).
    pub fn key_set(&self) -> Result<Arc<KeySet>, AuthError> {
        self.keys
            .keys()
            .ok_or_else(|| AuthError::Internal("signing keys not loaded".into()))
    }

    /// Refuses unless `caller` holds `permission` (on `resource`).
    pub(crate) fn require(
        &self,
        caller: &Principal,
        permission: &str,
        resource: Option<&str>,
    ) -> Result<(), AuthError> {
        let d = authz::decide(caller, permission, resource);
        if d.allowed {
            Ok(())
        } else {
            Err(AuthError::PermissionDenied(format!(
                "{}: this call needs {permission}",
                d.reason
            )))
        }
    }

    /// Signs an access token for `subject`, with the subject's current roles
    /// (whatever `subject.roles` says).
    pub(crate) async fn sign(
        &self,
        mut subject: TokenSubject,
        now: DateTime<Utc>,
    ) -> Result<(String, i64), AuthError> {
        subject.roles =
            platform::sql!(read(&self.db), RoleSql::subject_roles(subject.id))?.unwrap_or_default();
        let keys = self.key_set()?;
        let (token, claims) = self
            .tokens
            .issue(&keys, subject, now)
            .map_err(|e| AuthError::Internal(format!("signing failed: {e}")))?;
        Ok((token, claims.exp - claims.iat))
    }

    /// A short-lived token for the Auth Service's own account (its relay), and
    /// its lifetime in seconds.
    pub async fn own_token(&self) -> Result<(String, i64), AuthError> {
        let account = platform::sql!(
            read(&self.db),
            AccountSql::service_account_by_name(OWN_ACCOUNT)
        )?
        .ok_or_else(|| AuthError::Internal("the auth-service account is missing".into()))?;
        self.sign_service(account.id).await
    }

    /// The caller's own identity, for the calls a user makes about themself.
    pub(crate) async fn own_identity(
        &self,
        caller: &Principal,
    ) -> Result<crate::credentials::IdentityRecord, AuthError> {
        let user_id = caller.user_id().ok_or_else(|| {
            AuthError::PermissionDenied(
                "this call is for users: a service account has no password, address or second factor"
                    .into(),
            )
        })?;
        platform::sql!(read(&self.db), IdentitySql::identity_by_id(user_id))?
            .ok_or_else(|| AuthError::Unauthenticated("the identity no longer exists".into()))
    }

    /// The login and rate limits, over this service's counters.
    pub(crate) fn throttle(&self) -> crate::throttle::Throttle<'_> {
        crate::throttle::Throttle { db: &self.db }
    }

    /// Records an audit event.
    pub(crate) async fn audit(&self, event: Event) {
        event.record(&self.db).await;
    }

    pub(crate) fn event(&self, kind: &str, client: &ClientInfo) -> Event {
        Event::new(kind, self.clock.now(), client)
    }

    /// Signs a token for a service account with its current roles.
    pub(crate) async fn sign_service(
        &self,
        id: ServiceAccountId,
    ) -> Result<(String, i64), AuthError> {
        self.sign(
            TokenSubject {
                id: id.into(),
                session_id: crate::accounts::account_session(id),
                roles: Vec::new(),
                email_verified: false,
                amr: Vec::new(),
            },
            self.clock.now(),
        )
        .await
    }
}
