//! Mapping between stored records and their protobuf messages.

use crate::access::RoleRecord;
use crate::access::SubjectKind;
use crate::access::authz::Principal;
use crate::accounts::ServiceAccountRecord;
use crate::audit::AuditRecord;
use crate::context::{IssuedTokens, LoginOutcome};
use crate::sessions::SessionRecord;
use identity_proto::auth::v1 as pb;
use platform::grpc::timestamp;
use secrecy::ExposeSecret;

pub fn seconds(s: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: s,
        nanos: 0,
    }
}

/// Names or permissions as the proto's strings.
pub fn texts(v: &[impl ToString]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

pub fn kind(k: SubjectKind) -> i32 {
    match k {
        SubjectKind::User => pb::SubjectKind::User as i32,
        SubjectKind::Service => pb::SubjectKind::ServiceAccount as i32,
    }
}

/// A session's tokens as one of the three responses that carry them
/// (LoginResponse, RefreshTokenResponse, VerifyMfaResponse: the same fields).
macro_rules! tokens {
    ($response:path, $t:expr $(, ..$base:expr)?) => {{
        let t: IssuedTokens = $t;
        $response {
            access_token: t.access_token,
            refresh_token: t.refresh_token.expose_secret().to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in: t.expires_in,
            session_id: t.session_id.to_string(),
            user_id: t.user_id.to_string(),
            refresh_expires_at: Some(timestamp(t.refresh_expires_at)),
            $(..$base)?
        }
    }};
}

pub fn login_outcome(o: LoginOutcome) -> pb::LoginResponse {
    match o {
        LoginOutcome::Tokens(t) => tokens!(pb::LoginResponse, t, ..Default::default()),
        LoginOutcome::MfaRequired(c) => pb::LoginResponse {
            mfa_challenge: c.challenge.expose_secret().to_owned(),
            mfa_challenge_expires_at: Some(timestamp(c.expires_at)),
            ..Default::default()
        },
    }
}

pub fn verified_mfa(t: IssuedTokens) -> pb::VerifyMfaResponse {
    tokens!(pb::VerifyMfaResponse, t)
}

pub fn refreshed(t: IssuedTokens) -> pb::RefreshTokenResponse {
    tokens!(pb::RefreshTokenResponse, t)
}

pub fn validated(p: Principal) -> pb::ValidateTokenResponse {
    pb::ValidateTokenResponse {
        user_id: p.subject_id.to_string(),
        session_id: p.session_id.to_string(),
        roles: texts(&p.roles),
        expires_at: Some(seconds(p.expires_at)),
        token_id: p.token_id.to_string(),
        issued_at: Some(seconds(p.issued_at)),
        permissions: texts(&p.permissions),
        subject_kind: kind(p.subject_id.kind()),
        email_verified: p.email_verified,
        amr: p.amr,
    }
}

pub fn role(r: RoleRecord) -> pb::Role {
    pb::Role {
        name: r.name.to_string(),
        description: r.description,
        permissions: texts(&r.permissions),
        builtin: r.builtin,
        create_time: Some(timestamp(r.created_at)),
        update_time: Some(timestamp(r.updated_at)),
    }
}

pub fn account(a: ServiceAccountRecord) -> pb::ServiceAccount {
    pb::ServiceAccount {
        id: a.id.to_string(),
        name: a.name,
        client_id: a.client_id,
        roles: texts(&a.roles),
        create_time: Some(timestamp(a.created_at)),
    }
}

pub fn session(s: SessionRecord, current: platform::ids::SessionId) -> pb::Session {
    pb::Session {
        id: s.id.to_string(),
        user_id: s.user_id.to_string(),
        create_time: Some(timestamp(s.created_at)),
        last_use_time: Some(timestamp(s.last_used_at)),
        client_address: s.client_address.unwrap_or_default(),
        user_agent: s.user_agent.unwrap_or_default(),
        current: s.id == current,
    }
}

pub fn audit(e: AuditRecord) -> pb::AuditEvent {
    pb::AuditEvent {
        id: e.id.to_string(),
        time: Some(timestamp(e.at)),
        kind: e.kind,
        actor_id: e.actor_id.unwrap_or_default(),
        subject: e.subject.unwrap_or_default(),
        client_address: e.client_address.unwrap_or_default(),
        details: e.details.into_iter().collect(),
    }
}

/// A published key in the proto's shape. The proto's fields are the JWK's JSON
/// members (RFC 7517/7518), so the library's own serialisation spells them.
pub fn json_web_key(jwk: &jsonwebtoken::jwk::Jwk) -> Option<pb::JsonWebKey> {
    let json = serde_json::to_value(jwk).ok()?;
    let member = |name: &str| {
        json.get(name)
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    Some(pb::JsonWebKey {
        kty: member("kty"),
        crv: member("crv"),
        x: member("x"),
        y: member("y"),
        kid: member("kid"),
        alg: member("alg"),
        r#use: member("use"),
    })
}

/// An import's totals and first failures.
pub fn import_report(r: crate::import::Report) -> pb::ImportIdentitiesResponse {
    let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    pb::ImportIdentitiesResponse {
        imported: count(r.tally.imported),
        skipped: count(r.tally.skipped),
        failed: count(r.tally.failed),
        failures: r
            .failures
            .into_iter()
            .map(|(line, reason)| pb::ImportFailure {
                line: count(line),
                reason,
            })
            .collect(),
        failures_omitted: count(r.failures_omitted),
    }
}
