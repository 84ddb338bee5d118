//! Signing keys: one row per generation, so that replicas racing to create the
//! next key agree on one.

use super::{Sql, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::sql::Timestamp;

/// A signing key as stored; `private_key` is PKCS#8, sealed when `encrypted`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SigningKeyRecord {
    pub generation: i64,
    pub kid: String,
    pub algorithm: String,
    pub public_key: Vec<u8>,
    pub private_key: Vec<u8>,
    pub encrypted: bool,
    #[sqlx(try_from = "Timestamp")]
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "Timestamp")]
    pub activates_at: DateTime<Utc>,
}

/// Signing keys.
#[async_trait]
pub trait KeyStore: Send + Sync + std::fmt::Debug {
    /// Every stored signing key, by generation.
    async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError>;
    /// Inserts a key unless its generation exists (another replica won); true if inserted.
    async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError>;
    /// Replaces a plaintext private key with its sealed form; false when it was
    /// sealed already (another replica did it).
    async fn seal_signing_key(&self, generation: i64, sealed: &[u8]) -> Result<bool, StoreError>;
    /// Moves a key's activation time (an early rotation).
    async fn set_key_activation(
        &self,
        generation: i64,
        activates_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
}

platform::generic_store! {
    #[async_trait]
    impl<DB> KeyStore for Sql<DB> {
        async fn signing_keys(&self) -> Result<Vec<SigningKeyRecord>, StoreError> {
            Ok(sqlx::query_as(
                "SELECT generation, kid, algorithm, public_key, private_key, encrypted,
                        created_at, activates_at
                 FROM signing_keys ORDER BY generation",
            )
            .fetch_all(&self.pool)
            .await?)
        }

        async fn insert_signing_key(&self, key: &SigningKeyRecord) -> Result<bool, StoreError> {
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
            .execute(&self.pool)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }

        async fn seal_signing_key(&self, generation: i64, sealed: &[u8]) -> Result<bool, StoreError> {
            let done = sqlx::query(
                "UPDATE signing_keys SET private_key = $2, encrypted = $3
                 WHERE generation = $1 AND encrypted = $4",
            )
            .bind(generation)
            .bind(sealed)
            .bind(true)
            .bind(false)
            .execute(&self.pool)
            .await?;
            Ok(DB::rows_affected(&done) == 1)
        }

        async fn set_key_activation(
            &self,
            generation: i64,
            activates_at: DateTime<Utc>,
        ) -> Result<(), StoreError> {
            sqlx::query("UPDATE signing_keys SET activates_at = $2 WHERE generation = $1")
                .bind(generation)
                .bind(Timestamp(activates_at))
                .execute(&self.pool)
                .await?;
            Ok(())
        }
    }
}
