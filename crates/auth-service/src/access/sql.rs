//! Roles, the permissions they grant, and which subjects (users and service
//! accounts) hold them; every change of who holds what marks its subjects for
//! the role poll, and a deleted role leaves a tombstone for it. These read and write rows: which role may go, and whether a
//! subject or role exists, the use cases decide.

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
            subject: SubjectId,
        ) -> Result<Vec<RoleName>, StoreError> {
            Ok(sqlx::query_scalar(
                "SELECT role FROM subject_roles WHERE subject_id = $1 ORDER BY role",
            )
            .bind(subject.uuid())
            .fetch_all(c)
            .await?)
        }

        /// The subject `id` names: an identity (even a disabled one: its roles
        /// survive), or an active service account.
        pub async fn subject(
            c: &mut DB::Connection,
            id: Uuid,
        ) -> Result<Option<SubjectId>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT id, FALSE AS service FROM identities WHERE id = $1
                 UNION ALL
                 SELECT id, TRUE FROM service_accounts WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(id)
            .fetch_optional(c)
            .await?)
        }

        /// Locks the user's or service account's row `id` for the rest of the
        /// transaction: a change to its roles takes it first, so concurrent
        /// changes queue (and their feed events stand in the order they
        /// took effect).
        pub async fn lock_subject(
            c: &mut DB::Connection,
            id: Uuid,
        ) -> Result<Option<SubjectId>, StoreError> {
            let user: Option<Uuid> = sqlx::query_scalar(&format!(
                "SELECT id FROM identities WHERE id = $1{}",
                DB::FOR_UPDATE
            ))
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
            if user.is_some() {
                return Ok(Some(SubjectId::new(id, false)));
            }
            let account: Option<Uuid> = sqlx::query_scalar(&format!(
                "SELECT id FROM service_accounts WHERE id = $1 AND disabled_at IS NULL{}",
                DB::FOR_UPDATE
            ))
            .bind(id)
            .fetch_optional(&mut *c)
            .await?;
            Ok(account.map(|id| SubjectId::new(id, true)))
        }

        /// Locks `role` for the rest of the transaction (so it stays as read)
        /// and tells whether it is built in; `None` when there is no such role.
        pub async fn lock_role(
            c: &mut DB::Connection,
            role: &RoleName,
        ) -> Result<Option<bool>, StoreError> {
            Ok(sqlx::query_scalar(&format!(
                "SELECT builtin FROM roles WHERE name = $1{}",
                DB::FOR_UPDATE
            ))
            .bind(role)
            .fetch_optional(c)
            .await?)
        }

        /// Deletes a role and its assignments, and records when (see
        /// [`Self::mark_deleted`]). One row however many held the role
        /// (marking each holder changed made a deletion a million-row write
        /// and every replica's next poll a million-row read).
        pub async fn delete_role(
            c: &mut DB::Connection,
            role: &RoleName,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            Self::mark_deleted(&mut *c, role, now).await?;
            sqlx::query("DELETE FROM roles WHERE name = $1")
                .bind(role)
                .execute(&mut *c)
                .await?;
            Ok(())
        }

        /// Records that `role` was deleted at `at`, unless later already: a
        /// token issued before then that names the role no longer holds it,
        /// even once a role of that name is made again.
        pub async fn mark_deleted(
            c: &mut DB::Connection,
            role: &RoleName,
            at: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "INSERT INTO role_deletions (role, deleted_at) VALUES ($1, $2)
                 ON CONFLICT (role) DO UPDATE SET deleted_at = excluded.deleted_at
                 WHERE excluded.deleted_at > role_deletions.deleted_at",
            )
            .bind(role)
            .bind(Timestamp(at))
            .execute(&mut *c)
            .await?;
            Ok(())
        }

        /// Roles deleted at or after `since`, with when.
        pub async fn role_deletions_since(
            c: &mut DB::Connection,
            since: DateTime<Utc>,
        ) -> Result<Vec<RoleDeletion>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT role, deleted_at FROM role_deletions WHERE deleted_at >= $1",
            )
            .bind(Timestamp(since))
            .fetch_all(&mut *c)
            .await?)
        }

        /// Gives `subject` an existing `role` (`held`) or takes it away; a
        /// subject this changed is marked for every replica's role poll.
        pub async fn set_role(
            c: &mut DB::Connection,
            subject: SubjectId,
            role: &RoleName,
            held: bool,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let change = if held {
                "INSERT INTO subject_roles (subject_id, role)
                 SELECT $1, name FROM roles WHERE name = $2 ON CONFLICT DO NOTHING"
            } else {
                "DELETE FROM subject_roles WHERE subject_id = $1 AND role = $2"
            };
            let done = sqlx::query(change)
                .bind(subject.uuid())
                .bind(role)
                .execute(&mut *c)
                .await?;
            let changed = DB::rows_affected(&done) > 0;
            if changed {
                let table = match subject {
                    SubjectId::User(_) => "identities",
                    SubjectId::Service(_) => "service_accounts",
                };
                sqlx::query(&format!(
                    "UPDATE {table} SET roles_changed_at = $2 WHERE id = $1"
                ))
                .bind(subject.uuid())
                .bind(Timestamp(now))
                .execute(&mut *c)
                .await?;
            }
            Ok(changed)
        }

        /// A subject's roles, sorted; `None` when [`Self::subject`] finds none.
        pub async fn subject_roles(
            c: &mut DB::Connection,
            subject: SubjectId,
        ) -> Result<Option<Vec<RoleName>>, StoreError> {
            // One round trip when the subject holds roles (every login and refresh);
            // a second only to tell "no roles" from "no such subject".
            let roles: Vec<RoleName> = sqlx::query_scalar(
                "SELECT role FROM subject_roles WHERE subject_id = $1
                   AND (EXISTS (SELECT 1 FROM identities WHERE id = $1)
                        OR EXISTS (SELECT 1 FROM service_accounts WHERE id = $1 AND disabled_at IS NULL))
                 ORDER BY role",
            )
            .bind(subject.uuid())
            .fetch_all(&mut *c)
            .await?;
            if roles.is_empty() && Self::subject(&mut *c, subject.uuid()).await?.is_none() {
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
                "SELECT id, FALSE AS service, roles_changed_at,
                        disabled_at IS NOT NULL AS disabled
                 FROM identities WHERE roles_changed_at >= $1
                 UNION ALL
                 SELECT id, TRUE, roles_changed_at, disabled_at IS NOT NULL FROM service_accounts
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

// Apart: the account SQL reads roles_of without the JSON column's bounds.
platform::generic_store! {
    types(Json<Vec<Permission>>);
    impl<DB> RoleSql<DB> {
        pub async fn list_roles(c: &mut DB::Connection) -> Result<Vec<RoleRecord>, StoreError> {
            Ok(sqlx::query_as("SELECT * FROM roles ORDER BY name")
                .fetch_all(&mut *c)
                .await?)
        }

        /// Inserts a role; `None` when the name is taken.
        pub async fn create_role(
            c: &mut DB::Connection,
            role: &NewRole,
            now: DateTime<Utc>,
        ) -> Result<Option<RoleRecord>, StoreError> {
            Ok(sqlx::query_as(
                "INSERT INTO roles (name, description, permissions, builtin, created_at, updated_at)
                 VALUES ($1, $2, $3, FALSE, $4, $4) ON CONFLICT (name) DO NOTHING RETURNING *",
            )
            .bind(&role.name)
            .bind(&role.description)
            .bind(Json(role.permissions.clone()))
            .bind(Timestamp(now))
            .fetch_optional(&mut *c)
            .await?)
        }

        /// Replaces description and permissions (every replica reloads definitions
        /// on each poll); `None` when there is no such role.
        pub async fn update_role(
            c: &mut DB::Connection,
            role: &NewRole,
            now: DateTime<Utc>,
        ) -> Result<Option<RoleRecord>, StoreError> {
            Ok(sqlx::query_as(
                "UPDATE roles SET description = $2, permissions = $3, updated_at = $4
                 WHERE name = $1 RETURNING *",
            )
            .bind(&role.name)
            .bind(&role.description)
            .bind(Json(role.permissions.clone()))
            .bind(Timestamp(now))
            .fetch_optional(&mut *c)
            .await?)
        }
    }
}
