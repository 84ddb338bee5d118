//! Roles, the permissions they grant, and which subjects (users and service
//! accounts) hold them; every change marks its subjects for the role poll.

use super::model::*;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::sql::Timestamp;
use sqlx::types::Json;
use uuid::Uuid;

/// Roles and role assignments.
pub struct RoleSql<DB>(std::marker::PhantomData<DB>);

platform::generic_store! {
    impl<DB> RoleSql<DB> {
        pub async fn roles_of(
            c: &mut DB::Connection,
            subject: Uuid,
        ) -> Result<Vec<String>, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT role FROM subject_roles WHERE subject_id = $1 ORDER BY role",
            )
            .bind(subject)
            .fetch_all(c)
            .await?)
        }

        pub async fn subject_exists(
            c: &mut DB::Connection,
            subject: Uuid,
        ) -> Result<bool, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM identities WHERE id = $1)
                     OR EXISTS (SELECT 1 FROM service_accounts WHERE id = $1 AND disabled_at IS NULL)",
            )
            .bind(subject)
            .fetch_one(c)
            .await?)
        }

        /// Marks `subject` changed, for every replica's role poll.
        pub async fn mark_subject_changed(
            c: &mut DB::Connection,
            subject: Uuid,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            for table in ["identities", "service_accounts"] {
                sqlx::query(&format!(
                    "UPDATE {table} SET roles_changed_at = $2 WHERE id = $1"
                ))
                .bind(subject)
                .bind(Timestamp(now))
                .execute(&mut *c)
                .await?;
            }
            Ok(())
        }

        /// Marks every holder of `role` changed.
        pub async fn mark_holders_changed(
            c: &mut DB::Connection,
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
                .execute(&mut *c)
                .await?;
            }
            Ok(())
        }
    }
}

platform::generic_store! {
    types(Json<Vec<String>>);
    impl<DB> RoleSql<DB> {
        pub async fn list_roles(c: &mut DB::Connection) -> Result<Vec<RoleRecord>, StoreError> {
            Ok(sqlx::query_as("SELECT * FROM roles ORDER BY name")
                .fetch_all(&mut *c)
                .await?)
        }

        /// `Exists` when the name is taken.
        pub async fn create_role(
            c: &mut DB::Connection,
            r: &RoleRecord,
        ) -> Result<Outcome, StoreError> {
            let done = sqlx::query(
                "INSERT INTO roles (name, description, permissions, builtin, created_at, updated_at)
                 VALUES ($1, $2, $3, FALSE, $4, $4) ON CONFLICT (name) DO NOTHING",
            )
            .bind(&r.name)
            .bind(&r.description)
            .bind(Json(r.permissions.clone()))
            .bind(Timestamp(r.created_at))
            .execute(&mut *c)
            .await?;
            Ok(if DB::rows_affected(&done) == 1 {
                Outcome::Done
            } else {
                Outcome::Exists
            })
        }

        /// Replaces description and permissions (every replica reloads definitions
        /// on each poll); `None` when there is no such role.
        pub async fn update_role(
            c: &mut DB::Connection,
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
            .fetch_optional(&mut *c)
            .await?)
        }

        /// Deletes a role and its assignments (`Builtin`, `NoSuchRole` otherwise).
        pub async fn delete_role(
            c: &mut DB::Connection,
            name: &str,
            now: DateTime<Utc>,
        ) -> Result<Outcome, StoreError> {
            let builtin: Option<bool> = sqlx::query_scalar(&format!(
                "SELECT builtin FROM roles WHERE name = $1{}",
                DB::FOR_UPDATE
            ))
            .bind(name)
            .fetch_optional(&mut *c)
            .await?;
            match builtin {
                None => return Ok(Outcome::NoSuchRole),
                Some(true) => return Ok(Outcome::Builtin),
                Some(false) => {}
            }
            Self::mark_holders_changed(&mut *c, name, now).await?;
            sqlx::query("DELETE FROM roles WHERE name = $1 AND NOT builtin")
                .bind(name)
                .execute(&mut *c)
                .await?;
            Ok(Outcome::Done)
        }

        /// Gives a user or service account a role (idempotent).
        pub async fn assign_role(
            c: &mut DB::Connection,
            subject: Uuid,
            role: &str,
            now: DateTime<Utc>,
        ) -> Result<Outcome, StoreError> {
            if !Self::subject_exists(&mut *c, subject).await? {
                return Ok(Outcome::NoSuchSubject);
            }
            let inserted = sqlx::query(
                "INSERT INTO subject_roles (subject_id, role)
                 SELECT $1, name FROM roles WHERE name = $2 ON CONFLICT DO NOTHING",
            )
            .bind(subject)
            .bind(role)
            .execute(&mut *c)
            .await?;
            if DB::rows_affected(&inserted) == 0 {
                let exists: bool =
                    sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM roles WHERE name = $1)")
                        .bind(role)
                        .fetch_one(&mut *c)
                        .await?;
                return Ok(if exists {
                    Outcome::Done
                } else {
                    Outcome::NoSuchRole
                });
            }
            Self::mark_subject_changed(&mut *c, subject, now).await?;
            Ok(Outcome::Done)
        }

        /// Takes a role away (idempotent).
        pub async fn unassign_role(
            c: &mut DB::Connection,
            subject: Uuid,
            role: &str,
            now: DateTime<Utc>,
        ) -> Result<Outcome, StoreError> {
            if !Self::subject_exists(&mut *c, subject).await? {
                return Ok(Outcome::NoSuchSubject);
            }
            let deleted =
                sqlx::query("DELETE FROM subject_roles WHERE subject_id = $1 AND role = $2")
                    .bind(subject)
                    .bind(role)
                    .execute(&mut *c)
                    .await?;
            if DB::rows_affected(&deleted) > 0 {
                Self::mark_subject_changed(&mut *c, subject, now).await?;
            }
            Ok(Outcome::Done)
        }

        /// A subject's roles, sorted; `None` for an unknown subject.
        pub async fn subject_roles(
            c: &mut DB::Connection,
            subject: Uuid,
        ) -> Result<Option<Vec<String>>, StoreError> {
            // One round trip when the subject holds roles (every login and refresh);
            // a second only to tell "no roles" from "no such subject".
            let roles: Vec<String> = sqlx::query_scalar(
                "SELECT role FROM subject_roles WHERE subject_id = $1
                   AND (EXISTS (SELECT 1 FROM identities WHERE id = $1)
                        OR EXISTS (SELECT 1 FROM service_accounts WHERE id = $1 AND disabled_at IS NULL))
                 ORDER BY role",
            )
            .bind(subject)
            .fetch_all(&mut *c)
            .await?;
            if roles.is_empty() && !Self::subject_exists(&mut *c, subject).await? {
                return Ok(None);
            }
            Ok(Some(roles))
        }

        /// Subjects whose roles changed, or who were disabled, at or after `since`.
        pub async fn subject_changes_since(
            c: &mut DB::Connection,
            since: DateTime<Utc>,
        ) -> Result<Vec<SubjectChange>, StoreError> {
            let mut changes: Vec<SubjectChange> = sqlx::query_as(
                "SELECT id, roles_changed_at, disabled_at IS NOT NULL AS disabled FROM identities
                 WHERE roles_changed_at >= $1
                 UNION ALL
                 SELECT id, roles_changed_at, disabled_at IS NOT NULL FROM service_accounts
                 WHERE roles_changed_at >= $1",
            )
            .bind(Timestamp(since))
            .fetch_all(&mut *c)
            .await?;
            for change in &mut changes {
                change.roles = Self::roles_of(&mut *c, change.subject_id).await?;
            }
            Ok(changes)
        }
    }
}
