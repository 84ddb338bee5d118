//! The Auth Service's rules, free of I/O: what a valid email, password and display
//! name are. Values are parsed once at the edge into these newtypes.

mod display_name;
mod email;
mod password;

pub use display_name::DisplayName;
pub use email::Email;
pub use password::{NewPassword, Password};

pub use platform::validation::FieldViolation;
