//! The Auth Service's use cases: register, log in, refresh, log out, validate.
//! Transport-free: handlers parse requests into domain types and call these.

use crate::crypto::hasher::PasswordHasher;
use crate::crypto::jwt::{AccessClaims, TokenAuthority, TokenError};
use crate::crypto::keys::{KeyRing, KeySet};
use crate::crypto::refresh;
use crate::domain::{DisplayName, Email, NewPassword, Password};
use crate::error::AuthError;
use crate::revocation::RevocationSet;
use crate::storage::{AuthStore, NewIdentity, NewRefreshToken, NewSession, Rotation};
use chrono::{DateTime, Duration, Utc};
use platform::clock::SharedClock;
use platform::outbox::OutboxEvent;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// The role every new identity holds.
pub const DEFAULT_ROLE: &str = "user";

/// A session's tokens, as Login and RefreshToken return them.
#[derive(Debug)]
pub struct IssuedTokens {
    pub access_token: String,
    pub refresh_token: SecretString,
    pub expires_in: i64,
    pub session_id: Uuid,
    pub user_id: Uuid,
    pub refresh_expires_at: DateTime<Utc>,
}

/// The Auth Service's core, shared by every handler.
#[derive(Debug)]
pub struct Authenticator {
    pub(crate) store: Arc<dyn AuthStore>,
    pub(crate) hasher: PasswordHasher,
    pub(crate) keys: Arc<KeyRing>,
    pub(crate) tokens: TokenAuthority,
    pub(crate) revoked: Arc<RevocationSet>,
    pub(crate) clock: SharedClock,
    pub(crate) refresh_ttl: Duration,
    /// Wakes the outbox relay when an event is written.
    pub(crate) outbox_wake: Arc<Notify>,
}

/// The event the User Service receives for every registration.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct UserRegistered {
    pub user_id: Uuid,
    pub email: String,
    pub display_name: String,
}

/// The outbox topic of [`UserRegistered`].
pub const USER_REGISTERED: &str = "user.registered";

impl Authenticator {
    /// Creates an identity; its id is returned.
    #[tracing::instrument(skip_all)]
    pub async fn register(
        &self,
        email: Email,
        password: NewPassword,
        display_name: DisplayName,
    ) -> Result<Uuid, AuthError> {
        // Registration reveals whether an email exists by design (ALREADY_EXISTS),
        // so checking first only saves a hash; the unique key still decides races.
        if self
            .store
            .identity_by_email(email.as_str())
            .await?
            .is_some()
        {
            return Err(AuthError::EmailTaken);
        }
        let password_hash = self.hasher.hash(password.secret()).await?;
        let id = Uuid::now_v7();
        let now = self.clock.now();
        let identity = NewIdentity {
            id,
            email: email.as_str().to_owned(),
            display_name: display_name.as_str().to_owned(),
            password_hash,
            roles: vec![DEFAULT_ROLE.to_owned()],
            created_at: now,
        };
        let payload = serde_json::to_string(&UserRegistered {
            user_id: id,
            email: identity.email.clone(),
            display_name: identity.display_name.clone(),
        })
        .map_err(|e| AuthError::Internal(e.to_string()))?;
        let event = OutboxEvent::new(USER_REGISTERED, id, payload, now);
        self.store
            .insert_identity(&identity, &event)
            .await
            .map_err(|e| match e {
                crate::storage::StoreError::EmailTaken => AuthError::EmailTaken,
                other => other.into(),
            })?;
        self.outbox_wake.notify_one();
        tracing::info!(user_id = %id, "identity registered");
        Ok(id)
    }

    /// Checks credentials and opens a session.
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, email: Email, password: Password) -> Result<IssuedTokens, AuthError> {
        let identity = self.store.identity_by_email(email.as_str()).await?;
        let stored = identity.as_ref().map(|i| i.password_hash.as_str());
        let verified = self.hasher.verify(password.secret(), stored).await?;
        let Some(identity) = identity.filter(|i| verified.matches && !i.disabled) else {
            tracing::info!("login refused");
            return Err(AuthError::InvalidCredentials);
        };
        if verified.needs_rehash {
            self.rehash(identity.id, password.secret()).await;
        }
        let now = self.clock.now();
        let session = NewSession {
            id: Uuid::now_v7(),
            user_id: identity.id,
            created_at: now,
        };
        let minted = refresh::mint().map_err(|_| AuthError::Internal("no randomness".into()))?;
        let token = self.refresh_record(minted.hash, session.id, now);
        self.store.insert_session(&session, &token).await?;
        tracing::info!(user_id = %identity.id, session_id = %session.id, "login succeeded");
        self.issue(identity.id, session.id, minted.token, token.expires_at, now)
            .await
    }

    /// Exchanges a refresh token for new tokens; a reused one revokes its session.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, presented: &SecretString) -> Result<IssuedTokens, AuthError> {
        let hash = refresh::parse(presented).ok_or(AuthError::InvalidRefreshToken)?;
        let now = self.clock.now();
        let minted = refresh::mint().map_err(|_| AuthError::Internal("no randomness".into()))?;
        let next = self.refresh_record(minted.hash, Uuid::nil(), now);
        match self.store.rotate_refresh_token(&hash, &next, now).await? {
            Rotation::Rotated {
                session_id,
                user_id,
            } => {
                self.issue(user_id, session_id, minted.token, next.expires_at, now)
                    .await
            }
            Rotation::Reused { session_id } => {
                self.revoked.insert(session_id, now);
                tracing::warn!(%session_id, "refresh token reused; session revoked");
                Err(AuthError::RefreshTokenReused)
            }
            Rotation::Dead | Rotation::Unknown => Err(AuthError::InvalidRefreshToken),
        }
    }

    /// Revokes the session of a refresh token. Unknown tokens are ignored, so that
    /// logout is idempotent and reveals nothing.
    #[tracing::instrument(skip_all)]
    pub async fn logout(&self, presented: &SecretString) -> Result<(), AuthError> {
        let Some(hash) = refresh::parse(presented) else {
            return Ok(());
        };
        let now = self.clock.now();
        if let Some(session_id) = self
            .store
            .revoke_session_by_refresh_token(&hash, now, "logout")
            .await?
        {
            self.revoked.insert(session_id, now);
            tracing::info!(%session_id, "session revoked by logout");
        }
        Ok(())
    }

    /// Disables an identity and revokes its sessions everywhere (a deleted user).
    #[tracing::instrument(skip_all, fields(user_id = %user_id))]
    pub async fn disable_user(&self, user_id: Uuid, reason: &str) -> Result<(), AuthError> {
        let now = self.clock.now();
        let revoked = self.store.disable_identity(user_id, now, reason).await?;
        for session_id in &revoked {
            self.revoked.insert(*session_id, now);
        }
        tracing::info!(sessions = revoked.len(), reason, "identity disabled");
        Ok(())
    }

    /// Checks an access token without touching the database.
    pub fn validate(&self, token: &str) -> Result<AccessClaims, AuthError> {
        let keys = self.key_set()?;
        let claims = self.tokens.verify(&keys, token, self.clock.now())?;
        if self.revoked.is_revoked(&claims.sid) {
            return Err(TokenError::Revoked.into());
        }
        Ok(claims)
    }

    /// The current key set (for the JWKS).
    pub fn key_set(&self) -> Result<Arc<KeySet>, AuthError> {
        self.keys
            .keys()
            .ok_or_else(|| AuthError::Internal("signing keys not loaded".into()))
    }

    async fn issue(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        refresh_token: SecretString,
        refresh_expires_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<IssuedTokens, AuthError> {
        let roles = self.store.roles_of(user_id).await?;
        let keys = self.key_set()?;
        let (access_token, claims) = self
            .tokens
            .issue(&keys, user_id, session_id, roles, now)
            .map_err(|e| AuthError::Internal(format!("signing failed: {e}")))?;
        Ok(IssuedTokens {
            access_token,
            refresh_token,
            expires_in: claims.exp - claims.iat,
            session_id,
            user_id,
            refresh_expires_at,
        })
    }

    fn refresh_record(
        &self,
        hash: [u8; 32],
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> NewRefreshToken {
        NewRefreshToken {
            hash,
            session_id,
            created_at: now,
            expires_at: now + self.refresh_ttl,
        }
    }

    /// Upgrades a hash made with older parameters; a failure only costs the upgrade.
    async fn rehash(&self, user_id: Uuid, password: &SecretString) {
        let result = match self.hasher.hash(password).await {
            Ok(hash) => self
                .store
                .set_password_hash(user_id, &hash, self.clock.now())
                .await
                .map_err(AuthError::from),
            Err(e) => Err(e.into()),
        };
        if let Err(e) = result {
            tracing::warn!(%user_id, error = %e, "password re-hash failed");
        }
    }
}
