//! Pruning: rows nothing will read again are deleted in small batches, each
//! one statement (one short transaction), so no table is locked for long.

use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::sql::Expired;

/// Deletes expired rows, at most `limit` per call; each returns how many went.
pub struct RetentionSql<DB>(std::marker::PhantomData<DB>);

platform::generic_store! {
    impl<DB> RetentionSql<DB> {
        /// Refresh tokens that expired before `before` (spent ones are kept until
        /// then: reuse detection needs them).
        pub async fn prune_refresh_tokens(
            c: &mut DB::Connection,
            before: DateTime<Utc>,
            limit: i64,
        ) -> Result<u64, StoreError> {
            let tokens = Expired {
                table: "refresh_tokens",
                key: "token_hash",
                column: "expires_at",
            };
            Ok(tokens.delete(&mut *c, before, limit).await?)
        }

        /// Sessions revoked before `revoked_before`, or past any use: created before
        /// `created_before` (beyond the absolute lifetime) or idle since before
        /// `idle_before` (every refresh token expired), with their refresh tokens.
        pub async fn prune_sessions(
            c: &mut DB::Connection,
            revoked_before: DateTime<Utc>,
            created_before: DateTime<Utc>,
            idle_before: DateTime<Utc>,
            limit: i64,
        ) -> Result<u64, StoreError> {
            // Their refresh tokens go with them (ON DELETE CASCADE; SQLite's
            // foreign keys are switched on for every connection). One statement
            // per reason, each on its own index: an OR of the three would scan
            // the table when nothing is due.
            let mut done = 0;
            for (column, before) in [
                ("revoked_at", revoked_before),
                ("created_at", created_before),
                ("last_used_at", idle_before),
            ] {
                let sessions = Expired {
                    table: "sessions",
                    key: "id",
                    column,
                };
                done += sessions.delete(&mut *c, before, limit).await?;
            }
            Ok(done)
        }

        /// Throttle counters last touched before `before`.
        pub async fn prune_throttle(
            c: &mut DB::Connection,
            before: DateTime<Utc>,
            limit: i64,
        ) -> Result<u64, StoreError> {
            let counters = Expired {
                table: "throttle_counters",
                key: "key",
                column: "updated_at",
            };
            Ok(counters.delete(&mut *c, before, limit).await?)
        }

        /// One-time tokens (verification, reset) that expired before `before`,
        /// spent or not.
        pub async fn prune_one_time_tokens(
            c: &mut DB::Connection,
            before: DateTime<Utc>,
            limit: i64,
        ) -> Result<u64, StoreError> {
            let tokens = Expired {
                table: "one_time_tokens",
                key: "token_hash",
                column: "expires_at",
            };
            Ok(tokens.delete(&mut *c, before, limit).await?)
        }

        /// Second-factor challenges that expired before `before`.
        pub async fn prune_mfa_challenges(
            c: &mut DB::Connection,
            before: DateTime<Utc>,
            limit: i64,
        ) -> Result<u64, StoreError> {
            let challenges = Expired {
                table: "mfa_challenges",
                key: "challenge_hash",
                column: "expires_at",
            };
            Ok(challenges.delete(&mut *c, before, limit).await?)
        }

        /// Audit events older than `before`.
        pub async fn prune_audit(
            c: &mut DB::Connection,
            before: DateTime<Utc>,
            limit: i64,
        ) -> Result<u64, StoreError> {
            let events = Expired {
                table: "audit_events",
                key: "id",
                column: "at",
            };
            Ok(events.delete(&mut *c, before, limit).await?)
        }

        /// Security events older than `before` (the feed's subscribers were
        /// told to resynchronise before they could need them).
        pub async fn prune_security_events(
            c: &mut DB::Connection,
            before: DateTime<Utc>,
            limit: i64,
        ) -> Result<u64, StoreError> {
            let events = Expired {
                table: "security_events",
                key: "seq",
                column: "at",
            };
            Ok(events.delete(&mut *c, before, limit).await?)
        }
    }
}
