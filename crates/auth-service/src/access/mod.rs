//! Roles and role assignments. Every change is audited and takes effect at once
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
use authz::Principal;
use uuid::Uuid;

const ROLES_ADMIN: &str = "roles:admin";

pub(crate) fn outcome(o: Outcome, what: &str) -> Result<(), AuthError> {
    match o {
        Outcome::Done => Ok(()),
        Outcome::NoSuchRole => Err(AuthError::NotFound(format!("no such role: {what}"))),
        Outcome::NoSuchSubject => Err(AuthError::NotFound(format!(
            "no user or service account {what}"
        ))),
        Outcome::Builtin => Err(AuthError::FailedPrecondition(format!(
            "{what} is a built-in role and cannot be deleted"
        ))),
        Outcome::Exists => Err(AuthError::AlreadyExists(format!("{what} already exists"))),
    }
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

    async fn note_roles_changed(&self, subject: Uuid) -> Result<(), AuthError> {
        let roles =
            platform::sql!(read(&self.db), RoleSql::subject_roles(subject))?.unwrap_or_default();
        self.authz.note(SubjectChange {
            subject_id: subject,
            changed_at: self.clock.now(),
            roles,
            disabled: false,
        });
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
        outcome(
            platform::sql!(read(&self.db), RoleSql::create_role(&role))?,
            &format!("role {}", role.name),
        )?;
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
        .ok_or_else(|| AuthError::NotFound(format!("no such role: {name}")))?;
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

    pub async fn delete_role(
        &self,
        caller: &Principal,
        name: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require(caller, ROLES_ADMIN, None)?;
        outcome(
            platform::sql!(
                write(&self.db),
                RoleSql::delete_role(name, self.clock.now())
            )?,
            name,
        )?;
        self.reload_definitions().await?;
        self.audit(
            self.event("role.deleted", client)
                .actor(caller.subject_id)
                .subject(name),
        )
        .await;
        Ok(())
    }

    pub async fn assign_role(
        &self,
        caller: &Principal,
        subject: Uuid,
        role: &str,
        assign: bool,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require(caller, ROLES_ADMIN, None)?;
        let now = self.clock.now();
        let result = if assign {
            platform::sql!(write(&self.db), RoleSql::assign_role(subject, role, now))?
        } else {
            platform::sql!(write(&self.db), RoleSql::unassign_role(subject, role, now))?
        };
        outcome(
            result,
            &if result == Outcome::NoSuchRole {
                role.to_owned()
            } else {
                subject.to_string()
            },
        )?;
        self.note_roles_changed(subject).await?;
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
        subject: Option<Uuid>,
    ) -> Result<(Vec<String>, Vec<String>), AuthError> {
        let subject = subject.unwrap_or(caller.subject_id);
        if subject != caller.subject_id {
            self.require(caller, ROLES_ADMIN, None)?;
        }
        let roles = platform::sql!(read(&self.db), RoleSql::subject_roles(subject))?
            .ok_or_else(|| AuthError::NotFound(format!("no user or service account {subject}")))?;
        let permissions = authz::permissions_of(&roles, &self.authz.definitions());
        Ok((roles, permissions))
    }
}
