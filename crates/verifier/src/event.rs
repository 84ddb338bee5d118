//! Security events: the CAEP and RISC types the feed carries, and turning one
//! feed message into a change this verifier applies. Nothing is taken from a
//! message unless its Security Event Token (RFC 8417) verifies: ES256 with a
//! JWKS key, `typ` `secevent+jwt`, our issuer, our client id as `aud`, and an
//! `events` claim naming the message's type and a `sub_id` naming its subject
//! (and session). The plain proto fields only select what the SET must prove.

use crate::keys::KeyStore;
use identity_proto::auth::v1::{SubjectKind, SubscribeSecurityEventsResponse as SecurityEvent};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Validation};
use platform::ids::{SessionId, SubjectId};
use serde::Deserialize;
use serde_json::{Map, Value};
use uuid::Uuid;

pub use platform::security_events::EventType;

/// What an event changes in the verifier's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// Tokens of this session are revoked.
    SessionRevoked(SessionId),
    /// Tokens of this subject issued up to the event are refused (disabled or purged).
    Disabled(SubjectId),
    /// Nothing to refuse: the floor of an earlier disable stays (its tokens
    /// are old), new tokens pass.
    Enabled(SubjectId),
    /// Tokens of this subject issued up to the event must be refreshed.
    Refresh(SubjectId),
    /// A role's permissions now (`None`: the SET did not carry them, reload
    /// the table); tokens carrying it issued up to the event must be refreshed.
    Role {
        name: String,
        permissions: Option<Vec<String>>,
    },
}

/// A verified event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Event {
    pub kind: EventType,
    pub change: Change,
    /// When it happened, Unix seconds (rounded down): tokens with `iat` up to
    /// and including it are affected, failing closed within the second.
    pub at: i64,
}

/// Why a feed message was not applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SetError {
    #[error("the SET is malformed")]
    Malformed,
    #[error("the SET's typ is not secevent+jwt")]
    Type,
    #[error("the SET is not signed ES256")]
    Algorithm,
    #[error("the SET is signed by an unknown key")]
    UnknownKey,
    #[error("the SET's signature is invalid")]
    Signature,
    #[error("the SET is for another audience")]
    Audience,
    #[error("the SET is from another issuer")]
    Issuer,
    #[error("the SET does not match the message: {0}")]
    Mismatch(&'static str),
    #[error("unknown event type")]
    UnknownType,
}

impl SetError {
    /// The metric label.
    pub(crate) const fn label(&self) -> &'static str {
        match self {
            Self::Malformed => "malformed",
            Self::Type => "type",
            Self::Algorithm => "algorithm",
            Self::UnknownKey => "unknown_key",
            Self::Signature => "signature",
            Self::Audience => "audience",
            Self::Issuer => "issuer",
            Self::Mismatch(_) => "mismatch",
            Self::UnknownType => "unknown_type",
        }
    }
}

#[derive(Deserialize)]
struct SetClaims {
    iat: i64,
    #[serde(rename = "jti")]
    _jti: String,
    sub_id: Value,
    events: Map<String, Value>,
}

/// What a SET must say to be applied.
#[derive(Debug, Clone)]
pub(crate) struct SetRules {
    validation: Validation,
}

impl SetRules {
    /// SETs from `issuer` for `client_id`.
    pub(crate) fn new(issuer: &str, client_id: &str) -> Self {
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[client_id]);
        validation.set_required_spec_claims(&["iss", "aud"]);
        // A SET does not expire (RFC 8417 §2.2): its event stays true.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        Self { validation }
    }

    fn verify(&self, keys: &KeyStore, set: &str) -> Result<SetClaims, SetError> {
        if set.len() > 4 * crate::MAX_TOKEN_LEN {
            return Err(SetError::Malformed);
        }
        let header = jsonwebtoken::decode_header(set).map_err(|_| SetError::Malformed)?;
        let typ = header.typ.as_deref().unwrap_or_default();
        if !(typ.eq_ignore_ascii_case("secevent+jwt")
            || typ.eq_ignore_ascii_case("application/secevent+jwt"))
        {
            return Err(SetError::Type);
        }
        if header.alg != Algorithm::ES256 {
            return Err(SetError::Algorithm);
        }
        let kid = header.kid.ok_or(SetError::UnknownKey)?;
        let key = keys.get(&kid).ok_or(SetError::UnknownKey)?;
        jsonwebtoken::decode::<SetClaims>(set, &key, &self.validation)
            .map(|d| d.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::InvalidSignature => SetError::Signature,
                ErrorKind::InvalidAudience => SetError::Audience,
                ErrorKind::InvalidIssuer => SetError::Issuer,
                ErrorKind::InvalidAlgorithm => SetError::Algorithm,
                _ => SetError::Malformed,
            })
    }

    /// The change a feed message (not a heartbeat) makes, once its SET is verified.
    pub(crate) fn event(&self, keys: &KeyStore, msg: &SecurityEvent) -> Result<Event, SetError> {
        let kind = EventType::from_uri(&msg.event_type).ok_or(SetError::UnknownType)?;
        let claims = self.verify(keys, &msg.set)?;
        let body = claims
            .events
            .get(&msg.event_type)
            .ok_or(SetError::Mismatch(
                "its events do not name the message's type",
            ))?;
        let mut ids = Vec::new();
        subject_ids(&claims.sub_id, &mut ids, 0);
        if !ids.iter().any(|id| *id == msg.subject_id) {
            return Err(SetError::Mismatch("its sub_id does not name the subject"));
        }
        let at = event_time(body, msg, claims.iat);
        let account = || -> Result<SubjectId, SetError> {
            let id = Uuid::parse_str(&msg.subject_id)
                .map_err(|_| SetError::Mismatch("the subject is not a UUID"))?;
            match SubjectKind::try_from(msg.subject_kind) {
                Ok(SubjectKind::User) => Ok(SubjectId::new(id, false)),
                Ok(SubjectKind::ServiceAccount) => Ok(SubjectId::new(id, true)),
                _ => Err(SetError::Mismatch("the subject is not an account")),
            }
        };
        let change = match kind {
            EventType::SessionRevoked => {
                let sid = Uuid::parse_str(&msg.session_id)
                    .map_err(|_| SetError::Mismatch("no session id"))?;
                if !ids.iter().any(|id| *id == msg.session_id) {
                    return Err(SetError::Mismatch("its sub_id does not name the session"));
                }
                account()?;
                Change::SessionRevoked(SessionId::from_uuid(sid))
            }
            EventType::AccountDisabled | EventType::AccountPurged => Change::Disabled(account()?),
            EventType::AccountEnabled => Change::Enabled(account()?),
            EventType::CredentialChange => Change::Refresh(account()?),
            EventType::TokenClaimsChange if msg.subject_kind == SubjectKind::Role as i32 => {
                Change::Role {
                    name: msg.subject_id.clone(),
                    permissions: signed_list(body, "permissions"),
                }
            }
            EventType::TokenClaimsChange => Change::Refresh(account()?),
        };
        Ok(Event { kind, change, at })
    }
}

/// The identifiers an RFC 9493 subject names: `id` (and `sub`) of the
/// subject itself and of its members one level down (a complex subject's
/// `user`, `session`, ...).
fn subject_ids<'a>(v: &'a Value, out: &mut Vec<&'a str>, depth: u8) {
    let Value::Object(map) = v else { return };
    for key in ["id", "sub"] {
        if let Some(Value::String(s)) = map.get(key) {
            out.push(s);
        }
    }
    if depth < 2 {
        for member in map.values() {
            subject_ids(member, out, depth + 1);
        }
    }
}

/// When the event happened: the signed CAEP `event_timestamp`; without it
/// the message's `event_time`, never later than the SET's signed `iat`.
fn event_time(body: &Value, msg: &SecurityEvent, iat: i64) -> i64 {
    if let Some(t) = body.get("event_timestamp").and_then(Value::as_i64) {
        return t;
    }
    msg.event_time.as_ref().map_or(iat, |t| t.seconds.min(iat))
}

/// A list of strings the event body signs, as `claims.{name}` (CAEP
/// token-claims-change) or `{name}`.
fn signed_list(body: &Value, name: &str) -> Option<Vec<String>> {
    let list = body
        .get("claims")
        .and_then(|c| c.get(name))
        .or_else(|| body.get(name))?
        .as_array()?;
    list.iter().map(|v| v.as_str().map(str::to_owned)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_ids_of_simple_and_complex_subjects() {
        let mut ids = Vec::new();
        let simple = serde_json::json!({"format": "opaque", "id": "a"});
        subject_ids(&simple, &mut ids, 0);
        assert_eq!(ids, ["a"]);
        let complex = serde_json::json!({"format": "complex",
            "user": {"format": "opaque", "id": "u"},
            "session": {"format": "opaque", "id": "s"}});
        let mut ids = Vec::new();
        subject_ids(&complex, &mut ids, 0);
        ids.sort_unstable();
        assert_eq!(ids, ["s", "u"]);
    }
}
