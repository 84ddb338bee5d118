//! The User Service's rules, free of I/O: what a valid profile is, how an update
//! mask applies, how lists are filtered and paged.

pub mod filter;
mod mask;
pub mod profile;

pub use filter::Filter;
pub use mask::{Field, ProfileInput, UpdateMask};
pub use platform::validation::{DisplayName, Email, FieldViolation, Username};
pub use profile::{Profile, user_id_from_name};
