//! The security events of the feed: what happened (a CAEP or RISC event type),
//! to whom, when, and where in the commit-ordered log it stands.

use crate::access::{Permission, RoleName};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use platform::ids::{SessionId, SubjectId, UserId};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The event types the feed carries (the contract's one list, shared with
/// every verifier).
pub use platform::security_events::EventType as SignalKind;

/// Whom an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignalSubject {
    /// A user or service account.
    Subject(SubjectId),
    /// Every holder of a role.
    Role(String),
}

impl SignalSubject {
    /// The id and kind as stored: (`id`, `user` | `service` | `role`).
    pub fn stored(&self) -> (String, &'static str) {
        match self {
            Self::Subject(SubjectId::User(id)) => (id.to_string(), "user"),
            Self::Subject(SubjectId::Service(id)) => (id.to_string(), "service"),
            Self::Role(name) => (name.clone(), "role"),
        }
    }

    /// The subject a stored (`id`, kind) names.
    pub fn from_stored(id: &str, kind: &str) -> Option<Self> {
        match kind {
            "role" => Some(Self::Role(id.to_owned())),
            "user" | "service" => {
                let uuid = Uuid::parse_str(id).ok()?;
                Some(Self::Subject(SubjectId::new(uuid, kind == "service")))
            }
            _ => None,
        }
    }
}

/// What an event says beyond its type and subject (CAEP's event claims).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignalDetail {
    /// Why (a session's revoke reason, a disable's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// CAEP `credential_type`: `password` or `app` (TOTP).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential_type: Option<String>,
    /// CAEP `change_type`: `create`, `update` or `delete`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub change_type: Option<String>,
    /// A subject's roles after the change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
    /// A role's permissions after the change (empty: deleted).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permissions: Option<Vec<String>>,
}

/// One security event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// The SET's `jti`.
    pub id: Uuid,
    pub at: DateTime<Utc>,
    pub kind: SignalKind,
    pub subject: SignalSubject,
    pub session: Option<SessionId>,
    pub detail: SignalDetail,
}

impl Signal {
    fn new(kind: SignalKind, subject: SignalSubject, at: DateTime<Utc>) -> Self {
        Self {
            id: platform::clock::time_ordered_id(),
            at,
            kind,
            subject,
            session: None,
            detail: SignalDetail::default(),
        }
    }

    /// A session ended, for `reason`.
    pub fn session_revoked(
        user: UserId,
        session: SessionId,
        reason: &str,
        at: DateTime<Utc>,
    ) -> Self {
        let mut s = Self::new(
            SignalKind::SessionRevoked,
            SignalSubject::Subject(user.into()),
            at,
        );
        s.session = Some(session);
        s.detail.reason = Some(reason.to_owned());
        s
    }

    /// A credential of `user` changed.
    pub fn credential_change(
        user: UserId,
        credential_type: &str,
        change_type: &str,
        at: DateTime<Utc>,
    ) -> Self {
        let mut s = Self::new(
            SignalKind::CredentialChange,
            SignalSubject::Subject(user.into()),
            at,
        );
        s.detail.credential_type = Some(credential_type.to_owned());
        s.detail.change_type = Some(change_type.to_owned());
        s
    }

    /// A subject now holds `roles`.
    pub fn roles_changed(subject: SubjectId, roles: &[RoleName], at: DateTime<Utc>) -> Self {
        let mut s = Self::new(
            SignalKind::TokenClaimsChange,
            SignalSubject::Subject(subject),
            at,
        );
        s.detail.roles = Some(roles.iter().map(ToString::to_string).collect());
        s
    }

    /// A role now grants `permissions` (none: it was deleted).
    pub fn role_changed(role: &RoleName, permissions: &[Permission], at: DateTime<Utc>) -> Self {
        let mut s = Self::new(
            SignalKind::TokenClaimsChange,
            SignalSubject::Role(role.to_string()),
            at,
        );
        s.detail.permissions = Some(permissions.iter().map(|p| p.as_str().to_owned()).collect());
        s
    }

    /// An account was disabled, enabled or purged.
    pub fn account(
        kind: SignalKind,
        subject: SubjectId,
        reason: Option<&str>,
        at: DateTime<Utc>,
    ) -> Self {
        let mut s = Self::new(kind, SignalSubject::Subject(subject), at);
        s.detail.reason = reason.map(ToOwned::to_owned);
        s
    }
}

/// A place in the log: the writing transaction's position, then the row's
/// sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    pub tx: i64,
    pub seq: i64,
}

/// An event as read back, with its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub position: Position,
    pub signal: Signal,
}

/// Where a subscriber is: after `position` (nothing read yet when `None`), as
/// of `at` (the event's time, or when a heartbeat found nothing newer). The
/// time tells a cursor the pruning may have overtaken.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub position: Option<Position>,
    pub at: DateTime<Utc>,
}

/// The longest cursor accepted.
pub const MAX_CURSOR_LEN: usize = 128;

impl Cursor {
    /// The opaque text handed to subscribers.
    pub fn encode(&self) -> String {
        let (tx, seq) = self.position.map_or((-1, -1), |p| (p.tx, p.seq));
        let raw = format!("v1.{tx}.{seq}.{}", self.at.timestamp_micros());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// A cursor from its text; `None` if it is not one this service wrote.
    pub fn decode(text: &str) -> Option<Self> {
        if text.len() > MAX_CURSOR_LEN {
            return None;
        }
        let raw = String::from_utf8(URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
        let mut parts = raw.split('.');
        if parts.next()? != "v1" {
            return None;
        }
        let tx: i64 = parts.next()?.parse().ok()?;
        let seq: i64 = parts.next()?.parse().ok()?;
        let at = DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
        if parts.next().is_some() {
            return None;
        }
        let position = match (tx, seq) {
            (-1, -1) => None,
            (tx, seq) if tx >= 0 && seq >= 0 => Some(Position { tx, seq }),
            _ => return None,
        };
        Some(Self { position, at })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let at = DateTime::from_timestamp_micros(1_700_000_000_123_456).unwrap();
        for position in [
            None,
            Some(Position { tx: 0, seq: 7 }),
            Some(Position {
                tx: 9_000_000_000,
                seq: 1,
            }),
        ] {
            let c = Cursor { position, at };
            assert_eq!(Cursor::decode(&c.encode()), Some(c));
        }
        for bad in ["", "x", "djEuMS4y", &"A".repeat(200), "djEuLTEuNS4x"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
