//! The security-event feed (OpenID Shared Signals: CAEP and RISC events as
//! Security Event Tokens) that services behind the platform follow to honour
//! revocations while verifying tokens locally. Every event is written in the
//! transaction of the change it describes (a committed revocation is never
//! missing, a rolled-back one never present) and served in commit order from
//! any replica, after an opaque cursor.

mod feed;
mod model;
pub mod poll;
mod poll_sql;
mod set;
mod sql;
pub mod stream;

pub use feed::Feed;

pub use model::*;
pub use poll::{PollAnswer, PollRequest, SetError};
pub use poll_sql::{PollPosition, PollSql};
pub use set::{SET_TYP, seal};
pub use sql::SignalSql;

use crate::access::authz::Principal;
use crate::accounts::AccountSql;
use crate::error::AuthError;
use platform::ids::{ServiceAccountId, SubjectId};
use std::collections::HashSet;

const EVENTS_SUBSCRIBE: &str = "events:subscribe";
/// Event types a subscription may name.
const MAX_EVENT_TYPES: usize = 16;

/// A subscriber's request, checked.
#[derive(Debug)]
pub struct Subscription {
    /// The subscriber's client id: every SET's `aud`.
    pub audience: String,
    /// The types it receives; `None`: all.
    pub types: Option<HashSet<SignalKind>>,
    /// Where it resumes.
    pub cursor: Cursor,
    /// The token it subscribed with, checked again as the stream goes on: a
    /// deleted account, a removed permission or an expired token ends it.
    pub token: String,
    /// Its place among the subscriptions this replica serves.
    pub _slot: tokio::sync::OwnedSemaphorePermit,
}

impl Subscription {
    /// Whether the subscriber receives events of `kind`.
    pub fn wants(&self, kind: SignalKind) -> bool {
        self.types.as_ref().is_none_or(|t| t.contains(&kind))
    }
}

/// A cursor the feed no longer reaches, or never wrote.
fn resynchronise(why: &str) -> AuthError {
    AuthError::OutOfRange(format!(
        "{why}: resynchronise (subscribe with an empty cursor and distrust tokens issued before)"
    ))
}

crate::context::use_cases! {
    /// Following the security-event feed.
    Signals
}

impl Signals<'_> {
    /// Checks a subscription: a service account holding `events:subscribe`,
    /// a cursor of this feed that it still reaches, known types, a free slot.
    pub async fn subscribe(
        &self,
        caller: &Principal,
        token: &str,
        cursor: &str,
        types: &[String],
    ) -> Result<Subscription, AuthError> {
        let account = self.authorise(caller)?;
        let cursor = self.resume_at(cursor).await?;
        let types = event_types(types)?;
        let audience = platform::sql!(read(&self.db), AccountSql::client_id_of(account))?
            .ok_or_else(|| {
                AuthError::Unauthenticated("the service account no longer exists".into())
            })?;
        let slot = self.feed.slot().ok_or_else(|| {
            AuthError::Unavailable(
                "this replica serves as many subscriptions as it may; retry on another or later"
                    .into(),
            )
        })?;
        Ok(Subscription {
            audience,
            types,
            cursor,
            token: token.to_owned(),
            _slot: slot,
        })
    }

    /// The subscribing account, if `caller` may follow the feed.
    pub fn authorise(&self, caller: &Principal) -> Result<ServiceAccountId, AuthError> {
        let SubjectId::Service(account) = caller.subject_id else {
            return Err(AuthError::PermissionDenied(
                "the security-event feed is for service accounts: authenticate with client credentials".into(),
            ));
        };
        self.require(caller, EVENTS_SUBSCRIBE, None)?;
        Ok(account)
    }

    /// The cursor to resume after: the start of what is kept when empty;
    /// OUT_OF_RANGE when pruning has deleted events after it, or when it is
    /// ahead of anything this database wrote (a restore, a forged cursor).
    pub async fn resume_at(&self, text: &str) -> Result<Cursor, AuthError> {
        if text.is_empty() {
            return Ok(Cursor {
                position: None,
                at: self.clock.now(),
            });
        }
        let cursor = Cursor::decode(text).ok_or_else(|| {
            crate::domain::FieldViolation::new(
                "cursor",
                "not a cursor of this feed: pass one a SubscribeSecurityEventsResponse carried, or none",
            )
        })?;
        let mut c = self.db.read().await?;
        let horizon = platform::sql!(&mut c, SignalSql::horizon())?;
        let head = platform::sql!(&mut c, SignalSql::head())?;
        if cursor.position < horizon {
            return Err(resynchronise("events after this cursor were pruned"));
        }
        if cursor.position > head.max(horizon) {
            return Err(resynchronise(
                "the cursor is ahead of this feed (a restored database, or not its cursor)",
            ));
        }
        Ok(cursor)
    }

    /// Up to `limit` events after `after`, in feed order; OUT_OF_RANGE when
    /// pruning deleted some after `after` meanwhile.
    pub async fn page(
        &self,
        after: Option<Position>,
        limit: i64,
    ) -> Result<Vec<Logged>, AuthError> {
        let mut c = self.db.read().await?;
        let page = platform::sql!(&mut c, SignalSql::read_after(after, limit))?;
        // Read after the page: a prune that committed before the page was
        // read has moved the horizon by now.
        let horizon = platform::sql!(&mut c, SignalSql::horizon())?;
        if after.is_some() && after < horizon {
            return Err(resynchronise("events after this cursor were pruned"));
        }
        Ok(page)
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
