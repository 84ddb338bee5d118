//! The security-event feed (OpenID Shared Signals: CAEP and RISC events as
//! Security Event Tokens) that services behind the platform follow to honour
//! revocations while verifying tokens locally. Every event is written in the
//! transaction of the change it describes (a committed revocation is never
//! missing, a rolled-back one never present) and served in commit order from
//! any replica, after an opaque cursor.

mod model;
pub mod poll;
mod poll_sql;
mod set;
mod sql;
pub mod stream;

pub use model::*;
pub use poll::{PollAnswer, PollRequest, SetError};
pub use poll_sql::{PollPosition, PollSql};
pub use set::{SET_TYP, seal};
pub use sql::SignalSql;

use crate::access::authz::Principal;
use crate::accounts::AccountSql;
use crate::error::AuthError;
use crate::storage::StoreError;
use chrono::{DateTime, Utc};
use platform::db::Database;
use platform::ids::SubjectId;
use std::collections::HashSet;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

const EVENTS_SUBSCRIBE: &str = "events:subscribe";
/// Event types a subscription may name.
const MAX_EVENT_TYPES: usize = 16;

/// The feed's settings and this replica's view of its newest event.
#[derive(Debug)]
pub struct Feed {
    /// A subscriber hears at least this often.
    pub heartbeat: std::time::Duration,
    /// How far back the feed serves.
    pub keep: chrono::Duration,
    /// How long an RFC 8936 poll with nothing to deliver waits for an event.
    pub long_poll: std::time::Duration,
    /// The newest settled position, polled; subscribers wait on it.
    head: watch::Sender<Option<Position>>,
    /// Ends every subscription at shutdown (a stream would otherwise hold the
    /// server open).
    pub stop: CancellationToken,
}

impl Feed {
    pub fn new(
        heartbeat: std::time::Duration,
        keep: chrono::Duration,
        long_poll: std::time::Duration,
    ) -> Self {
        Self {
            heartbeat,
            keep,
            long_poll,
            head: watch::Sender::new(None),
            stop: CancellationToken::new(),
        }
    }

    /// Wakes when the newest position changes.
    pub fn watch(&self) -> watch::Receiver<Option<Position>> {
        self.head.subscribe()
    }

    /// Reads the newest settled position (every replica, every poll interval:
    /// one index probe, however many subscribers wait).
    pub async fn poll(&self, db: &Database) -> Result<(), StoreError> {
        let head = platform::sql!(read(db), SignalSql::head())?;
        self.head.send_if_modified(|h| {
            let changed = *h != head;
            *h = head;
            changed
        });
        Ok(())
    }
}

/// A subscriber's request, checked.
#[derive(Debug, Clone)]
pub struct Subscription {
    /// The subscriber's client id: every SET's `aud`.
    pub audience: String,
    /// The types it receives; `None`: all.
    pub types: Option<HashSet<SignalKind>>,
    /// Where it resumes.
    pub cursor: Cursor,
}

impl Subscription {
    /// Whether the subscriber receives events of `kind`.
    pub fn wants(&self, kind: SignalKind) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(&kind))
    }
}

crate::context::use_cases! {
    /// Following the security-event feed.
    Signals
}

impl Signals<'_> {
    /// Checks a subscription: a service account holding `events:subscribe`,
    /// a cursor this service wrote and the feed still reaches, known types.
    pub async fn subscribe(
        &self,
        caller: &Principal,
        cursor: &str,
        types: &[String],
    ) -> Result<Subscription, AuthError> {
        let SubjectId::Service(account) = caller.subject_id else {
            return Err(AuthError::PermissionDenied(
                "the security-event feed is for service accounts: authenticate with client credentials".into(),
            ));
        };
        self.require(caller, EVENTS_SUBSCRIBE, None)?;
        let now = self.clock.now();
        let cursor = self.resume_at(cursor, now)?;
        let types = event_types(types)?;
        let audience = platform::sql!(read(&self.db), AccountSql::client_id_of(account))?
            .ok_or_else(|| {
                AuthError::Unauthenticated("the service account no longer exists".into())
            })?;
        Ok(Subscription {
            audience,
            types,
            cursor,
        })
    }

    /// The cursor to resume after: the start of what is kept when empty;
    /// OUT_OF_RANGE when pruning may have overtaken it.
    pub fn resume_at(&self, text: &str, now: DateTime<Utc>) -> Result<Cursor, AuthError> {
        if text.is_empty() {
            return Ok(Cursor {
                position: None,
                at: now,
            });
        }
        let cursor = Cursor::decode(text).ok_or_else(|| {
            crate::domain::FieldViolation::new(
                "cursor",
                "not a cursor of this feed: pass one a SecurityEvent carried, or none",
            )
        })?;
        if cursor.at < now - self.feed.keep {
            return Err(AuthError::OutOfRange(format!(
                "the cursor is older than the {} minutes of events kept: resynchronise \
                 (subscribe with an empty cursor and distrust tokens issued before)",
                self.feed.keep.num_minutes()
            )));
        }
        Ok(cursor)
    }

    /// Up to `limit` events after `after`, in commit order.
    pub async fn page(
        &self,
        after: Option<Position>,
        limit: i64,
    ) -> Result<Vec<Logged>, AuthError> {
        Ok(platform::sql!(
            read(&self.db),
            SignalSql::read_after(after, limit)
        )?)
    }

    /// The SET of `signal` for `audience`.
    pub fn seal(&self, audience: &str, signal: &Signal) -> Result<String, AuthError> {
        let keys = self.key_set()?;
        set::seal(
            &keys,
            self.tokens.issuer(),
            audience,
            signal,
            self.clock.now(),
        )
        .map_err(|e| AuthError::Internal(format!("signing a security event failed: {e}")))
    }
}

/// The kinds a subscription names; INVALID_ARGUMENT for an unknown URI.
fn event_types(uris: &[String]) -> Result<Option<HashSet<SignalKind>>, AuthError> {
    if uris.is_empty() {
        return Ok(None);
    }
    if uris.len() > MAX_EVENT_TYPES {
        return Err(crate::domain::FieldViolation::new(
            "event_types",
            format!("at most {MAX_EVENT_TYPES} event types"),
        )
        .into());
    }
    uris.iter()
        .map(|u| {
            SignalKind::from_uri(u).ok_or_else(|| {
                let known: Vec<String> = SignalKind::ALL.iter().map(|k| k.uri()).collect();
                crate::domain::FieldViolation::new(
                    "event_types",
                    format!(
                        "unknown event type {:?}; known: {}",
                        u.chars().take(200).collect::<String>(),
                        known.join(", ")
                    ),
                )
                .into()
            })
        })
        .collect::<Result<HashSet<_>, AuthError>>()
        .map(Some)
}
