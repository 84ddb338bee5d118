//! Administering identities: the first administrator, and disabling (a deleted
//! user, for good) and enabling an identity everywhere.

use super::changes::CredentialChange;
use super::{Credentials, EndsSql, IdentitySql};
use crate::access::authz::Principal;
use crate::access::{RoleName, RoleSql};
use crate::audit::ClientInfo;
use crate::context::{ADMIN_ROLE, DEFAULT_ROLE};
use crate::domain::{DisplayName, Email, NewPassword};
use crate::error::AuthError;
use crate::signals::{Signal, SignalKind, SignalSql};
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
        let revoked = platform::sql!(
            &mut tx,
            EndsSql::end_artefacts(id, CredentialChange::PasswordReset, None, now)
        )?;
        let admin = RoleName::builtin(ADMIN_ROLE);
        platform::sql!(&mut tx, RoleSql::set_role(id.into(), &admin, true, now))?;
        let roles = platform::sql!(&mut tx, RoleSql::roles_of(id.into()))?;
        let signal = Signal::roles_changed(id.into(), &roles, now);
        platform::sql!(&mut tx, SignalSql::emit(&[signal]))?;
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

    /// Disables an identity and revokes its sessions everywhere; `purged`:
    /// for good (a deleted user).
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn disable_user(
        &self,
        caller: &Principal,
        user_id: UserId,
        reason: &str,
        purged: bool,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require(caller, USERS_DISABLE, None)?;
        let now = self.clock.now();
        let change = if purged {
            CredentialChange::AccountPurged
        } else {
            CredentialChange::AccountDisabled
        };
        let mut tx = self.db.write().await?;
        // Disabling is idempotent (the User Service's relay retries), and so
        // is its event: a repeat of what already holds says nothing new.
        let Some((disabled, was_purged)) =
            platform::sql!(&mut tx, IdentitySql::lock_state(user_id))?
        else {
            return Ok(());
        };
        if disabled && (was_purged || !purged) {
            return Ok(());
        }
        platform::sql!(&mut tx, IdentitySql::disable(user_id, purged, now))?;
        let revoked = platform::sql!(&mut tx, EndsSql::end_artefacts(user_id, change, None, now))?;
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
                .detail("purged", purged)
                .detail("sessions_revoked", revoked.len()),
        )
        .await;
        Ok(())
    }

    /// Lets a disabled identity log in again; its ended sessions stay ended.
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn enable_user(
        &self,
        caller: &Principal,
        user_id: UserId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require(caller, USERS_DISABLE, None)?;
        let now = self.clock.now();
        let mut tx = self.db.write().await?;
        match platform::sql!(&mut tx, IdentitySql::lock_state(user_id))? {
            None => return Err(AuthError::NotFound(format!("no user {user_id}"))),
            Some((_, true)) => {
                return Err(AuthError::FailedPrecondition(
                    "the user was deleted: a deleted account cannot be enabled".into(),
                ));
            }
            Some((false, false)) => return Ok(()),
            Some((true, false)) => {}
        }
        platform::sql!(&mut tx, IdentitySql::enable(user_id, now))?;
        let signal = Signal::account(SignalKind::AccountEnabled, user_id.into(), None, now);
        platform::sql!(&mut tx, SignalSql::emit(&[signal]))?;
        tx.commit().await?;
        tracing::info!("identity enabled");
        self.audit(
            self.event("user.enabled", client)
                .actor(caller.subject_id)
                .subject(user_id),
        )
        .await;
        Ok(())
    }
}
