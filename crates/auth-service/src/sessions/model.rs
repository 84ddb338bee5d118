//! The types of sessions as the use cases and the SQL share them.

use chrono::{DateTime, Utc};
use platform::ids::{SessionId, UserId};
use platform::sql::Timestamp;
use secrecy::SecretString;

/// A new session with its first refresh token.
#[derive(Debug, Clone)]
pub struct NewSession {
    pub id: SessionId,
    pub user_id: UserId,
    pub created_at: DateTime<Utc>,
    /// The client address and user agent the Gateway reported, if any.
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
    /// How the login was authenticated (RFC 8176 `amr` values).
    pub amr: Amr,
}

/// Authentication methods of a session: `pwd`, or `pwd` and `otp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Amr {
    Password,
    PasswordAndOtp,
}

impl Amr {
    /// As stored: space-separated.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "pwd",
            Self::PasswordAndOtp => "pwd otp",
        }
    }

    /// From storage; anything unknown is the weaker `pwd`.
    pub fn parse(stored: &str) -> Self {
        if stored == "pwd otp" {
            Self::PasswordAndOtp
        } else {
            Self::Password
        }
    }

    /// The claim's values.
    pub fn methods(self) -> Vec<String> {
        self.as_str().split(' ').map(str::to_owned).collect()
    }
}

/// A refresh token as stored: only the SHA-256 of the token.
#[derive(Debug, Clone)]
pub struct NewRefreshToken {
    pub hash: [u8; 32],
    pub session_id: SessionId,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Who holds a session, as its access tokens say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holder {
    pub user_id: UserId,
    /// The identity's address is verified (now).
    pub email_verified: bool,
    /// How the session's login was authenticated.
    pub amr: Amr,
}

/// A session that can still be refreshed: not revoked, its identity enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveSession {
    pub holder: Holder,
    pub created_at: DateTime<Utc>,
}

/// An active session.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    #[sqlx(try_from = "Timestamp")]
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "Timestamp")]
    pub last_used_at: DateTime<Utc>,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}

/// A session about to be opened: its rows and the refresh token its owner gets.
#[derive(Debug)]
pub struct Opening {
    pub session: NewSession,
    pub token: NewRefreshToken,
    pub refresh: SecretString,
}
