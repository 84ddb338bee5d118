//! Identities and their credentials: registration, lookups, password changes and
//! disabling, each with its effect on sessions in the same transaction.

use super::model::*;
use crate::credentials::Ends;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::ids::{SessionId, UserId};
use platform::outbox::{OutboxEvent, SqlOutbox};
use platform::sql::{Timestamp, UniqueKey};

pub(crate) const EMAIL_KEY: UniqueKey = UniqueKey {
    name: "identities_email_key",
    columns: "identities.email",
};

const IDENTITY: &str = "SELECT id, email, display_name, password_hash, email_verified,
                               disabled_at IS NOT NULL AS disabled, credential_version
                        FROM identities";

/// Identities and credentials.
pub struct IdentitySql<DB>(std::marker::PhantomData<DB>);

platform::generic_store! {
    impl<DB> IdentitySql<DB> {
        /// Sets the password hash if it is still `expected`; true if it was.
        pub async fn replace_hash(
            c: &mut DB::Connection,
            user_id: UserId,
            expected: &str,
            hash: &str,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE identities SET password_hash = $3, updated_at = $4
                 WHERE id = $1 AND password_hash = $2",
            )
            .bind(user_id)
            .bind(expected)
            .bind(hash)
            .bind(Timestamp(now))
            .execute(c)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }
    }
}

platform::generic_store! {
        impl<DB> IdentitySql<DB> {
        /// Inserts an identity, its roles, its first verification token and
        /// `events` (for the outbox); `EmailTaken` when the email exists.
        pub async fn insert_identity(
            c: &mut DB::Connection,
            identity: &NewIdentity,
            events: &[OutboxEvent],
        ) -> Result<(), StoreError> {
            let inserted = sqlx::query(
                "INSERT INTO identities (id, email, display_name, password_hash, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $5)",
            )
            .bind(identity.id)
            .bind(&identity.email)
            .bind(&identity.display_name)
            .bind(&identity.password_hash)
            .bind(Timestamp(identity.created_at))
            .execute(&mut *c)
            .await;
            match inserted {
                Err(e) if DB::violates(&e, EMAIL_KEY) => return Err(StoreError::EmailTaken),
                other => other?,
            };
            for role in &identity.roles {
                sqlx::query("INSERT INTO subject_roles (subject_id, role) VALUES ($1, $2)")
                    .bind(identity.id)
                    .bind(role)
                    .execute(&mut *c)
                    .await?;
            }
            if let Some(token) = &identity.verification {
                crate::recovery::TokenSql::<DB>::insert_token(&mut *c, token).await?;
            }
            SqlOutbox::<DB>::insert_all(&mut *c, events).await?;
            Ok(())
        }

        /// The identity with this normalised email.
        pub async fn identity_by_email(
            c: &mut DB::Connection,
            email: &str,
        ) -> Result<Option<IdentityRecord>, StoreError> {
            Ok(sqlx::query_as(&format!("{IDENTITY} WHERE email = $1"))
                .bind(email)
                .fetch_optional(&mut *c)
                .await?)
        }

        /// The identity with this id.
        pub async fn identity_by_id(
            c: &mut DB::Connection, id: UserId) -> Result<Option<IdentityRecord>, StoreError> {
            Ok(sqlx::query_as(&format!("{IDENTITY} WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *c)
                .await?)
        }

        /// Replaces the password hash if it is still `expected` (a re-hash with new
        /// parameters never overwrites a password changed meanwhile); true if replaced.
        pub async fn rehash_password(
            c: &mut DB::Connection,
            user_id: UserId,
            expected: &str,
            hash: &str,
            now: DateTime<Utc>,
        ) -> Result<bool, StoreError> {
            Self::replace_hash(&mut *c, user_id, expected, hash, now).await
        }

        /// Sets a new password hash if the current one is still `expected`, ends
        /// what `ends` names (`current` is the session that asked) and records the
        /// `notice` events; returns the sessions revoked, or `None` when the
        /// password changed meanwhile (nothing written).
        pub async fn change_password(
            c: &mut DB::Connection,
            (user_id, current): (UserId, Option<SessionId>),
            expected: &str,
            hash: &str,
            ends: &Ends,
            notice: &[OutboxEvent],
            now: DateTime<Utc>,
        ) -> Result<Option<Vec<SessionId>>, StoreError> {
            if !Self::replace_hash(&mut *c, user_id, expected, hash, now).await? {
                return Ok(None);
            }
            let revoked = crate::credentials::EndsSql::<DB>::end_artefacts(&mut *c, user_id, ends, current, now).await?;
            SqlOutbox::<DB>::insert_all(&mut *c, notice).await?;
            Ok(Some(revoked))
        }

        /// Disables an identity and ends what `ends` names; returns the sessions
        /// revoked now. Disabling twice changes nothing.
        pub async fn disable_identity(
            c: &mut DB::Connection,
            user_id: UserId,
            ends: &Ends,
            now: DateTime<Utc>,
        ) -> Result<Vec<SessionId>, StoreError> {
            sqlx::query(
                "UPDATE identities SET disabled_at = $2, updated_at = $2
                 WHERE id = $1 AND disabled_at IS NULL",
            )
            .bind(user_id)
            .bind(Timestamp(now))
            .execute(&mut *c)
            .await?;
            let revoked = crate::credentials::EndsSql::<DB>::end_artefacts(&mut *c, user_id, ends, None, now).await?;
            Ok(revoked)
        }
    }
}
