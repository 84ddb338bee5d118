//! Roles and role assignments. Every change is one transaction, with its
//! `token-claims-change` event for the feed, audited, and takes effect at once
//! on this replica (and on the others within their poll interval).

pub mod authz;
pub mod feed;
pub mod freshness;
mod model;
pub mod revocation;
mod sql;

pub use model::*;
pub use sql::RoleSql;

use crate::audit::ClientInfo;
use crate::error::AuthError;
use crate::signals::{Signal, SignalSql};
use crate::storage::StoreError;
use authz::Principal;
use chrono::SubsecRound;
use uuid::Uuid;

const ROLES_ADMIN: &str = "roles:admin";
const ROLES_READ: &str = "roles:read";

fn no_such_role(name: &RoleName) -> AuthError {
    AuthError::NotFound(format!("no such role: {name}"))
}

fn no_such_subject(id: Uuid) -> AuthError {
    AuthError::NotFound(format!("no user or service account {id}"))
}

crate::context::use_cases! {
    /// Roles and the permissions they grant.
    Roles
}

impl Roles<'_> {
    /// After a role changed: this replica's definitions at once, and the audit.
    async fn role_changed(
        &self,
        kind: &str,
        caller: &Principal,
        (name, permissions): (&RoleName, Option<&[Permission]>),
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        let roles = platform::sql!(read(&self.db), RoleSql::list_roles())?;
        self.authz
            .set_definitions(roles.into_iter().map(|r| (r.name, r.permissions)).collect());
        let event = self.event(kind, client).actor(caller.subject_id);
        let event = event.subject(name);
        self.audit(match permissions {
            Some(p) => event.detail("permissions", p.join(" ")),
            None => event,
        })
        .await;
        Ok(())
    }

    /// Every role; `roles:read` suffices (a verifier maps roles to
    /// permissions with it).
    pub async fn list_roles(&self, caller: &Principal) -> Result<Vec<RoleRecord>, AuthError> {
        if self.require(caller, ROLES_READ, None).is_err() {
            self.require(caller, ROLES_ADMIN, None)?;
        }
        Ok(platform::sql!(read(&self.db), RoleSql::list_roles())?)
    }

    pub async fn create_role(
        &self,
        caller: &Principal,
        role: NewRole,
        client: &ClientInfo,
    ) -> Result<RoleRecord, AuthError> {
        self.require(caller, ROLES_ADMIN, None)?;
        let now = self.clock.now();
        let mut tx = self.db.write().await?;
        let created =
            platform::sql!(&mut tx, RoleSql::create_role(&role, now))?.ok_or_else(|| {
                AuthError::AlreadyExists(format!("role {} already exists", role.name))
            })?;
        let signal = Signal::role_changed(&role.name, &role.permissions, now);
        platform::sql!(&mut tx, SignalSql::emit(&[signal]))?;
        tx.commit().await?;
        let change = (&role.name, Some(&role.permissions[..]));
        self.role_changed("role.created", caller, change, client)
            .await?;
        Ok(created)
    }

    pub async fn update_role(
        &self,
        caller: &Principal,
        role: NewRole,
        client: &ClientInfo,
    ) -> Result<RoleRecord, AuthError> {
        self.require(caller, ROLES_ADMIN, None)?;
        let now = self.clock.now();
        let mut tx = self.db.write().await?;
        // Locked first, so concurrent updates' events stand in the order
        // the updates took effect.
        if platform::sql!(&mut tx, RoleSql::lock_role(&role.name))?.is_none() {
            return Err(no_such_role(&role.name));
        }
        let updated = platform::sql!(&mut tx, RoleSql::update_role(&role, now))?
            .ok_or_else(|| no_such_role(&role.name))?;
        let signal = Signal::role_changed(&role.name, &role.permissions, now);
        platform::sql!(&mut tx, SignalSql::emit(&[signal]))?;
        tx.commit().await?;
        let change = (&role.name, Some(&role.permissions[..]));
        self.role_changed("role.updated", caller, change, client)
            .await?;
        Ok(updated)
    }

    /// Deletes a role that is not built in; its holders lose it at once.
    pub async fn delete_role(
        &self,
        caller: &Principal,
        name: &RoleName,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require(caller, ROLES_ADMIN, None)?;
        let mut tx = self.db.write().await?;
        match platform::sql!(&mut tx, RoleSql::lock_role(name))? {
            None => return Err(no_such_role(name)),
            Some(true) => {
                let builtin = format!("{name} is a built-in role and cannot be deleted");
                return Err(AuthError::FailedPrecondition(builtin));
            }
            Some(false) => {}
        }
        let now = self.clock.now();
        platform::sql!(&mut tx, RoleSql::delete_role(name, now))?;
        platform::sql!(
            &mut tx,
            SignalSql::emit(&[Signal::role_changed(name, &[], now)])
        )?;
        tx.commit().await?;
        self.deletion_committed(name).await;
        self.role_changed("role.deleted", caller, (name, None), client)
            .await
    }

    /// Stamps a committed deletion again, now. The stamp in its transaction
    /// is older than the tokens signed while the cascade ran (they read the
    /// assignments as they were) and than the changes other replicas made
    /// meanwhile, and a poll may have moved past it by the commit; this one
    /// is newer than all of them. If it fails, the first stands.
    async fn deletion_committed(&self, name: &RoleName) {
        let done = self.clock.now().trunc_subsecs(6);
        let stamped = async {
            let mut tx = self.db.write().await?;
            platform::sql!(&mut tx, RoleSql::mark_deleted(name, done))?;
            tx.commit().await?;
            Ok::<_, StoreError>(())
        };
        if let Err(error) = stamped.await {
            tracing::warn!(role = %name, %error, "could not stamp a role deletion at its commit");
        }
        self.authz.note_deleted(RoleDeletion {
            role: name.clone(),
            deleted_at: done,
        });
    }

    /// Gives (or takes) a role to (from) the user or service account `id`;
    /// either is idempotent, and only giving needs the role to exist.
    pub async fn assign_role(
        &self,
        caller: &Principal,
        id: Uuid,
        role: &RoleName,
        assign: bool,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require(caller, ROLES_ADMIN, None)?;
        let now = self.clock.now();
        let mut tx = self.db.write().await?;
        let subject = platform::sql!(&mut tx, RoleSql::lock_subject(id))?
            .ok_or_else(|| no_such_subject(id))?;
        if assign && platform::sql!(&mut tx, RoleSql::lock_role(role))?.is_none() {
            return Err(no_such_role(role));
        }
        let changed = platform::sql!(&mut tx, RoleSql::set_role(subject, role, assign, now))?;
        let roles = platform::sql!(&mut tx, RoleSql::roles_of(subject))?;
        if changed {
            let signal = Signal::roles_changed(subject, &roles, now);
            platform::sql!(&mut tx, SignalSql::emit(&[signal]))?;
        }
        tx.commit().await?;
        self.authz.note(SubjectChange {
            subject_id: subject,
            changed_at: now,
            roles,
            disabled: false,
        });
        let kind = if assign {
            "role.assigned"
        } else {
            "role.unassigned"
        };
        self.audit(
            self.event(kind, client)
                .actor(caller.subject_id)
                .subject(subject)
                .detail("role", role),
        )
        .await;
        Ok(())
    }

    /// A subject's roles and permissions; the subject itself may always ask.
    pub async fn subject_roles(
        &self,
        caller: &Principal,
        id: Option<Uuid>,
    ) -> Result<(Vec<RoleName>, Vec<Permission>), AuthError> {
        let other = id.filter(|id| *id != caller.subject_id.uuid());
        if other.is_some() {
            self.require(caller, ROLES_ADMIN, None)?;
        }
        let mut c = self.db.read().await?;
        let subject = match other {
            None => caller.subject_id,
            Some(id) => {
                platform::sql!(&mut c, RoleSql::subject(id))?.ok_or_else(|| no_such_subject(id))?
            }
        };
        let roles = platform::sql!(&mut c, RoleSql::subject_roles(subject))?
            .ok_or_else(|| no_such_subject(subject.uuid()))?;
        let permissions = authz::permissions_of(&roles, &self.authz.definitions());
        Ok((roles, permissions))
    }
}
