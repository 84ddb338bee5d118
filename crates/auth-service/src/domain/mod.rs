//! The Auth Service's rules, free of I/O: what a valid email, password and display
//! name are. Values are parsed once at the edge into these newtypes.

mod display_name;
mod email;
mod password;

pub use display_name::DisplayName;
pub use email::Email;
pub use password::{NewPassword, Password};

/// A caller's input that breaks a rule, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct FieldViolation {
    /// The request field, as named in the .proto.
    pub field: &'static str,
    /// What is wrong and how to fix it.
    pub message: String,
}

impl FieldViolation {
    pub(crate) fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field,
            message: message.into(),
        }
    }
}
