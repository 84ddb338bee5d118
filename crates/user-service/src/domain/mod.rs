//! The User Service's rules, free of I/O: what a valid profile is, how an update
//! mask applies, how lists are filtered and paged.

pub mod filter;
mod mask;
mod page;
pub mod profile;
mod username;

pub use filter::Filter;
pub use mask::{Field, ProfileInput, UpdateMask};
pub use page::PageToken;
pub use platform::validation::FieldViolation;
pub use profile::{Profile, user_id_from_name};
pub use username::Username;
