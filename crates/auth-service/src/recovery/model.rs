//! The types of recovery as the use cases and the SQL share them.

use crate::credentials::Ends;
use chrono::{DateTime, Utc};
use platform::ids::{SessionId, UserId};
use platform::outbox::OutboxEvent;
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

/// What spending a verification token did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verified {
    /// The identity's address is now verified.
    Address(UserId),
    /// The identity moved to the (verified) address of the token.
    Changed(UserId),
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

/// What spending a reset token changed.
#[derive(Debug, Clone)]
pub struct PasswordReset {
    pub user_id: UserId,
    pub revoked: Vec<SessionId>,
}

/// What a cancel link does, as the use case planned it from the identity's
/// address `current` when it read the token.
#[derive(Debug, Clone)]
pub struct CancelPlan<'a> {
    pub user_id: UserId,
    pub current: &'a str,
    /// The address the link was sent to: the account goes back to it if it
    /// has left it.
    pub restore: &'a str,
    /// The password no longer works (whoever started the change knows it).
    pub no_password: &'a str,
    /// Cancel links issued at or after this end too: they undo changes made
    /// after the state being restored (a thief's own later moves).
    pub later_links_from: DateTime<Utc>,
    pub ends: Ends,
    /// A reset link to `restore`, and the events (its notification, notices).
    pub reset: &'a NewOneTimeToken,
    pub events: &'a [OutboxEvent],
}

/// What a cancel link did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cancelled {
    /// As planned; the sessions revoked.
    Done(Vec<SessionId>),
    /// The identity changed address since the plan was made: plan again.
    Stale,
    /// No such live link (or its identity is disabled).
    Invalid,
}
