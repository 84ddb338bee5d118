//! The permission each User Service action needs, asked of the Auth Service's
//! `CheckPermission` for every decision. A user may always read and write their
//! own profile (the Auth Service decides that from the resource); `users:read`
//! and `users:write` cover everyone else's; `users:create` is for the Auth
//! Service's registrations. Email addresses are shown to their owner and to
//! holders of `users:read_email` only.

/// Reading profiles.
pub const READ: &str = "users:read";
/// Changing or deleting profiles.
pub const WRITE: &str = "users:write";
/// Seeing anyone's email address (one's own is always visible).
pub const READ_EMAIL: &str = "users:read_email";
/// Creating profiles.
pub const CREATE: &str = "users:create";

/// The resource name of a user.
pub fn resource(id: platform::ids::UserId) -> String {
    format!("users/{id}")
}
