//! The User Service's error type and its one mapping to gRPC statuses.

use crate::domain::FieldViolation;
use crate::storage::StoreError;
use tonic::{Code, Status};

/// Everything a User Service operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// A request field breaks a rule.
    #[error(transparent)]
    InvalidArgument(#[from] FieldViolation),
    /// No such active user.
    #[error("user {0} not found")]
    NotFound(String),
    /// Another user has the username.
    #[error("username {0:?} is already taken")]
    UsernameTaken(String),
    /// The etag is not current.
    #[error("the user changed since it was read (stale etag); read it again and retry")]
    StaleEtag,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<sqlx::Error> for UserError {
    fn from(e: sqlx::Error) -> Self {
        Self::Store(e.into())
    }
}

impl From<UserError> for Status {
    /// Caller mistakes carry their message; the service's own failures are logged
    /// with an id and shown only as that id.
    fn from(e: UserError) -> Self {
        match e {
            UserError::InvalidArgument(v) => v.into(),
            UserError::NotFound(_) => Status::not_found(e.to_string()),
            UserError::UsernameTaken(_) => Status::already_exists(e.to_string()),
            UserError::StaleEtag => Status::aborted(e.to_string()),
            UserError::Store(StoreError::UsernameTaken) => {
                Status::already_exists("username is already taken")
            }
            UserError::Store(StoreError::Database(ref db))
                if let Some(code) = platform::status::retryable(db) =>
            {
                platform::status::opaque(code, &e)
            }
            UserError::Store(_) => platform::status::opaque(Code::Internal, &e),
        }
    }
}
