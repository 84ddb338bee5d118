//! A caller's input that breaks a rule, naming the field at fault; every service
//! maps it to `INVALID_ARGUMENT` with the field in the message. The identity
//! values both services hold (email, display name, username) follow one rule here.

mod display_name;
mod email;
mod username;

pub use display_name::DisplayName;
pub use email::Email;
pub use username::Username;

/// One field of a request that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldViolation {
    /// The request field, as named in the .proto (`user.username`, `update_mask`).
    pub field: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldViolation {
    /// A violation of `field`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}

impl From<FieldViolation> for tonic::Status {
    /// INVALID_ARGUMENT with the field in the message and, for clients that read
    /// rich errors, a `google.rpc.BadRequest` detail naming it.
    fn from(v: FieldViolation) -> Self {
        use tonic_types::{ErrorDetails, StatusExt};
        let details = ErrorDetails::with_bad_request_violation(v.field, v.message.clone());
        tonic::Status::with_error_details(tonic::Code::InvalidArgument, v.to_string(), details)
    }
}
