//! Identities and their credentials: registration, lookups, password changes and
//! disabling, each with its effect on sessions in the same transaction.

use super::model::*;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::ids::UserId;
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
        /// Sets the password hash if it is still `expected` (a re-hash or a change
        /// never overwrites a password changed meanwhile); true if it was.
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
        /// Marks the identity's address verified.
        pub async fn mark_verified(
            c: &mut DB::Connection,
            user_id: UserId,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE identities SET email_verified = TRUE, updated_at = $2 WHERE id = $1",
            )
            .bind(user_id)
            .bind(Timestamp(now))
            .execute(c)
            .await?;
            Ok(())
        }

        /// Moves the identity to a verified `email` (`EmailTaken` if another
        /// identity has it).
        pub async fn move_to(
            c: &mut DB::Connection,
            user_id: UserId,
            email: &str,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            let moved = sqlx::query(
                "UPDATE identities SET email = $2, email_verified = TRUE, updated_at = $3
                 WHERE id = $1",
            )
            .bind(user_id)
            .bind(email)
            .bind(Timestamp(now))
            .execute(c)
            .await;
            match moved {
                Err(e) if DB::violates(&e, EMAIL_KEY) => Err(StoreError::EmailTaken),
                other => other.map(drop).map_err(Into::into),
            }
        }

        /// Sets the identity's password hash.
        pub async fn set_password(
            c: &mut DB::Connection,
            user_id: UserId,
            hash: &str,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query("UPDATE identities SET password_hash = $2, updated_at = $3 WHERE id = $1")
                .bind(user_id)
                .bind(hash)
                .bind(Timestamp(now))
                .execute(c)
                .await?;
            Ok(())
        }

        /// Puts the identity back at a verified `email` with password `hash`
        /// (`EmailTaken` if another identity has the address).
        pub async fn restore(
            c: &mut DB::Connection,
            user_id: UserId,
            email: &str,
            hash: &str,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            Self::move_to(&mut *c, user_id, email, now).await?;
            Self::set_password(c, user_id, hash, now).await
        }

        /// Inserts an identity with its roles; `EmailTaken` when the email exists.
        pub async fn insert_identity(
            c: &mut DB::Connection,
            identity: &NewIdentity,
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
            c: &mut DB::Connection,
            id: UserId,
        ) -> Result<Option<IdentityRecord>, StoreError> {
            Ok(sqlx::query_as(&format!("{IDENTITY} WHERE id = $1"))
                .bind(id)
                .fetch_optional(&mut *c)
                .await?)
        }

        /// Disables an identity; disabling twice changes nothing.
        pub async fn disable(
            c: &mut DB::Connection,
            user_id: UserId,
            purged: bool,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE identities SET disabled_at = COALESCE(disabled_at, $2), updated_at = $2,
                 purged_at = CASE WHEN $3 THEN COALESCE(purged_at, $2) ELSE purged_at END
                 WHERE id = $1",
            )
            .bind(user_id)
            .bind(Timestamp(now))
            .bind(purged)
            .execute(&mut *c)
            .await?;
            Ok(())
        }

        /// Whether the identity is (disabled, purged), if it exists; locks it.
        pub async fn lock_state(
            c: &mut DB::Connection,
            user_id: UserId,
        ) -> Result<Option<(bool, bool)>, StoreError> {
            Ok(sqlx::query_as(&format!(
                "SELECT disabled_at IS NOT NULL, purged_at IS NOT NULL
                 FROM identities WHERE id = $1{}",
                DB::FOR_UPDATE
            ))
            .bind(user_id)
            .fetch_optional(&mut *c)
            .await?)
        }

        /// Lets a disabled identity log in again.
        pub async fn enable(
            c: &mut DB::Connection,
            user_id: UserId,
            now: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query(
                "UPDATE identities SET disabled_at = NULL, updated_at = $2
                 WHERE id = $1 AND purged_at IS NULL",
            )
            .bind(user_id)
            .bind(Timestamp(now))
            .execute(&mut *c)
            .await?;
            Ok(())
        }
    }
}
