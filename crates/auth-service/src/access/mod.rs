//! Roles and role assignments. Every change is one transaction, audited, and
//! takes effect at once on this replica (and on the others within their poll
//! interval).

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
use authz::Principal;
use uuid::Uuid;

const ROLES_ADMIN: &str = "roles:admin";

fn no_such_role(what: impl std::fmt::Display) -> AuthError {
    AuthError::NotFound(format!("no such role: {what}"))
}

fn no_such_subject(id: Uuid) -> AuthError {
    AuthError::NotFound(format!("no user or service account {id}"))
}

crate::context::use_cases! {
    /// Roles and the permissions they grant.
    Roles
}

impl Roles<'_> {
    async fn reload_definitions(&self) -> Result<(), AuthError> {
        let roles = platform::sql!(read(&self.db), RoleSql::list_roles())?;
        self.authz
            .set_definitions(roles.into_iter().map(|r| (r.name, r.permissions)).collect());
        Ok(())
    }

    pub async fn list_roles(&self, caller: &Principal) -> Result<Vec<RoleRecord>, AuthError> {
        self.require(caller, ROLES_ADMIN, None)?;
        Ok(platform::sql!(read(&self.db), RoleSql::list_roles())?)
    }

    pub async fn create_role(
        &self,
        caller: &Principal,
        name: String,
        description: String,
        permissions: Vec<String>,
        client: &ClientInfo,
    ) -> Result<RoleRecord, AuthError> {
        self.require(caller, ROLES_ADMIN, None)?;
        let now = self.clock.now();
        let role = RoleRecord {
            name,
            description,
            permissions,
            builtin: false,
            created_at: now,
            updated_at: now,
        };
        if !platform::sql!(read(&self.db), RoleSql::create_role(&role))? {
            let taken = format!("role {} already exists", role.name);
            return Err(AuthError::AlreadyExists(taken));
        }
        self.reload_definitions().await?;
        self.audit(
            self.event("role.created", client)
                .actor(caller.subject_id)
                .subject(&role.name)
                .detail("permissions", role.permissions.join(" ")),
        )
        .await;
        Ok(role)
    }

    pub async fn update_role(
        &self,
        caller: &Principal,
        name: &str,
        description: &str,
        permissions: &[String],
        client: &ClientInfo,
    ) -> Result<RoleRecord, AuthError> {
        self.require(caller, ROLES_ADMIN, None)?;
        let role = platform::sql!(
            read(&self.db),
            RoleSql::update_role(name, description, permissions, self.clock.now())
        )?
        .ok_or_else(|| no_such_role(name))?;
        self.reload_definitions().await?;
        self.audit(
            self.event("role.updated", client)
                .actor(caller.subject_id)
                .subject(name)
                .detail("permissions", permissions.join(" ")),
        )
        .await;
        Ok(role)
    }

    /// Deletes a role that is not built in; its holders lose it at once.
    pub async fn delete_role(
        &self,
        caller: &Principal,
        name: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require(caller, ROLES_ADMIN, None)?;
        let mut tx = self.db.write().await?;
        match platform::sql!(&mut tx, RoleSql::role_builtin(name))? {
            None => return Err(no_such_role(name)),
            Some(true) => {
                return Err(AuthError::FailedPrecondition(format!(
                    "{name} is a built-in role and cannot be deleted"
                )));
            }
            Some(false) => {}
        }
        platform::sql!(&mut tx, RoleSql::delete_role(name, self.clock.now()))?;
        tx.commit().await?;
        self.reload_definitions().await?;
        self.audit(
            self.event("role.deleted", client)
                .actor(caller.subject_id)
                .subject(name),
        )
        .await;
        Ok(())
    }

    /// Gives (or takes) a role to (from) the user or service account `id`;
    /// either is idempotent, and only giving needs the role to exist.
    pub async fn assign_role(
        &self,
        caller: &Principal,
        id: Uuid,
        role: &str,
        assign: bool,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require(caller, ROLES_ADMIN, None)?;
        let now = self.clock.now();
        let mut tx = self.db.write().await?;
        let subject =
            platform::sql!(&mut tx, RoleSql::subject(id))?.ok_or_else(|| no_such_subject(id))?;
        if assign {
            if !platform::sql!(&mut tx, RoleSql::role_exists(role))? {
                return Err(no_such_role(role));
            }
            platform::sql!(&mut tx, RoleSql::assign_role(subject, role, now))?;
        } else {
            platform::sql!(&mut tx, RoleSql::unassign_role(subject, role, now))?;
        }
        let roles = platform::sql!(&mut tx, RoleSql::roles_of(subject))?;
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
    ) -> Result<(Vec<String>, Vec<String>), AuthError> {
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
