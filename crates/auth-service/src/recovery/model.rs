//! The types of recovery as the use cases and the SQL share them.

use chrono::{DateTime, Utc};
use platform::ids::UserId;
use platform::sql::Timestamp;

/// What a one-time token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Proves the address it was sent to belongs to the identity.
    VerifyEmail,
    /// Lets its holder set a new password.
    ResetPassword,
    /// Proves a new address belongs to the identity, which then moves to it.
    ChangeEmail,
    /// Sent to the old address with an email change: stops the change, or
    /// undoes it once made.
    CancelEmailChange,
}

impl Purpose {
    pub(crate) const fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
            Self::ChangeEmail => "change_email",
            Self::CancelEmailChange => "cancel_email_change",
        }
    }
}

/// A token to store: only its SHA-256.
#[derive(Debug, Clone)]
pub struct NewOneTimeToken {
    pub hash: [u8; 32],
    pub purpose: Purpose,
    pub user_id: UserId,
    /// The address the token was sent to.
    pub email: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// An unspent, unexpired token, as a use case reads it to plan its effect.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LiveToken {
    pub user_id: UserId,
    pub purpose: String,
    /// The address it was sent to.
    pub email: String,
    #[sqlx(try_from = "Timestamp")]
    pub created_at: DateTime<Utc>,
}
