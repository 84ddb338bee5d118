//! Roles, the permissions they grant, and which subjects (users and service
//! accounts) hold them; every change marks its subjects for the role poll.

use super::{Sql, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::sql::Timestamp;
use sqlx::types::Json;
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

/// Roles and role assignments.
#[async_trait]
pub trait RoleStore: Send + Sync + std::fmt::Debug {
    async fn list_roles(&self) -> Result<Vec<RoleRecord>, StoreError>;
    /// `Exists` when the name is taken.
    async fn create_role(&self, role: &RoleRecord) -> Result<Outcome, StoreError>;
    /// Replaces description and permissions (every replica reloads definitions
    /// on each poll); `None` when there is no such role.
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
}

platform::generic_store! {
    impl<DB> Sql<DB> {
        pub(super) async fn roles_of(
            conn: &mut DB::Connection,
            subject: Uuid,
        ) -> Result<Vec<String>, StoreError> {
            Ok(
                sqlx::query_scalar("SELECT role FROM subject_roles WHERE subject_id = $1 ORDER BY role")
                    .bind(subject)
                    .fetch_all(conn)
                    .await?,
            )
        }

        async fn subject_exists(conn: &mut DB::Connection, subject: Uuid) -> Result<bool, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM identities WHERE id = $1)
                     OR EXISTS (SELECT 1 FROM service_accounts WHERE id = $1 AND disabled_at IS NULL)",
            )
            .bind(subject)
            .fetch_one(conn)
            .await?)
        }

        /// Marks `subject` changed, for every replica's role poll.
        async fn mark_subject_changed(
            conn: &mut DB::Connection,
            subject: Uuid,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            for table in ["identities", "service_accounts"] {
                sqlx::query(&format!("UPDATE {table} SET roles_changed_at = $2 WHERE id = $1"))
                    .bind(subject)
                    .bind(Timestamp(now))
                    .execute(&mut *conn)
                    .await?;
            }
            Ok(())
        }

        /// Marks every holder of `role` changed.
        async fn mark_holders_changed(
            conn: &mut DB::Connection,
            role: &str,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            for table in ["identities", "service_accounts"] {
                sqlx::query(&format!(
                    "UPDATE {table} SET roles_changed_at = $2
                     WHERE id IN (SELECT subject_id FROM subject_roles WHERE role = $1)"
                ))
                .bind(role)
                .bind(Timestamp(now))
                .execute(&mut *conn)
                .await?;
            }
            Ok(())
        }
    }
}

platform::generic_store! {
    types(Json<Vec<String>>);
    #[async_trait]
    impl<DB> RoleStore for Sql<DB> {
        async fn list_roles(&self) -> Result<Vec<RoleRecord>, StoreError> {
            Ok(sqlx::query_as("SELECT * FROM roles ORDER BY name")
                .fetch_all(&self.pool)
                .await?)
        }

        async fn create_role(&self, r: &RoleRecord) -> Result<Outcome, StoreError> {
            let done = sqlx::query(
                "INSERT INTO roles (name, description, permissions, builtin, created_at, updated_at)
                 VALUES ($1, $2, $3, FALSE, $4, $4) ON CONFLICT (name) DO NOTHING",
            )
            .bind(&r.name)
            .bind(&r.description)
            .bind(Json(r.permissions.clone()))
            .bind(Timestamp(r.created_at))
            .execute(&self.pool)
            .await?;
            Ok(if DB::rows_affected(&done) == 1 {
                Outcome::Done
            } else {
                Outcome::Exists
            })
        }

        async fn update_role(
            &self,
            name: &str,
            description: &str,
            permissions: &[String],
            now: DateTime<Utc>,
        ) -> Result<Option<RoleRecord>, StoreError> {
            Ok(sqlx::query_as(
                "UPDATE roles SET description = $2, permissions = $3, updated_at = $4
                 WHERE name = $1 RETURNING *",
            )
            .bind(name)
            .bind(description)
            .bind(Json(permissions.to_vec()))
            .bind(Timestamp(now))
            .fetch_optional(&self.pool)
            .await?)
        }

        async fn delete_role(&self, name: &str, now: DateTime<Utc>) -> Result<Outcome, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            let builtin: Option<bool> = sqlx::query_scalar(&format!(
                "SELECT builtin FROM roles WHERE name = $1{}",
                DB::FOR_UPDATE
            ))
            .bind(name)
            .fetch_optional(&mut *tx)
            .await?;
            match builtin {
                None => return Ok(Outcome::NoSuchRole),
                Some(true) => return Ok(Outcome::Builtin),
                Some(false) => {}
            }
            Self::mark_holders_changed(&mut tx, name, now).await?;
            sqlx::query("DELETE FROM roles WHERE name = $1 AND NOT builtin")
                .bind(name)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(Outcome::Done)
        }

        async fn assign_role(
            &self,
            subject: Uuid,
            role: &str,
            now: DateTime<Utc>,
        ) -> Result<Outcome, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            if !Self::subject_exists(&mut tx, subject).await? {
                return Ok(Outcome::NoSuchSubject);
            }
            let inserted = sqlx::query(
                "INSERT INTO subject_roles (subject_id, role)
                 SELECT $1, name FROM roles WHERE name = $2 ON CONFLICT DO NOTHING",
            )
            .bind(subject)
            .bind(role)
            .execute(&mut *tx)
            .await?;
            if DB::rows_affected(&inserted) == 0 {
                let exists: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM roles WHERE name = $1)")
                        .bind(role)
                        .fetch_one(&mut *tx)
                        .await?;
                tx.commit().await?;
                return Ok(if exists { Outcome::Done } else { Outcome::NoSuchRole });
            }
            Self::mark_subject_changed(&mut tx, subject, now).await?;
            tx.commit().await?;
            Ok(Outcome::Done)
        }

        async fn unassign_role(
            &self,
            subject: Uuid,
            role: &str,
            now: DateTime<Utc>,
        ) -> Result<Outcome, StoreError> {
            let mut tx = self.pool.begin_with(DB::BEGIN_WRITE).await?;
            if !Self::subject_exists(&mut tx, subject).await? {
                return Ok(Outcome::NoSuchSubject);
            }
            let deleted = sqlx::query("DELETE FROM subject_roles WHERE subject_id = $1 AND role = $2")
                .bind(subject)
                .bind(role)
                .execute(&mut *tx)
                .await?;
            if DB::rows_affected(&deleted) > 0 {
                Self::mark_subject_changed(&mut tx, subject, now).await?;
            }
            tx.commit().await?;
            Ok(Outcome::Done)
        }

        async fn subject_roles(&self, subject: Uuid) -> Result<Option<Vec<String>>, StoreError> {
            // One round trip when the subject holds roles (every login and refresh);
            // a second only to tell "no roles" from "no such subject".
            let mut conn = self.pool.acquire().await?;
            let roles: Vec<String> = sqlx::query_scalar(
                "SELECT role FROM subject_roles WHERE subject_id = $1
                   AND (EXISTS (SELECT 1 FROM identities WHERE id = $1)
                        OR EXISTS (SELECT 1 FROM service_accounts WHERE id = $1 AND disabled_at IS NULL))
                 ORDER BY role",
            )
            .bind(subject)
            .fetch_all(&mut *conn)
            .await?;
            if roles.is_empty() && !Self::subject_exists(&mut conn, subject).await? {
                return Ok(None);
            }
            Ok(Some(roles))
        }

        async fn subject_changes_since(
            &self,
            since: DateTime<Utc>,
        ) -> Result<Vec<SubjectChange>, StoreError> {
            let mut tx = self.pool.begin().await?;
            let mut changes: Vec<SubjectChange> = sqlx::query_as(
                "SELECT id, roles_changed_at, disabled_at IS NOT NULL AS disabled FROM identities
                 WHERE roles_changed_at >= $1
                 UNION ALL
                 SELECT id, roles_changed_at, disabled_at IS NOT NULL FROM service_accounts
                 WHERE roles_changed_at >= $1",
            )
            .bind(Timestamp(since))
            .fetch_all(&mut *tx)
            .await?;
            for change in &mut changes {
                change.roles = Self::roles_of(&mut tx, change.subject_id).await?;
            }
            tx.commit().await?;
            Ok(changes)
        }
    }
}
