//! The Auth Service's error type and its one mapping to gRPC statuses.

use crate::crypto::hasher::HashError;
use crate::crypto::jwt::TokenError;
use crate::domain::FieldViolation;
use crate::keys::KeyError;
use crate::storage::StoreError;
use tonic::{Code, Status};

/// Everything an Auth Service operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// A request field breaks a rule.
    #[error(transparent)]
    InvalidArgument(#[from] FieldViolation),
    /// Register with an email already registered.
    #[error("an account with this email already exists")]
    EmailTaken,
    /// Unknown email, wrong password or disabled identity: one error for all.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// A refresh token that is unknown, expired, or whose session is revoked.
    #[error("refresh token is invalid or expired; log in again")]
    InvalidRefreshToken,
    /// A spent refresh token was presented again: its session is now revoked.
    #[error("refresh token was already used; the session has been revoked, log in again")]
    RefreshTokenReused,
    /// An access token was refused.
    #[error(transparent)]
    InvalidToken(#[from] TokenError),
    /// Password hashing is saturated.
    #[error("too many logins in progress; retry shortly")]
    Busy,
    /// The caller took too long (an import's next message never came).
    #[error("{0}")]
    DeadlineExceeded(String),
    /// A limit on work running at once is reached; retry later.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Too many attempts (failed logins, registrations, reset requests, codes):
    /// wait before trying again.
    #[error("too many attempts; retry in {} seconds", .0.num_seconds().max(1))]
    Throttled(chrono::Duration),
    /// A one-time token (email verification, password reset) that is unknown,
    /// expired, already used or superseded by a newer one: one message for all.
    #[error("the token is invalid, expired or already used; request a new one")]
    InvalidOneTimeToken,
    /// No usable credentials on a call that needs them.
    #[error("{0}")]
    Unauthenticated(String),
    /// The caller lacks a permission.
    #[error("{0}")]
    PermissionDenied(String),
    /// No such role, subject, session or account.
    #[error("{0}")]
    NotFound(String),
    /// A name is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The change is not allowed in the current state.
    #[error("{0}")]
    FailedPrecondition(String),
    /// A retry (here later, or on another replica) may succeed.
    #[error("{0}")]
    Unavailable(String),
    /// A position the data no longer reaches (a feed cursor older than what
    /// is kept).
    #[error("{0}")]
    OutOfRange(String),
    /// The account changed (a credential or address change) while the
    /// request was handled: what it checked no longer holds; try again.
    #[error("the account changed while this request was handled; try again")]
    Changed,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else that is the service's fault.
    #[error("internal error: {0}")]
    Internal(String),
}

impl AuthError {
    /// Whether the service, not the caller, is at fault: a gateway or an
    /// introspecting client must then hear "unavailable", never "invalid token".
    pub fn is_service_fault(&self) -> bool {
        matches!(
            self,
            AuthError::Unavailable(_) | AuthError::Internal(_) | AuthError::Store(_)
        )
    }
}

/// What a caller hears for client credentials that name no active account,
/// whether the id is unknown, malformed or the secret wrong: one message.
pub(crate) const INVALID_CLIENT: &str = "invalid client id or secret";

/// The database could not be reached (opening a connection or transaction).
impl From<sqlx::Error> for AuthError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<platform::ids::InvalidClientId> for AuthError {
    /// A malformed client id is unknown credentials (UNAUTHENTICATED, HTTP 401),
    /// refused before it is looked up, stored or logged.
    fn from(_: platform::ids::InvalidClientId) -> Self {
        Self::Unauthenticated(INVALID_CLIENT.into())
    }
}

impl From<HashError> for AuthError {
    fn from(e: HashError) -> Self {
        match e {
            HashError::Saturated => Self::Busy,
            HashError::Failed(why) => Self::Internal(why),
        }
    }
}

impl From<KeyError> for AuthError {
    fn from(e: KeyError) -> Self {
        match e {
            KeyError::Store(s) => Self::Store(s),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for Status {
    /// Caller mistakes carry their message; the service's own failures are logged
    /// with an id and shown only as that id, so no internals leak.
    fn from(e: AuthError) -> Self {
        match e {
            AuthError::InvalidArgument(v) => v.into(),
            AuthError::EmailTaken => Status::already_exists(e.to_string()),
            AuthError::InvalidCredentials
            | AuthError::InvalidRefreshToken
            | AuthError::RefreshTokenReused
            | AuthError::InvalidOneTimeToken
            | AuthError::InvalidToken(_) => Status::unauthenticated(e.to_string()),
            AuthError::Busy => Status::resource_exhausted(e.to_string()),
            AuthError::ResourceExhausted(m) => Status::resource_exhausted(m),
            AuthError::DeadlineExceeded(m) => Status::deadline_exceeded(m),
            AuthError::Throttled(wait) => {
                use tonic_types::{ErrorDetails, StatusExt};
                let delay = wait
                    .to_std()
                    .unwrap_or_default()
                    .max(std::time::Duration::from_secs(1));
                Status::with_error_details(
                    Code::ResourceExhausted,
                    e.to_string(),
                    ErrorDetails::with_retry_info(Some(delay)),
                )
            }
            AuthError::Unauthenticated(m) => Status::unauthenticated(m),
            AuthError::PermissionDenied(m) => Status::permission_denied(m),
            AuthError::NotFound(m) => Status::not_found(m),
            AuthError::AlreadyExists(m) => Status::already_exists(m),
            AuthError::FailedPrecondition(m) => Status::failed_precondition(m),
            AuthError::Unavailable(m) => Status::unavailable(m),
            AuthError::OutOfRange(m) => Status::out_of_range(m),
            AuthError::Changed => Status::aborted(e.to_string()),
            AuthError::Store(StoreError::EmailTaken) => {
                Status::already_exists(AuthError::EmailTaken.to_string())
            }
            AuthError::Store(StoreError::Database(ref db))
                if let Some(code) = platform::status::retryable(db) =>
            {
                platform::status::opaque(code, &e)
            }
            AuthError::Store(_) | AuthError::Internal(_) => {
                platform::status::opaque(Code::Internal, &e)
            }
        }
    }
}
