//! The storage of access control and account security: roles and assignments,
//! service accounts, sessions, throttling counters and the audit log.

use super::{IdentityRecord, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use std::collections::BTreeMap;
use uuid::Uuid;

/// A role as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleRecord {
    pub name: String,
    pub description: String,
    pub permissions: Vec<String>,
    pub builtin: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A service account as stored (the secret only as its SHA-256).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAccountRecord {
    pub id: Uuid,
    pub name: String,
    pub client_id: String,
    pub secret_hash: Vec<u8>,
    pub created_at: DateTime<Utc>,
    pub disabled: bool,
    pub roles: Vec<String>,
}

/// A subject whose roles changed (or who was disabled) at `changed_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectChange {
    pub subject_id: Uuid,
    pub changed_at: DateTime<Utc>,
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

/// An active session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub id: Uuid,
    pub user_id: Uuid,
    pub created_at: DateTime<Utc>,
    pub last_used_at: DateTime<Utc>,
    pub client_address: Option<String>,
    pub user_agent: Option<String>,
}

/// A throttling counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counter {
    pub count: i64,
    pub window_start: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One audit event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: String,
    pub actor_id: Option<String>,
    pub subject: Option<String>,
    pub client_address: Option<String>,
    pub details: BTreeMap<String, String>,
}

/// Which audit events to list, newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub kind: Option<String>,
    /// Events whose actor or subject is this.
    pub involving: Option<String>,
    pub since: Option<DateTime<Utc>>,
    /// Strictly older than this (time, id): the page cursor.
    pub before: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

/// Access-control and account-security storage. Every method is one transaction.
#[async_trait]
pub trait AccessStore: Send + Sync {
    async fn list_roles(&self) -> Result<Vec<RoleRecord>, StoreError>;
    /// `Exists` when the name is taken.
    async fn create_role(&self, role: &RoleRecord) -> Result<Outcome, StoreError>;
    /// Replaces description and permissions; `None` when there is no such role.
    async fn update_role(
        &self,
        name: &str,
        description: &str,
        permissions: &[String],
        now: DateTime<Utc>,
    ) -> Result<Option<RoleRecord>, StoreError>;
    /// Deletes a role and its assignments (`Builtin`, `NoSuchRole` otherwise).
    async fn delete_role(&self, name: &str, now: DateTime<Utc>) -> Result<Outcome, StoreError>;
    /// Gives a user or service account a role (idempotent).
    async fn assign_role(
        &self,
        subject: Uuid,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError>;
    /// Takes a role away (idempotent).
    async fn unassign_role(
        &self,
        subject: Uuid,
        role: &str,
        now: DateTime<Utc>,
    ) -> Result<Outcome, StoreError>;
    /// A subject's roles, sorted; `None` for an unknown subject.
    async fn subject_roles(&self, subject: Uuid) -> Result<Option<Vec<String>>, StoreError>;
    /// Subjects whose roles changed, or who were disabled, at or after `since`.
    async fn subject_changes_since(
        &self,
        since: DateTime<Utc>,
    ) -> Result<Vec<SubjectChange>, StoreError>;

    /// Inserts a service account with roles (`Exists`, `NoSuchRole` otherwise).
    async fn insert_service_account(
        &self,
        account: &ServiceAccountRecord,
    ) -> Result<Outcome, StoreError>;
    async fn service_account_by_client_id(
        &self,
        client_id: &str,
    ) -> Result<Option<ServiceAccountRecord>, StoreError>;
    async fn service_account_by_name(
        &self,
        name: &str,
    ) -> Result<Option<ServiceAccountRecord>, StoreError>;
    /// Active service accounts, by name.
    async fn list_service_accounts(&self) -> Result<Vec<ServiceAccountRecord>, StoreError>;
    /// Disables an account; false when there was no active one.
    async fn disable_service_account(
        &self,
        id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    async fn identity_by_id(&self, id: Uuid) -> Result<Option<IdentityRecord>, StoreError>;
    /// A user's active sessions, newest first.
    async fn list_sessions(&self, user_id: Uuid) -> Result<Vec<SessionRecord>, StoreError>;
    /// The user of an active session.
    async fn session_owner(&self, session_id: Uuid) -> Result<Option<Uuid>, StoreError>;
    /// Revokes one active session; false when there was none.
    async fn revoke_session(
        &self,
        session_id: Uuid,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<bool, StoreError>;
    /// Revokes a user's active sessions but `except`; returns those revoked.
    async fn revoke_sessions_of(
        &self,
        user_id: Uuid,
        except: Option<Uuid>,
        now: DateTime<Utc>,
        reason: &str,
    ) -> Result<Vec<Uuid>, StoreError>;

    /// Counts one more event under `key`, starting a new window when the current
    /// one is older than `window`; returns the counter after the increment.
    async fn bump_counter(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window: Duration,
    ) -> Result<Counter, StoreError>;
    async fn counter(&self, key: &str) -> Result<Option<Counter>, StoreError>;
    async fn clear_counter(&self, key: &str) -> Result<(), StoreError>;

    async fn insert_audit(&self, event: &AuditRecord) -> Result<(), StoreError>;
    async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditRecord>, StoreError>;
}
