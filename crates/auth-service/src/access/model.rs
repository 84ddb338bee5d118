//! The types of access as the use cases and the SQL share them: whom roles are
//! held by, and the records.

use chrono::{DateTime, Utc};
use platform::ids::{ServiceAccountId, UserId};
use platform::sql::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Users or service accounts (a token's `kind` claim).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum SubjectKind {
    /// An end user.
    #[default]
    User,
    /// An internal service.
    Service,
}

/// Whom a token is for and roles are held by: a user or a service account. A
/// token spells it as two claims, `sub` (the id) and `kind` (absent: a user);
/// a row as an `id` and a `service` flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "SubjectClaims", into = "SubjectClaims")]
pub enum SubjectId {
    User(UserId),
    Service(ServiceAccountId),
}

/// The claims of a [`SubjectId`].
#[derive(Clone, Copy, Serialize, Deserialize)]
struct SubjectClaims {
    sub: Uuid,
    #[serde(default)]
    kind: SubjectKind,
}

impl SubjectId {
    fn new(id: Uuid, kind: SubjectKind) -> Self {
        match kind {
            SubjectKind::User => Self::User(UserId::from_uuid(id)),
            SubjectKind::Service => Self::Service(ServiceAccountId::from_uuid(id)),
        }
    }

    /// The id, which the request fields and the `sub` claim carry.
    pub fn uuid(self) -> Uuid {
        match self {
            Self::User(id) => id.uuid(),
            Self::Service(id) => id.uuid(),
        }
    }

    /// A user or a service account.
    pub fn kind(self) -> SubjectKind {
        match self {
            Self::User(_) => SubjectKind::User,
            Self::Service(_) => SubjectKind::Service,
        }
    }

    /// The user, unless this is a service account.
    pub fn user(self) -> Option<UserId> {
        match self {
            Self::User(id) => Some(id),
            Self::Service(_) => None,
        }
    }
}

impl From<SubjectClaims> for SubjectId {
    fn from(c: SubjectClaims) -> Self {
        Self::new(c.sub, c.kind)
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
        let kind = match row.try_get("service")? {
            true => SubjectKind::Service,
            false => SubjectKind::User,
        };
        Ok(Self::new(row.try_get("id")?, kind))
    }
}

/// A role as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct RoleRecord {
    pub name: String,
    pub description: String,
    #[sqlx(json)]
    pub permissions: Vec<String>,
    pub builtin: bool,
    #[sqlx(try_from = "Timestamp")]
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "Timestamp")]
    pub updated_at: DateTime<Utc>,
}

/// A subject whose roles changed (or who was disabled) at `changed_at`.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct SubjectChange {
    #[sqlx(flatten)]
    pub subject_id: SubjectId,
    #[sqlx(rename = "roles_changed_at", try_from = "Timestamp")]
    pub changed_at: DateTime<Utc>,
    #[sqlx(skip)]
    pub roles: Vec<String>,
    pub disabled: bool,
}
