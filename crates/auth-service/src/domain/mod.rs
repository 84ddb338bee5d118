//! The Auth Service's rules, free of I/O: what a valid email, password and display
//! name are. Values are parsed once at the edge into these newtypes.

mod password;

pub use password::{NewPassword, Password};

pub use platform::validation::{DisplayName, Email, FieldViolation};
