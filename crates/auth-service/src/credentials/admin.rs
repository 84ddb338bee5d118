//! Administering identities: the first administrator, and disabling a deleted
//! user everywhere.

use super::changes::CredentialChange;
use super::{Credentials, EndsSql, IdentitySql};
use crate::access::authz::Principal;
use crate::access::{RoleName, RoleSql};
use crate::audit::ClientInfo;
use crate::context::{ADMIN_ROLE, DEFAULT_ROLE};
use crate::domain::{DisplayName, Email, NewPassword};
use crate::error::AuthError;
use platform::ids::UserId;

const USERS_DISABLE: &str = "users:disable";

impl Credentials<'_> {
    /// The first administrator, from the command line: registers one with the
    /// password that `password` supplies. An identity that already has this
    /// email is someone's account (perhaps a squatter's): it is refused unless
    /// `promote`, and then its password is reset to the given one and every
    /// session it had ends before it gets the `admin` role.
    pub async fn create_admin(
        &self,
        email: Email,
        display_name: DisplayName,
        promote: bool,
        password: impl FnOnce() -> anyhow::Result<NewPassword>,
    ) -> anyhow::Result<UserId> {
        let client = ClientInfo::default();
        let Some(existing) = platform::sql!(
            read(&self.db),
            IdentitySql::identity_by_email(email.as_str())
        )?
        else {
            let roles = [DEFAULT_ROLE, ADMIN_ROLE];
            return Ok(self
                .register_with_roles(email, password()?, display_name, &roles, &client)
                .await?);
        };
        if !promote {
            anyhow::bail!(
                "{} is already registered; to make that account the administrator, run again \
                 with --promote: its password is then reset to the one given and its sessions end",
                email.as_str()
            );
        }
        let hash = self.hasher.hash(password()?.secret()).await?;
        let now = self.clock.now();
        let (id, old) = (existing.id, &existing.password_hash);
        let mut tx = self.db.write().await?;
        if !platform::sql!(&mut tx, IdentitySql::replace_hash(id, old, &hash, now))? {
            anyhow::bail!("the account's password changed meanwhile; run again");
        }
        let ends = CredentialChange::PasswordReset.ends();
        let revoked = platform::sql!(&mut tx, EndsSql::end_artefacts(id, &ends, None, now))?;
        let admin = RoleName::builtin(ADMIN_ROLE);
        platform::sql!(&mut tx, RoleSql::set_role(id.into(), &admin, true, now))?;
        tx.commit().await?;
        for session in &revoked {
            self.revoked.insert(*session, now);
        }
        self.audit(
            self.event("user.promoted", &client)
                .actor("command-line")
                .subject(existing.id)
                .detail("role", ADMIN_ROLE)
                .detail("sessions_revoked", revoked.len()),
        )
        .await;
        Ok(existing.id)
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
        let mut tx = self.db.write().await?;
        platform::sql!(&mut tx, IdentitySql::disable(user_id, now))?;
        let ends = CredentialChange::AccountDisabled.ends();
        let revoked = platform::sql!(&mut tx, EndsSql::end_artefacts(user_id, &ends, None, now))?;
        tx.commit().await?;
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
