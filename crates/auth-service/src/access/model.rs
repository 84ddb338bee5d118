//! The vocabulary of access: what roles and permissions are called (parsed at
//! the edge, with the limits of a caller's input), and the records the use
//! cases and the SQL share.

use crate::domain::FieldViolation;
use chrono::{DateTime, Utc};
use platform::sql::Timestamp;
use serde::{Deserialize, Serialize};

pub use platform::ids::{SubjectId, SubjectKind};

/// The text, `Display` and `Borrow<str>` (lists of names are joined as text),
/// for the text newtypes here.
macro_rules! text {
    ($name:ident) => {
        impl $name {
            /// The text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::borrow::Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }
    };
}

/// `min` to 64 of `a-z 0-9 _ -`, starting with a letter.
fn name_ok(s: &str, min: usize) -> bool {
    (min..=RoleName::MAX_LEN).contains(&s.len())
        && s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A role's name (and the rule for a service account's): 2 to 64 of
/// `a-z 0-9 _ -`, starting with a letter. Stored names, and the roles of the
/// tokens this service signed, are decoded without the check: only parsed
/// names are ever written.
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct RoleName(String);
text!(RoleName);

impl RoleName {
    /// The longest name.
    pub const MAX_LEN: usize = 64;

    /// Parses a caller's name for the request field `field`.
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, FieldViolation> {
        let s = raw.trim();
        if !name_ok(s, 2) {
            let rule =
                "must be 2 to 64 characters of a-z, 0-9, '_' and '-', starting with a letter";
            return Err(FieldViolation::new(field, rule));
        }
        Ok(Self(s.to_owned()))
    }

    /// One of the built-in roles the code names (`admin`, `user`, ...).
    pub fn builtin(name: &'static str) -> Self {
        Self(name.to_owned())
    }
}

/// A permission: `resource:action`, each 1 to 64 of `a-z 0-9 _ -` from a
/// letter, or [`Permission::ALL`]. Decoded unchecked, like a [`RoleName`].
#[derive(
    Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, sqlx::Type,
)]
#[serde(transparent)]
#[sqlx(transparent)]
pub struct Permission(String);
text!(Permission);

impl Permission {
    /// The permission that grants every permission.
    pub const ALL: &str = "*";

    /// Parses a caller's permission for the request field `field`.
    pub fn parse(raw: &str, field: &'static str) -> Result<Self, FieldViolation> {
        let s = raw.trim();
        let ok = s == Self::ALL
            || s.split_once(':')
                .is_some_and(|(r, a)| name_ok(r, 1) && name_ok(a, 1));
        if !ok {
            let shown: String = s.chars().take(80).collect();
            let message = format!("{shown:?} is not a permission such as users:read");
            return Err(FieldViolation::new(field, message));
        }
        Ok(Self(s.to_owned()))
    }

    /// Whether holding this permission grants `wanted`.
    pub fn grants(&self, wanted: &str) -> bool {
        self.0 == wanted || self.0 == Self::ALL
    }
}

/// What a permission is asked for on, such as `users/{id}`: at most
/// [`Resource::MAX_LEN`] bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource(String);
text!(Resource);

impl Resource {
    /// The longest resource.
    pub const MAX_LEN: usize = 256;

    /// Parses an optional resource: empty means none.
    pub fn parse(raw: &str, field: &'static str) -> Result<Option<Self>, FieldViolation> {
        if raw.len() > Self::MAX_LEN {
            let limit = format!("must be at most {} characters", Self::MAX_LEN);
            return Err(FieldViolation::new(field, limit));
        }
        Ok((!raw.is_empty()).then(|| Self(raw.to_owned())))
    }
}

/// A role as CreateRole and UpdateRole define it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewRole {
    pub name: RoleName,
    /// Trimmed; at most [`NewRole::MAX_DESCRIPTION`] characters.
    pub description: String,
    /// Sorted, without repeats; at most [`NewRole::MAX_PERMISSIONS`] given.
    pub permissions: Vec<Permission>,
}

impl NewRole {
    pub const MAX_DESCRIPTION: usize = 200;
    pub const MAX_PERMISSIONS: usize = 100;

    /// Parses the fields of a request's `role`.
    pub fn parse(
        name: &str,
        description: &str,
        permissions: &[String],
    ) -> Result<Self, FieldViolation> {
        let name = RoleName::parse(name, "role.name")?;
        if description.chars().count() > Self::MAX_DESCRIPTION {
            let limit = format!("must be at most {} characters", Self::MAX_DESCRIPTION);
            return Err(FieldViolation::new("role.description", limit));
        }
        if permissions.len() > Self::MAX_PERMISSIONS {
            let limit = format!("must hold at most {} permissions", Self::MAX_PERMISSIONS);
            return Err(FieldViolation::new("role.permissions", limit));
        }
        let mut permissions = permissions
            .iter()
            .map(|p| Permission::parse(p, "role.permissions"))
            .collect::<Result<Vec<_>, _>>()?;
        permissions.sort();
        permissions.dedup();
        let description = description.trim().to_owned();
        Ok(Self {
            name,
            description,
            permissions,
        })
    }
}

/// A role as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoleRecord {
    pub name: RoleName,
    pub description: String,
    #[sqlx(json)]
    pub permissions: Vec<Permission>,
    pub builtin: bool,
    #[sqlx(try_from = "Timestamp")]
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "Timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// A role deleted at `deleted_at`: tokens issued before then that name it
/// hold nothing by that name.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoleDeletion {
    pub role: RoleName,
    #[sqlx(try_from = "Timestamp")]
    pub deleted_at: DateTime<Utc>,
}

/// A subject whose roles changed (or who was disabled) at `changed_at`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SubjectChange {
    #[sqlx(flatten)]
    pub subject_id: SubjectId,
    #[sqlx(rename = "roles_changed_at", try_from = "Timestamp")]
    pub changed_at: DateTime<Utc>,
    #[sqlx(skip)]
    pub roles: Vec<RoleName>,
    pub disabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_permissions() {
        assert!(Permission::parse("users:read", "p").is_ok());
        assert!(Permission::parse("*", "p").is_ok());
        for bad in "users,Users:Read,:read,users:,a:b:c,users read".split(',') {
            assert!(Permission::parse(bad, "p").is_err(), "{bad:?}");
        }
        let name = |s| RoleName::parse(s, "n");
        assert!(name("support-staff").is_ok());
        assert!(name("x").is_err() && name("1abc").is_err() && name("ABC").is_err());
    }
}
