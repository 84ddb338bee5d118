//! Identifiers that say what they name: a session id cannot be passed where a
//! user id is expected, nor a service account's where a user's is. Each is a UUID on the wire and in both databases,
//! except a service account's client id, which callers present as text (see
//! [`ClientId`]).

use crate::validation::FieldViolation;
use uuid::Uuid;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord,
            serde::Serialize, serde::Deserialize, sqlx::Type,
        )]
        #[serde(transparent)]
        #[sqlx(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// A new, time-ordered (v7) id.
            #[must_use]
            pub fn generate() -> Self {
                Self($crate::clock::time_ordered_id())
            }

            /// The id a UUID already names.
            #[must_use]
            pub const fn from_uuid(id: Uuid) -> Self {
                Self(id)
            }

            /// The UUID.
            #[must_use]
            pub const fn uuid(self) -> Uuid {
                self.0
            }

            /// Parses a caller's text for the request field `field`.
            pub fn parse(raw: &str, field: &'static str) -> Result<Self, FieldViolation> {
                Uuid::parse_str(raw)
                    .map(Self)
                    .map_err(|_| FieldViolation::new(field, "must be a UUID"))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<$name> for Uuid {
            fn from(id: $name) -> Uuid {
                id.0
            }
        }
    };
}

id_type!(
    /// A person's identity: the same id in the Auth Service and the User Service.
    UserId
);
id_type!(
    /// A login session (the `sid` claim of its access tokens).
    SessionId
);
id_type!(
    /// A service account.
    ServiceAccountId
);

/// Whom a token is for, and whom roles are held by: a user or a service
/// account, which no code can take for the other. A token carries it as two
/// claims, `sub` (the id) and `kind` (`user` or `service`; absent: a user); a
/// row as an `id` and a boolean `service`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(from = "SubjectClaims", into = "SubjectClaims")]
pub enum SubjectId {
    User(UserId),
    Service(ServiceAccountId),
}

/// The `kind` claim of a [`SubjectId`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    #[default]
    User,
    Service,
}

/// The claims of a [`SubjectId`].
#[derive(Clone, Copy, serde::Serialize, serde::Deserialize)]
struct SubjectClaims {
    sub: Uuid,
    #[serde(default)]
    kind: SubjectKind,
}

impl SubjectId {
    /// The user or (`service`) the service account `id` names.
    #[must_use]
    pub const fn new(id: Uuid, service: bool) -> Self {
        if service {
            Self::Service(ServiceAccountId(id))
        } else {
            Self::User(UserId(id))
        }
    }

    /// The id, as request fields and the `sub` claim carry it.
    #[must_use]
    pub const fn uuid(self) -> Uuid {
        match self {
            Self::User(UserId(id)) | Self::Service(ServiceAccountId(id)) => id,
        }
    }

    /// The `kind` claim.
    #[must_use]
    pub const fn kind(self) -> SubjectKind {
        match self {
            Self::User(_) => SubjectKind::User,
            Self::Service(_) => SubjectKind::Service,
        }
    }

    /// The user, unless this is a service account.
    #[must_use]
    pub const fn user(self) -> Option<UserId> {
        match self {
            Self::User(id) => Some(id),
            Self::Service(_) => None,
        }
    }
}

impl From<SubjectClaims> for SubjectId {
    fn from(c: SubjectClaims) -> Self {
        Self::new(c.sub, matches!(c.kind, SubjectKind::Service))
    }
}

impl From<SubjectId> for SubjectClaims {
    fn from(s: SubjectId) -> Self {
        Self {
            sub: s.uuid(),
            kind: s.kind(),
        }
    }
}

impl From<UserId> for SubjectId {
    fn from(id: UserId) -> Self {
        Self::User(id)
    }
}

impl From<ServiceAccountId> for SubjectId {
    fn from(id: ServiceAccountId) -> Self {
        Self::Service(id)
    }
}

impl std::fmt::Display for SubjectId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.uuid().fmt(f)
    }
}

impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for SubjectId
where
    &'r str: sqlx::ColumnIndex<R>,
    Uuid: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    bool: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    fn from_row(row: &'r R) -> sqlx::Result<Self> {
        Ok(Self::new(row.try_get("id")?, row.try_get("service")?))
    }
}

/// A service account's client id, as a caller presents it (IssueServiceToken,
/// HTTP Basic at the introspection endpoint, a service's own configuration):
/// 1 to 128 of the URI-unreserved characters `A-Z a-z 0-9 - . _ ~` (RFC 3986),
/// a superset of what the Auth Service issues (`sa-` and 16 base64url
/// characters). Anything else (control characters, NUL, white space,
/// non-ASCII, longer) cannot name an account: callers treat it as unknown
/// credentials before it is looked up, stored or logged.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClientId(String);

/// Text that is not a [`ClientId`]; deliberately says nothing of the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not a client id (1 to 128 of A-Z a-z 0-9 - . _ ~)")]
pub struct InvalidClientId;

impl ClientId {
    /// The longest client id accepted.
    pub const MAX_LEN: usize = 128;

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for ClientId {
    type Error = InvalidClientId;

    fn try_from(raw: &str) -> Result<Self, Self::Error> {
        let ok = (1..=Self::MAX_LEN).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(InvalidClientId)
        }
    }
}

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_display_and_serde_are_the_uuid() {
        let id = UserId::generate();
        assert_eq!(UserId::parse(&id.to_string(), "f"), Ok(id));
        assert!(UserId::parse("users/1", "f").is_err());
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{}\"", id.uuid()));
    }

    #[test]
    fn a_subject_is_the_sub_and_kind_claims() {
        let id = ServiceAccountId::generate();
        let claims = serde_json::json!({ "sub": id.uuid(), "kind": "service" });
        assert_eq!(serde_json::to_value(SubjectId::from(id)).unwrap(), claims);
        let old = serde_json::json!({ "sub": id.uuid() });
        let user = SubjectId::User(UserId(id.uuid()));
        assert_eq!(serde_json::from_value::<SubjectId>(old).ok(), Some(user));
    }

    #[test]
    fn client_ids_are_bounded_and_plain() {
        for ok in ["sa-AbC_d-e0123456789x", "x", "a.b~c", &"a".repeat(128)] {
            assert_eq!(
                ClientId::try_from(ok).map(|c| c.to_string()),
                Ok(ok.to_owned())
            );
        }
        for bad in [
            "",
            &"a".repeat(129),
            &"a".repeat(60_000),
            "sa-1\r\nforged: line",
            "sa-1\n",
            "sa-1\u{85}",
            "sa-1\u{2028}",
            "sa-1\u{2029}",
            "sa-1\0",
            "sa 1",
            "sa-1\t",
            "sa-ａ",
            "sa:1",
            "sa%0A",
            "sa/1",
        ] {
            assert_eq!(ClientId::try_from(bad), Err(InvalidClientId), "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Whatever the text, parsing never panics, and what it accepts is
        /// the text itself, bounded and free of anything but the charset.
        #[test]
        fn client_id_parsing_accepts_only_its_charset(raw in "(?s).{0,200}|[A-Za-z0-9._~-]{0,140}") {
            if let Ok(id) = ClientId::try_from(raw.as_str()) {
                proptest::prop_assert_eq!(id.as_str(), raw.as_str());
                proptest::prop_assert!(id.as_str().len() <= ClientId::MAX_LEN);
                proptest::prop_assert!(id.as_str().bytes().all(|b| b.is_ascii_graphic()));
            }
        }
    }
}
