//! Security Event Tokens (RFC 8417): each event as a compact JWS that any JWT
//! library verifies with the published JWKS, `typ: secevent+jwt` so that no
//! verifier of access tokens mistakes one for an access token (RFC 8417 §2.3),
//! the subject as an RFC 9493 subject identifier.

use super::model::*;
use crate::keys::KeySet;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

/// The `typ` header of every SET.
pub const SET_TYP: &str = "secevent+jwt";

fn opaque(id: &str) -> Value {
    json!({ "format": "opaque", "id": id })
}

/// RFC 9493 `sub_id`: the user or account alone, with its session where one
/// ended, or a role as the `group` of a complex identifier.
fn subject_identifier(signal: &Signal) -> Value {
    let (id, _) = signal.subject.stored();
    match (&signal.subject, signal.session) {
        (SignalSubject::Role(_), _) => json!({ "format": "complex", "group": opaque(&id) }),
        (_, Some(session)) => json!({
            "format": "complex",
            "user": opaque(&id),
            "session": opaque(&session.to_string()),
        }),
        (_, None) => opaque(&id),
    }
}

/// The event's claims under its type URI (CAEP names; RISC's need none).
fn event_claims(signal: &Signal) -> Value {
    let d = &signal.detail;
    let mut e = serde_json::Map::new();
    e.insert("event_timestamp".into(), json!(signal.at.timestamp()));
    match signal.kind {
        SignalKind::SessionRevoked => {
            if let Some(reason) = &d.reason {
                e.insert("reason_admin".into(), json!({ "en": reason }));
            }
        }
        SignalKind::CredentialChange => {
            e.insert("credential_type".into(), json!(d.credential_type));
            e.insert("change_type".into(), json!(d.change_type));
        }
        SignalKind::TokenClaimsChange => {
            let claims = match (&d.roles, &d.permissions) {
                (Some(roles), _) => json!({ "roles": roles }),
                (None, Some(permissions)) => json!({ "permissions": permissions }),
                (None, None) => json!({}),
            };
            e.insert("claims".into(), claims);
        }
        SignalKind::AccountDisabled | SignalKind::AccountEnabled | SignalKind::AccountPurged => {
            if let Some(reason) = &d.reason {
                e.insert("reason_admin".into(), json!({ "en": reason }));
            }
        }
    }
    Value::Object(e)
}

/// The SET of `signal` from `issuer` for the subscriber `audience`.
pub fn seal(
    keys: &KeySet,
    issuer: &str,
    audience: &str,
    signal: &Signal,
    now: DateTime<Utc>,
) -> Result<String, jsonwebtoken::errors::Error> {
    let claims = json!({
        "iss": issuer,
        "aud": audience,
        "jti": signal.id.to_string(),
        "iat": now.timestamp(),
        "sub_id": subject_identifier(signal),
        "events": { signal.kind.uri(): event_claims(signal) },
    });
    let mut header = Header::new(Algorithm::ES256);
    header.typ = Some(SET_TYP.to_owned());
    header.kid = Some(keys.signing.kid.clone());
    jsonwebtoken::encode(&header, &claims, &keys.signing.encoding)
}
