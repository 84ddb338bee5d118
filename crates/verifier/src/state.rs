//! The verifier's view of what the feed said: revoked sessions, subjects
//! whose older tokens are refused (disabled) or must be refreshed, roles
//! whose older tokens must be refreshed and every role's permissions, and how
//! current that view is. The rules for a token are decided here, in
//! [`FeedState::check`]; the feed task only calls [`FeedState::apply`].
//!
//! Entries are forgotten once older than `retention` (the longest access-token
//! lifetime plus leeway): every token they could refuse has expired by then.

use crate::claims::TokenClaims;
use crate::event::{Change, Event};
use crate::rejection::Rejection;
use parking_lot::RwLock;
use platform::ids::{SessionId, SubjectId};
use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use tokio::time::Instant;

/// Every role's permissions.
pub(crate) type RoleTable = HashMap<String, Vec<String>>;

#[derive(Debug, Default)]
struct Inner {
    /// Revoked sessions, with the time of revocation (for forgetting).
    sessions: HashMap<SessionId, i64>,
    /// Tokens issued up to this second are refused as disabled.
    disabled: HashMap<SubjectId, i64>,
    /// Tokens issued up to this second must be refreshed.
    refresh: HashMap<SubjectId, i64>,
    /// Tokens carrying the role issued up to this second must be refreshed.
    role_floors: HashMap<String, i64>,
    roles: RoleTable,
    roles_loaded: bool,
    /// Tokens issued up to this second must be refreshed: events may have
    /// been lost (a resynchronisation).
    resync_floor: Option<i64>,
    /// Waiting for the first heartbeat after a resynchronisation.
    resync_pending: bool,
    /// The last moment the view was known current: a heartbeat, or an event
    /// received after one on the same stream.
    current_at: Option<Instant>,
    /// This stream has delivered its backlog (a heartbeat came).
    caught_up: bool,
}

/// Moves `key`'s floor up to `at` (never down: later events win).
fn raise<K: std::hash::Hash + Eq>(map: &mut HashMap<K, i64>, key: K, at: i64) {
    let floor = map.entry(key).or_insert(at);
    *floor = (*floor).max(at);
}

/// The feed's state, read by every `verify` and written by the feed task.
#[derive(Debug, Default)]
pub(crate) struct FeedState {
    inner: RwLock<Inner>,
}

impl FeedState {
    /// Whether the view is current: roles loaded, a heartbeat within
    /// `max_staleness` of `now`, no resynchronisation pending.
    pub(crate) fn fresh(&self, now: Instant, max_staleness: Duration) -> bool {
        let s = self.inner.read();
        s.roles_loaded
            && !s.resync_pending
            && s.current_at
                .is_some_and(|at| now.saturating_duration_since(at) <= max_staleness)
    }

    /// How long since the view was last known current (`None`: never).
    pub(crate) fn staleness(&self, now: Instant) -> Option<Duration> {
        self.inner
            .read()
            .current_at
            .map(|at| now.saturating_duration_since(at))
    }

    /// The permissions `token`'s roles grant, unless the feed says the token
    /// no longer stands (revoked, disabled, or to be refreshed).
    pub(crate) fn check(&self, token: &TokenClaims) -> Result<Vec<String>, Rejection> {
        let s = self.inner.read();
        let before = |floor: Option<&i64>| floor.is_some_and(|f| token.iat <= *f);
        // Disabled first: its sessions end too, and "log in again" would be a
        // lie to a disabled account.
        if before(s.disabled.get(&token.sub)) {
            return Err(Rejection::Disabled);
        }
        if s.sessions.contains_key(&token.sid) {
            return Err(Rejection::Revoked);
        }
        if before(s.refresh.get(&token.sub))
            || before(s.resync_floor.as_ref())
            || token.roles.iter().any(|r| before(s.role_floors.get(r)))
        {
            return Err(Rejection::Refresh);
        }
        let set: BTreeSet<&String> = token
            .roles
            .iter()
            .filter_map(|r| s.roles.get(r))
            .flatten()
            .collect();
        Ok(set.into_iter().cloned().collect())
    }

    /// Applies a verified event. Later events win: a floor only moves forward.
    pub(crate) fn apply(&self, event: &Event) {
        let mut s = self.inner.write();
        match &event.change {
            Change::SessionRevoked(sid) => {
                s.sessions.insert(*sid, event.at);
            }
            Change::Disabled(subject) => raise(&mut s.disabled, *subject, event.at),
            Change::Enabled(_) => {}
            Change::Refresh(subject) => raise(&mut s.refresh, *subject, event.at),
            Change::Role { name, permissions } => {
                raise(&mut s.role_floors, name.clone(), event.at);
                match permissions {
                    Some(p) if p.is_empty() => {
                        s.roles.remove(name);
                    }
                    Some(p) => {
                        s.roles.insert(name.clone(), p.clone());
                    }
                    None => {}
                }
            }
        }
    }

    /// The whole role table (from `ListRoles`).
    pub(crate) fn set_roles(&self, roles: RoleTable) {
        let mut s = self.inner.write();
        s.roles = roles;
        s.roles_loaded = true;
    }

    /// A heartbeat: every event up to it has been applied.
    pub(crate) fn heartbeat(&self, now: Instant) {
        let mut s = self.inner.write();
        s.current_at = Some(now);
        s.caught_up = true;
        s.resync_pending = false;
    }

    /// An event arrived: on a caught-up stream, the view is current at once.
    pub(crate) fn received(&self, now: Instant) {
        let mut s = self.inner.write();
        if s.caught_up {
            s.current_at = Some(now);
        }
    }

    /// A new stream starts: it must deliver its backlog before its events say
    /// the view is current.
    pub(crate) fn stream_started(&self) {
        self.inner.write().caught_up = false;
    }

    /// The cursor was too old: events may be lost. Every token issued up to
    /// `now` (Unix seconds) must be refreshed, and no token passes until the
    /// new stream has caught up.
    pub(crate) fn resync(&self, now: i64) {
        let mut s = self.inner.write();
        s.resync_pending = true;
        s.caught_up = false;
        s.resync_floor = Some(s.resync_floor.map_or(now, |f| f.max(now)));
    }

    /// Forgets entries older than `now - retention` (Unix seconds); returns
    /// how many entries are live.
    pub(crate) fn prune(&self, now: i64, retention: Duration) -> usize {
        let oldest = now.saturating_sub(i64::try_from(retention.as_secs()).unwrap_or(i64::MAX));
        let mut s = self.inner.write();
        s.sessions.retain(|_, at| *at >= oldest);
        s.disabled.retain(|_, at| *at >= oldest);
        s.refresh.retain(|_, at| *at >= oldest);
        s.role_floors.retain(|_, at| *at >= oldest);
        if s.resync_floor.is_some_and(|f| f < oldest) {
            s.resync_floor = None;
        }
        Self::live(&s)
    }

    fn live(s: &Inner) -> usize {
        s.sessions.len() + s.disabled.len() + s.refresh.len() + s.role_floors.len()
    }

    /// Live revocation entries.
    pub(crate) fn live_entries(&self) -> usize {
        Self::live(&self.inner.read())
    }
}

impl FeedState {
    /// Whether the role table was loaded.
    pub(crate) fn roles_loaded(&self) -> bool {
        self.inner.read().roles_loaded
    }
}
