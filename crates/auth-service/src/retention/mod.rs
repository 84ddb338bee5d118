//! What the Auth Service keeps, and for how long: a supervised task deletes
//! what nothing will read again, in small batches.
//!
//! - refresh tokens once expired (spent ones are kept until then: a reuse is
//!   only detected while the spent token is on record);
//! - sessions revoked longer ago than an access token lives (no token of
//!   theirs can still validate, so the revocation set no longer needs them),
//!   past their absolute lifetime, or idle beyond the refresh-token lifetime;
//! - throttle counters untouched for the longest throttle window;
//! - delivered outbox events after a day;
//! - audit events after the configured retention;
//! - security events of the feed after theirs (at least the access-token
//!   lifetime: a verifier starting up reads back that far).

mod sql;

pub use sql::RetentionSql;

use crate::storage::StoreError;
use crate::throttle::ACCOUNT_WINDOW;
use chrono::Duration;
use platform::clock::SharedClock;
use platform::db::Database;
use platform::tasks::in_batches;

/// How long each kind of row is kept.
#[derive(Debug, Clone, Copy)]
pub struct Retention {
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub session_max_lifetime: Duration,
    pub audit: Duration,
    /// How far back the security-event feed serves.
    pub security_events: Duration,
}

/// Kept past the last moment a row could matter, for clocks that disagree.
const MARGIN: Duration = Duration::hours(1);

/// What one pruning pass deleted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pruned {
    pub refresh_tokens: u64,
    pub sessions: u64,
    pub throttle_counters: u64,
    pub outbox_events: u64,
    pub audit_events: u64,
    pub one_time_tokens: u64,
    pub mfa_challenges: u64,
    pub security_events: u64,
}

/// Deletes expired rows.
#[derive(Debug, Clone)]
pub struct Pruner {
    db: Database,
    clock: SharedClock,
    keep: Retention,
}

impl Pruner {
    pub fn new(db: Database, clock: SharedClock, keep: Retention) -> Self {
        Self { db, clock, keep }
    }

    /// One pass over every table.
    pub async fn prune_once(&self) -> Result<Pruned, StoreError> {
        let now = self.clock.now();
        let k = self.keep;
        let db = &self.db;
        let pruned = Pruned {
            refresh_tokens: in_batches(|n| async move {
                platform::sql!(
                    read(db),
                    RetentionSql::prune_refresh_tokens(now - MARGIN, n)
                )
            })
            .await?,
            sessions: in_batches(|n| async move {
                platform::sql!(
                    read(db),
                    RetentionSql::prune_sessions(
                        now - k.access_token_ttl - MARGIN,
                        now - k.session_max_lifetime - MARGIN,
                        now - k.refresh_token_ttl - MARGIN,
                        n,
                    )
                )
            })
            .await?,
            throttle_counters: in_batches(|n| async move {
                platform::sql!(
                    read(db),
                    RetentionSql::prune_throttle(now - ACCOUNT_WINDOW, n)
                )
            })
            .await?,
            outbox_events: platform::outbox::prune_delivered(db, now).await?,
            audit_events: in_batches(|n| async move {
                platform::sql!(read(db), RetentionSql::prune_audit(now - k.audit, n))
            })
            .await?,
            one_time_tokens: in_batches(|n| async move {
                platform::sql!(
                    read(db),
                    RetentionSql::prune_one_time_tokens(now - MARGIN, n)
                )
            })
            .await?,
            mfa_challenges: in_batches(|n| async move {
                platform::sql!(
                    read(db),
                    RetentionSql::prune_mfa_challenges(now - MARGIN, n)
                )
            })
            .await?,
            security_events: in_batches(|n| async move {
                platform::sql!(
                    read(db),
                    RetentionSql::prune_security_events(now - k.security_events - MARGIN, n)
                )
            })
            .await?,
        };
        if pruned != Pruned::default() {
            tracing::info!(?pruned, "pruned expired rows");
        }
        Ok(pruned)
    }
}
