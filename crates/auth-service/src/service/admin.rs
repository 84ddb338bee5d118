//! Administering identities: the first administrator, and disabling a deleted
//! user everywhere.

use super::{ADMIN_ROLE, Authenticator, DEFAULT_ROLE};
use crate::audit::ClientInfo;
use crate::authz::Principal;
use crate::domain::{DisplayName, Email, NewPassword};
use crate::error::AuthError;
use platform::ids::UserId;

const USERS_DISABLE: &str = "users:disable";

impl Authenticator {
    /// The first administrator, from the command line: gives an existing identity
    /// with this email the `admin` role, or registers one with the password that
    /// `password` supplies (asked for only then).
    pub async fn create_admin(
        &self,
        email: Email,
        display_name: DisplayName,
        password: impl FnOnce() -> anyhow::Result<NewPassword>,
    ) -> anyhow::Result<UserId> {
        let client = ClientInfo::default();
        if let Some(existing) = self
            .stores
            .identities
            .identity_by_email(email.as_str())
            .await?
        {
            let now = self.clock.now();
            self.stores
                .roles
                .assign_role(existing.id.uuid(), ADMIN_ROLE, now)
                .await?;
            self.audit(
                self.event("role.assigned", &client)
                    .actor("command-line")
                    .subject(existing.id)
                    .detail("role", ADMIN_ROLE),
            )
            .await;
            return Ok(existing.id);
        }
        let roles = [DEFAULT_ROLE, ADMIN_ROLE];
        Ok(self
            .register_with_roles(email, password()?, display_name, &roles, &client)
            .await?)
    }

    /// Disables an identity and revokes its sessions everywhere (a deleted user).
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn disable_user(
        &self,
        caller: &Principal,
        user_id: UserId,
        reason: &str,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require(caller, USERS_DISABLE, None)?;
        let now = self.clock.now();
        let revoked = self
            .stores
            .identities
            .disable_identity(user_id, now, reason)
            .await?;
        for session_id in &revoked {
            self.revoked.insert(*session_id, now);
        }
        tracing::info!(sessions = revoked.len(), reason, "identity disabled");
        self.audit(
            self.event("user.disabled", client)
                .actor(caller.subject_id)
                .subject(user_id)
                .detail("reason", reason)
                .detail("sessions_revoked", revoked.len()),
        )
        .await;
        Ok(())
    }
}
