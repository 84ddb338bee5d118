//! Pruning: rows nothing will read again are deleted in small batches, each
//! one statement (one short transaction), so no table is locked for long.

use super::{Sql, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use platform::sql::{Expired, Timestamp};

/// Deletes expired rows, at most `limit` per call; each returns how many went.
#[async_trait]
pub trait RetentionStore: Send + Sync + std::fmt::Debug {
    /// Refresh tokens that expired before `before` (spent ones are kept until
    /// then: reuse detection needs them).
    async fn prune_refresh_tokens(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StoreError>;
    /// Sessions revoked before `revoked_before`, or past any use: created before
    /// `created_before` (beyond the absolute lifetime) or idle since before
    /// `idle_before` (every refresh token expired), with their refresh tokens.
    async fn prune_sessions(
        &self,
        revoked_before: DateTime<Utc>,
        created_before: DateTime<Utc>,
        idle_before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StoreError>;
    /// Throttle counters last touched before `before`.
    async fn prune_throttle(&self, before: DateTime<Utc>, limit: i64) -> Result<u64, StoreError>;
    /// Audit events older than `before`.
    async fn prune_audit(&self, before: DateTime<Utc>, limit: i64) -> Result<u64, StoreError>;
    /// One-time tokens (verification, reset) that expired before `before`,
    /// spent or not.
    async fn prune_one_time_tokens(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StoreError>;
    /// Second-factor challenges that expired before `before`.
    async fn prune_mfa_challenges(
        &self,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StoreError>;
}

platform::generic_store! {
    #[async_trait]
    impl<DB> RetentionStore for Sql<DB> {
        async fn prune_refresh_tokens(
            &self,
            before: DateTime<Utc>,
            limit: i64,
        ) -> Result<u64, StoreError> {
            let tokens = Expired {
                table: "refresh_tokens",
                key: "token_hash",
                column: "expires_at",
            };
            Ok(tokens.delete(&self.pool, before, limit).await?)
        }

        async fn prune_sessions(
            &self,
            revoked_before: DateTime<Utc>,
            created_before: DateTime<Utc>,
            idle_before: DateTime<Utc>,
            limit: i64,
        ) -> Result<u64, StoreError> {
            // Their refresh tokens go with them (ON DELETE CASCADE; SQLite's
            // foreign keys are switched on for every connection).
            let done = sqlx::query(
                "DELETE FROM sessions WHERE id IN (
                     SELECT id FROM sessions
                     WHERE revoked_at < $1 OR created_at < $2 OR last_used_at < $3 LIMIT $4)",
            )
            .bind(Timestamp(revoked_before))
            .bind(Timestamp(created_before))
            .bind(Timestamp(idle_before))
            .bind(limit)
            .execute(&self.pool)
            .await?;
            Ok(DB::rows_affected(&done))
        }

        async fn prune_throttle(&self, before: DateTime<Utc>, limit: i64) -> Result<u64, StoreError> {
            let counters = Expired {
                table: "throttle_counters",
                key: "key",
                column: "updated_at",
            };
            Ok(counters.delete(&self.pool, before, limit).await?)
        }

        async fn prune_one_time_tokens(
            &self,
            before: DateTime<Utc>,
            limit: i64,
        ) -> Result<u64, StoreError> {
            let tokens = Expired {
                table: "one_time_tokens",
                key: "token_hash",
                column: "expires_at",
            };
            Ok(tokens.delete(&self.pool, before, limit).await?)
        }

        async fn prune_mfa_challenges(
            &self,
            before: DateTime<Utc>,
            limit: i64,
        ) -> Result<u64, StoreError> {
            let challenges = Expired {
                table: "mfa_challenges",
                key: "challenge_hash",
                column: "expires_at",
            };
            Ok(challenges.delete(&self.pool, before, limit).await?)
        }

        async fn prune_audit(&self, before: DateTime<Utc>, limit: i64) -> Result<u64, StoreError> {
            let events = Expired {
                table: "audit_events",
                key: "id",
                column: "at",
            };
            Ok(events.delete(&self.pool, before, limit).await?)
        }
    }
}
