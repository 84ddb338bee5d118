//! What each credential or address change ends: the one table every use case
//! that changes a credential consults, applied by the store in the change's own
//! transaction. A token, link or challenge issued under the old state must not
//! outlive it (a reset link mailed before a password change, a thief's pending
//! email change after the owner's recovery, a reset link mailed to an address
//! the account has left), so every change ends every outstanding one-time token
//! and challenge; they differ only in the sessions they end. The exception
//! is the link that stops or undoes an email change, mailed to the address
//! the change leaves: it must survive what a thief does next (move the account
//! again, change the password), so only disabling the account ends it. Every
//! change also bumps the identity's credential version, so what was checked or
//! issued under the old state and lands after it (a token, a challenge, an
//! enrolment, a session) is refused.

use crate::credentials::{Ends, SessionsEnded};
use crate::signals::{Signal, SignalKind};
use chrono::{DateTime, Utc};
use platform::ids::UserId;

/// A change to what authenticates an identity or where it is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialChange {
    /// ChangePassword: the caller proved the old password.
    PasswordChanged,
    /// ResetPassword with a mailed token; also create-admin `--promote`.
    PasswordReset,
    /// VerifyEmail completed an email change: the account moved.
    EmailChanged,
    /// The old address stopped a pending email change ("this wasn't me").
    EmailChangeCancelled,
    /// ConfirmTotp: a second factor is now required.
    MfaEnabled,
    /// DisableTotp by the user.
    MfaDisabled,
    /// ResetUserMfa by an administrator.
    MfaReset,
    /// DisableUser.
    AccountDisabled,
    /// DisableUser of a deleted user: like disabling, for good.
    AccountPurged,
}

impl CredentialChange {
    /// Every change, for tests that walk the table.
    pub const ALL: [Self; 9] = [
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::EmailChanged,
        Self::EmailChangeCancelled,
        Self::MfaEnabled,
        Self::MfaDisabled,
        Self::MfaReset,
        Self::AccountDisabled,
        Self::AccountPurged,
    ];

    /// What the change ends.
    pub const fn ends(self) -> Ends {
        use SessionsEnded::{All, AllButCurrent, Keep};
        let (sessions, reason) = match self {
            // The caller proved the password: their own session stays.
            Self::PasswordChanged => (AllButCurrent, "password_changed"),
            // Whoever held the old password or a session may be the thief.
            Self::PasswordReset => (All, "password_reset"),
            Self::EmailChangeCancelled => (All, "email_change_cancelled"),
            Self::AccountDisabled => (All, "account_disabled"),
            Self::AccountPurged => (All, "account_purged"),
            // An admin removes a factor someone may have bound with a stolen
            // session: that session must not go on.
            Self::MfaReset => (All, "mfa_reset"),
            // These change where the account is reached or how a login is
            // completed, not who is signed in now.
            Self::EmailChanged => (Keep, "email_changed"),
            Self::MfaEnabled => (Keep, "mfa_enabled"),
            Self::MfaDisabled => (Keep, "mfa_disabled"),
        };
        Ends {
            sessions,
            one_time_tokens: true,
            // The links that stop or undo an email change reach the address it
            // leaves: they outlive whatever the change's author does next, and
            // only their own use, their expiry or the account's end ends them.
            revert_links: matches!(self, Self::AccountDisabled | Self::AccountPurged),
            mfa_challenges: true,
            // Enabling confirms the enrolment; every other change ends one in
            // progress (a thief's authenticator must not survive a recovery).
            totp_enrolment: !matches!(self, Self::MfaEnabled),
            reason,
        }
    }

    /// What the security-event feed says of the change, beside the
    /// `session-revoked` of each session it ends. An address change is no
    /// credential: it has no event of its own.
    pub fn signal(self, user: UserId, at: DateTime<Utc>) -> Option<Signal> {
        let credential = |kind, change| Some(Signal::credential_change(user, kind, change, at));
        let account = |kind| Some(Signal::account(kind, user.into(), None, at));
        match self {
            Self::PasswordChanged | Self::PasswordReset => credential("password", "update"),
            Self::MfaEnabled => credential("app", "create"),
            Self::MfaDisabled | Self::MfaReset => credential("app", "delete"),
            Self::AccountDisabled => account(SignalKind::AccountDisabled),
            Self::AccountPurged => account(SignalKind::AccountPurged),
            Self::EmailChanged | Self::EmailChangeCancelled => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_change_ends_every_outstanding_token_and_challenge() {
        for change in CredentialChange::ALL {
            let ends = change.ends();
            assert!(ends.one_time_tokens, "{change:?}");
            assert_eq!(
                ends.revert_links,
                matches!(
                    change,
                    CredentialChange::AccountDisabled | CredentialChange::AccountPurged
                ),
                "{change:?}"
            );
            assert!(ends.mfa_challenges, "{change:?}");
            assert_eq!(
                ends.totp_enrolment,
                change != CredentialChange::MfaEnabled,
                "{change:?}"
            );
        }
    }

    #[test]
    fn the_sessions_each_change_ends() {
        use SessionsEnded::{All, AllButCurrent, Keep};
        let table = [
            (CredentialChange::PasswordChanged, AllButCurrent),
            (CredentialChange::PasswordReset, All),
            (CredentialChange::EmailChanged, Keep),
            (CredentialChange::EmailChangeCancelled, All),
            (CredentialChange::MfaEnabled, Keep),
            (CredentialChange::MfaDisabled, Keep),
            (CredentialChange::MfaReset, All),
            (CredentialChange::AccountDisabled, All),
            (CredentialChange::AccountPurged, All),
        ];
        assert_eq!(table.len(), CredentialChange::ALL.len());
        for (change, sessions) in table {
            assert_eq!(change.ends().sessions, sessions, "{change:?}");
        }
    }
}
