//! The types of access as the use cases and the SQL share them.

use chrono::{DateTime, Utc};
use platform::sql::Timestamp;
use uuid::Uuid;

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
    #[sqlx(rename = "id")]
    pub subject_id: Uuid,
    #[sqlx(rename = "roles_changed_at", try_from = "Timestamp")]
    pub changed_at: DateTime<Utc>,
    #[sqlx(skip)]
    pub roles: Vec<String>,
    pub disabled: bool,
}

/// The outcome of a write that names a role or subject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Done,
    NoSuchRole,
    NoSuchSubject,
    /// The role is built in and cannot be deleted.
    Builtin,
    /// The name is taken.
    Exists,
}
