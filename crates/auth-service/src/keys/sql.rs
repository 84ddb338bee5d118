//! Signing keys: one row per generation, so that replicas racing to create the
//! next key agree on one.

use super::model::*;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::sql::Timestamp;

/// Signing keys.
pub struct KeySql<DB>(std::marker::PhantomData<DB>);

platform::generic_store! {
    impl<DB> KeySql<DB> {
        /// Every stored signing key, by generation.
        pub async fn signing_keys(
            c: &mut DB::Connection,
        ) -> Result<Vec<SigningKeyRecord>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT generation, kid, algorithm, public_key, private_key, encrypted,
                        created_at, activates_at
                 FROM signing_keys ORDER BY generation",
            )
            .fetch_all(&mut *c)
            .await?)
        }

        /// Inserts a key unless its generation exists (another replica won); true if inserted.
        pub async fn insert_signing_key(
            c: &mut DB::Connection,
            key: &SigningKeyRecord,
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "INSERT INTO signing_keys
                   (generation, kid, algorithm, public_key, private_key, encrypted, created_at, activates_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                 ON CONFLICT (generation) DO NOTHING",
            )
            .bind(key.generation)
            .bind(&key.kid)
            .bind(&key.algorithm)
            .bind(&key.public_key)
            .bind(&key.private_key)
            .bind(key.encrypted)
            .bind(Timestamp(key.created_at))
            .bind(Timestamp(key.activates_at))
            .execute(&mut *c)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }

        /// Replaces a plaintext private key with its sealed form; false when it was
        /// sealed already (another replica did it).
        pub async fn seal_signing_key(
            c: &mut DB::Connection,
            generation: i64,
            sealed: &[u8],
        ) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE signing_keys SET private_key = $2, encrypted = $3
                 WHERE generation = $1 AND encrypted = $4",
            )
            .bind(generation)
            .bind(sealed)
            .bind(true)
            .bind(false)
            .execute(&mut *c)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }

        /// Moves a key's activation time (an early rotation).
        pub async fn set_key_activation(
            c: &mut DB::Connection,
            generation: i64,
            activates_at: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query("UPDATE signing_keys SET activates_at = $2 WHERE generation = $1")
                .bind(generation)
                .bind(Timestamp(activates_at))
                .execute(&mut *c)
                .await?;
            Ok(())
        }
    }
}
