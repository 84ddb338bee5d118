//! Identifiers that say what they name: a session id cannot be passed where a
//! user id is expected. Each is a UUID on the wire and in both databases.

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
                Self(Uuid::now_v7())
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
}
