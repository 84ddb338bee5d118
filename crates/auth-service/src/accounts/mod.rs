//! Service accounts and their tokens (the client-credentials grant).

mod model;
mod sql;

pub use model::*;
pub use sql::AccountSql;

use crate::access::authz::{self, Principal};
use crate::access::{RoleName, RoleSql, SubjectChange};
use crate::audit::ClientInfo;
use crate::context::{OWN_ACCOUNT, SERVICE_ROLE};
use crate::error::{AuthError, INVALID_CLIENT};
use crate::signals::{Signal, SignalKind, SignalSql};
use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use platform::ids::{ClientId, ServiceAccountId, SessionId};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;

const ACCOUNTS_ADMIN: &str = "service_accounts:admin";
/// The permission RFC 7662 introspection needs.
pub const INTROSPECT: &str = "tokens:introspect";

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

/// A service token's session is its account, so deleting the account revokes
/// its tokens like a session.
pub(crate) fn account_session(id: ServiceAccountId) -> SessionId {
    SessionId::from_uuid(id.uuid())
}

crate::context::use_cases! {
    /// Service accounts and their client credentials.
    Accounts
}

impl Accounts<'_> {
    /// Creates a service account holding existing roles; its secret is
    /// returned once.
    pub async fn create_service_account(
        &self,
        caller: Option<&Principal>,
        new: NewServiceAccount,
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
            roles: new.roles,
            name: new.name,
        };
        let mut tx = self.db.write().await?;
        for role in &account.roles {
            if platform::sql!(&mut tx, RoleSql::lock_role(role))?.is_none() {
                let roles: Vec<_> = account.roles.iter().map(RoleName::as_str).collect();
                return Err(AuthError::NotFound(format!("no such role among {roles:?}")));
            }
        }
        if !platform::sql!(&mut tx, AccountSql::insert_service_account(&account))? {
            let taken = format!("service account {} already exists", account.name);
            return Err(AuthError::AlreadyExists(taken));
        }
        tx.commit().await?;
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
        Ok(platform::sql!(
            read(&self.db),
            AccountSql::list_service_accounts()
        )?)
    }

    pub async fn delete_service_account(
        &self,
        caller: &Principal,
        id: ServiceAccountId,
        client: &ClientInfo,
    ) -> Result<(), AuthError> {
        self.require(caller, ACCOUNTS_ADMIN, None)?;
        let now = self.clock.now();
        let mut tx = self.db.write().await?;
        if !platform::sql!(&mut tx, AccountSql::disable_service_account(id, now))? {
            return Err(AuthError::NotFound(format!(
                "no active service account {id}"
            )));
        }
        let signal = Signal::account(SignalKind::AccountPurged, id.into(), None, now);
        platform::sql!(&mut tx, SignalSql::emit(&[signal]))?;
        tx.commit().await?;
        // Its tokens carry its id as their session: revoke them like a session.
        self.revoked.insert(account_session(id), now);
        self.authz.note(SubjectChange {
            subject_id: id.into(),
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

    /// The active service account these client credentials belong to. The id
    /// is a [`ClientId`] already: a malformed one never reaches the database
    /// or the audit log.
    pub(crate) async fn authenticate_client(
        &self,
        client_id: &ClientId,
        secret: &SecretString,
        client: &ClientInfo,
    ) -> Result<ServiceAccountRecord, AuthError> {
        let (throttle, now) = (self.throttle(), self.clock.now());
        let address = client.address.as_deref();
        // A throttled address is refused before any lookup, and unaudited:
        // refusals cannot be made to fill the trail.
        if let Some(wait) = throttle.client_wait(address, now).await? {
            return Err(AuthError::Throttled(wait));
        }
        let account = platform::sql!(
            read(&self.db),
            AccountSql::service_account_by_client_id(client_id.as_str())
        )?;
        let presented = secret_hash(secret.expose_secret());
        // Compare against a fixed hash for unknown ids so both paths do the same work.
        let expected = account
            .as_ref()
            .map_or_else(|| vec![0u8; 32], |a| a.secret_hash.clone());
        let matches: bool = presented.ct_eq(&expected).into();
        match account.filter(|_| matches) {
            Some(account) => Ok(account),
            None => {
                throttle.client_refused(address, now).await?;
                self.audit(
                    self.event("service_token.refused", client)
                        .subject(client_id),
                )
                .await;
                Err(AuthError::Unauthenticated(INVALID_CLIENT.into()))
            }
        }
    }

    /// RFC 7662 token introspection for a service account holding
    /// `tokens:introspect`: the token's principal if it is valid right now
    /// (signature, expiry, revocation, current roles), `None` otherwise.
    pub async fn introspect(
        &self,
        client_id: &ClientId,
        secret: &SecretString,
        token: &str,
        client: &ClientInfo,
    ) -> Result<Option<Principal>, AuthError> {
        let account = self.authenticate_client(client_id, secret, client).await?;
        let permissions = authz::permissions_of(&account.roles, &self.authz.definitions());
        if !permissions.iter().any(|p| p.grants(INTROSPECT)) {
            return Err(AuthError::Unauthenticated(format!(
                "this client lacks the {INTROSPECT} permission"
            )));
        }
        match self.validate(token) {
            Ok(principal) => Ok(Some(principal)),
            Err(e) if e.is_service_fault() => Err(e),
            Err(_) => Ok(None),
        }
    }

    /// The client-credentials grant: a short-lived token for a service account.
    pub async fn issue_service_token(
        &self,
        client_id: &ClientId,
        secret: &SecretString,
        client: &ClientInfo,
    ) -> Result<(String, i64), AuthError> {
        let account = self.authenticate_client(client_id, secret, client).await?;
        let (token, expires_in) = self.sign_service(account.id).await?;
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
        let own = platform::sql!(
            read(&self.db),
            AccountSql::service_account_by_name(OWN_ACCOUNT)
        )?;
        if own.is_some() {
            return Ok(());
        }
        // The secret is thrown away: this account's tokens are minted in-process.
        let roles = vec![RoleName::builtin(SERVICE_ROLE)];
        let own = NewServiceAccount {
            name: OWN_ACCOUNT.into(),
            roles,
        };
        match self
            .create_service_account(None, own, &ClientInfo::default())
            .await
        {
            Ok(_) | Err(AuthError::AlreadyExists(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
