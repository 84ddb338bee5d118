//! The security-event feed's event types, as the Auth Service emits them and
//! every verifier reads them: the CAEP and RISC URIs of the contract, in one
//! place.

const CAEP: &str = "https://schemas.openid.net/secevent/caep/event-type/";
const RISC: &str = "https://schemas.openid.net/secevent/risc/event-type/";

/// The event types the feed carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    /// CAEP: one session ended (logout, revocation, refresh-token reuse, or a
    /// change that ends sessions).
    SessionRevoked,
    /// CAEP: a password or second factor was set, changed or removed.
    CredentialChange,
    /// CAEP: a subject's roles, or a role's permissions, changed.
    TokenClaimsChange,
    /// RISC: the account can no longer log in.
    AccountDisabled,
    /// RISC: it can again.
    AccountEnabled,
    /// RISC: the account was deleted.
    AccountPurged,
}

impl EventType {
    /// Every type.
    pub const ALL: [Self; 6] = [
        Self::SessionRevoked,
        Self::CredentialChange,
        Self::TokenClaimsChange,
        Self::AccountDisabled,
        Self::AccountEnabled,
        Self::AccountPurged,
    ];

    /// The short name: the URI's last segment (stored, and a metric label).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::SessionRevoked => "session-revoked",
            Self::CredentialChange => "credential-change",
            Self::TokenClaimsChange => "token-claims-change",
            Self::AccountDisabled => "account-disabled",
            Self::AccountEnabled => "account-enabled",
            Self::AccountPurged => "account-purged",
        }
    }

    const fn base(self) -> &'static str {
        match self {
            Self::SessionRevoked | Self::CredentialChange | Self::TokenClaimsChange => CAEP,
            Self::AccountDisabled | Self::AccountEnabled | Self::AccountPurged => RISC,
        }
    }

    /// The type's URI, as SETs and subscribers name it.
    pub fn uri(self) -> String {
        format!("{}{}", self.base(), self.as_str())
    }

    /// The type of a short name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }

    /// The type a URI names.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|t| uri.strip_prefix(t.base()) == Some(t.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_uris_round_trip() {
        for t in EventType::ALL {
            assert_eq!(EventType::from_name(t.as_str()), Some(t));
            assert_eq!(EventType::from_uri(&t.uri()), Some(t));
        }
        assert_eq!(
            EventType::SessionRevoked.uri(),
            "https://schemas.openid.net/secevent/caep/event-type/session-revoked"
        );
        assert_eq!(
            EventType::AccountPurged.uri(),
            "https://schemas.openid.net/secevent/risc/event-type/account-purged"
        );
        let wrong_base = "https://schemas.openid.net/secevent/risc/event-type/session-revoked";
        assert_eq!(EventType::from_uri(wrong_base), None);
        assert_eq!(EventType::from_uri("session-revoked"), None);
        assert_eq!(EventType::from_name("nonsense"), None);
    }
}
