//! Roles, role assignments, service accounts and their tokens, and disabling a
//! deleted user. Every change is audited and takes effect at once on this
//! replica (and on the others within their poll interval).

use super::{ADMIN_ROLE, Authenticator, DEFAULT_ROLE, OWN_ACCOUNT, SERVICE_ROLE};
use crate::audit::ClientInfo;
use crate::authz::{self, Principal, SubjectKind};
use crate::domain::{DisplayName, Email, NewPassword};
use crate::error::AuthError;
use crate::storage::{Outcome, RoleRecord, ServiceAccountRecord, SubjectChange};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::ids::{ServiceAccountId, SessionId, UserId};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use uuid::Uuid;

const ROLES_ADMIN: &str = "roles:admin";
const ACCOUNTS_ADMIN: &str = "service_accounts:admin";
const USERS_DISABLE: &str = "users:disable";

fn random_token(bytes: usize) -> Result<String, AuthError> {
    let mut raw = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut raw)
        .map_err(|_| AuthError::Internal("no randomness".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(raw))
}

fn secret_hash(secret: &str) -> Vec<u8> {
    digest(&SHA256, secret.as_bytes()).as_ref().to_vec()
}

fn outcome(o: Outcome, what: &str) -> Result<(), AuthError> {
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

impl Authenticator {
    async fn reload_definitions(&self) -> Result<(), AuthError> {
        let roles = self.stores.roles.list_roles().await?;
        self.authz
            .set_definitions(roles.into_iter().map(|r| (r.name, r.permissions)).collect());
        Ok(())
    }

    async fn note_roles_changed(&self, subject: Uuid) -> Result<(), AuthError> {
        let roles = self
            .stores
            .roles
            .subject_roles(subject)
            .await?
            .unwrap_or_default();
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
        Ok(self.stores.roles.list_roles().await?)
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
            self.stores.roles.create_role(&role).await?,
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
        let role = self
            .stores
            .roles
            .update_role(name, description, permissions, self.clock.now())
            .await?
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
            self.stores
                .roles
                .delete_role(name, self.clock.now())
                .await?,
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
            self.stores.roles.assign_role(subject, role, now).await?
        } else {
            self.stores.roles.unassign_role(subject, role, now).await?
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
        let roles = self
            .stores
            .roles
            .subject_roles(subject)
            .await?
            .ok_or_else(|| AuthError::NotFound(format!("no user or service account {subject}")))?;
        let permissions = authz::permissions_of(&roles, &self.authz.definitions());
        Ok((roles, permissions))
    }

    /// Creates a service account; its secret is returned once.
    pub async fn create_service_account(
        &self,
        caller: Option<&Principal>,
        name: String,
        roles: Vec<String>,
        client: &ClientInfo,
    ) -> Result<(ServiceAccountRecord, SecretString), AuthError> {
        if let Some(caller) = caller {
            self.require(caller, ACCOUNTS_ADMIN, None)?;
        }
        let secret = random_token(32)?;
        let account = ServiceAccountRecord {
            id: ServiceAccountId::generate(),
            client_id: format!("sa-{}", random_token(12)?),
            secret_hash: secret_hash(&secret),
            created_at: self.clock.now(),
            disabled: false,
            roles,
            name,
        };
        match self
            .stores
            .accounts
            .insert_service_account(&account)
            .await?
        {
            Outcome::NoSuchRole => {
                return Err(AuthError::NotFound(format!(
                    "no such role among {:?}",
                    account.roles
                )));
            }
            other => outcome(other, &format!("service account {}", account.name))?,
        }
        let event = self
            .event("service_account.created", client)
            .subject(account.id)
            .detail("name", &account.name);
        self.audit(match caller {
            Some(c) => event.actor(c.subject_id),
            None => event.actor("command-line"),
        })
        .await;
        Ok((account, SecretString::from(secret)))
    }

    pub async fn list_service_accounts(
        &self,
        caller: &Principal,
    ) -> Result<Vec<ServiceAccountRecord>, AuthError> {
        self.require(caller, ACCOUNTS_ADMIN, None)?;
        Ok(self.stores.accounts.list_service_accounts().await?)
    }

    pub async fn delete_service_account(
        &self,
        caller: &Principal,
        id: ServiceAccountId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require(caller, ACCOUNTS_ADMIN, None)?;
        let now = self.clock.now();
        if !self
            .stores
            .accounts
            .disable_service_account(id, now)
            .await?
        {
            return Err(AuthError::NotFound(format!(
                "no active service account {id}"
            )));
        }
        // Its tokens carry its id as their session: revoke them like a session.
        self.revoked.insert(SessionId::from_uuid(id.uuid()), now);
        self.authz.note(SubjectChange {
            subject_id: id.uuid(),
            changed_at: now,
            roles: vec![],
            disabled: true,
        });
        self.audit(
            self.event("service_account.deleted", client)
                .actor(caller.subject_id)
                .subject(id),
        )
        .await;
        Ok(())
    }

    /// The client-credentials grant: a short-lived token for a service account.
    pub async fn issue_service_token(
        &self,
        client_id: &str,
        secret: &SecretString,
        client: &ClientInfo,
    ) -> Result<(String, i64), AuthError> {
        let account = self
            .stores
            .accounts
            .service_account_by_client_id(client_id)
            .await?;
        let presented = secret_hash(secret.expose_secret());
        // Compare against a fixed hash for unknown ids so both paths do the same work.
        let expected = account
            .as_ref()
            .map_or_else(|| vec![0u8; 32], |a| a.secret_hash.clone());
        let matches: bool = presented.ct_eq(&expected).into();
        let Some(account) = account.filter(|_| matches) else {
            self.audit(
                self.event("service_token.refused", client)
                    .subject(client_id),
            )
            .await;
            return Err(AuthError::Unauthenticated(
                "invalid client id or secret".into(),
            ));
        };
        let (token, expires_in) = self
            .sign(
                account.id.uuid(),
                SessionId::from_uuid(account.id.uuid()),
                SubjectKind::Service,
                self.clock.now(),
            )
            .await?;
        self.audit(
            self.event("service_token.issued", client)
                .actor(account.id)
                .subject(account.id),
        )
        .await;
        Ok((token, expires_in))
    }

    /// Makes sure the Auth Service's own account exists (it signs the relay's tokens).
    pub async fn ensure_own_account(&self) -> Result<(), AuthError> {
        if self
            .stores
            .accounts
            .service_account_by_name(OWN_ACCOUNT)
            .await?
            .is_none()
        {
            // The secret is thrown away: this account's tokens are minted in-process.
            let created = self
                .create_service_account(
                    None,
                    OWN_ACCOUNT.into(),
                    vec![SERVICE_ROLE.into()],
                    &ClientInfo::default(),
                )
                .await;
            match created {
                Ok(_) | Err(AuthError::AlreadyExists(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

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
