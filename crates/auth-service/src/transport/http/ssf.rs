//! The Shared Signals routes for receivers that are not Rust: the SSF 1.0
//! transmitter metadata and RFC 8936 poll delivery, authenticated with the
//! service account's client credentials (HTTP Basic). Errors use RFC 8936's
//! JSON form (`err`, `description`).

use super::{HttpState, basic_credentials, service_fault, throttled};
use crate::error::AuthError;
use crate::signals::poll::{DEFAULT_EVENTS, MAX_ACKS, MAX_EVENTS};
use crate::signals::{PollRequest, SetError, Signals};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Where receivers poll.
pub const POLL_PATH: &str = "/ssf/poll";
/// RFC 8936 poll delivery's URN.
const POLL_METHOD: &str = "urn:ietf:rfc:8936";
/// The largest poll body: a full `ack` list and `setErrs` with descriptions.
const MAX_BODY: usize = 512 * 1024;
/// The longest `err` code and `description` of a `setErrs` entry.
const MAX_ERR: usize = 64;
const MAX_DESCRIPTION: usize = 1024;

pub fn routes() -> Router<Arc<HttpState>> {
    Router::new()
        .route("/.well-known/ssf-configuration", get(configuration))
        .route(POLL_PATH, post(poll).layer(DefaultBodyLimit::max(MAX_BODY)))
}

/// SSF 1.0 §7.1: only what this transmitter does. There is no stream
/// management API (one implicit stream per service account, every subject,
/// every event type), so the poll URL, which SSF puts in a stream's
/// `delivery`, is given here as `delivery` of that implicit stream.
async fn configuration(State(s): State<Arc<HttpState>>) -> Response {
    let base = &s.public_url;
    let body = json!({
        "spec_version": "1_0",
        "issuer": s.issuer,
        "jwks_uri": format!("{base}/.well-known/jwks.json"),
        "delivery_methods_supported": [POLL_METHOD],
        "delivery": {
            "method": POLL_METHOD,
            "endpoint_url": format!("{base}{POLL_PATH}"),
        },
        "authorization_schemes": [{ "spec_urn": "urn:ietf:rfc:6749" }],
        "default_subjects": "ALL",
    });
    (
        [(header::CACHE_CONTROL, "public, max-age=3600")],
        Json(body),
    )
        .into_response()
}

/// RFC 8936 §2.4's request, as sent; checked into a [`PollRequest`].
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PollBody {
    max_events: Option<i64>,
    return_immediately: Option<bool>,
    #[serde(default)]
    ack: Vec<String>,
    #[serde(default)]
    set_errs: HashMap<String, SetErrBody>,
    /// Not RFC 8936: start over at the oldest event kept (after a
    /// `resync_required` error).
    #[serde(default)]
    resync: bool,
}

#[derive(Debug, Deserialize)]
struct SetErrBody {
    err: String,
    #[serde(default)]
    description: String,
}

/// A 400 in RFC 8936's error form.
fn invalid(description: impl Into<String>) -> Response {
    error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        &description.into(),
    )
}

fn error(status: StatusCode, err: &str, description: &str) -> Response {
    let mut r = (
        status,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "err": err, "description": description })),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static(r#"Basic realm="ssf""#),
        );
    }
    r
}

/// A jti this transmitter wrote: a UUID. `Err`: why not (a 400's description).
fn jti(text: &str, field: &str) -> Result<Uuid, String> {
    if text.len() > 64 {
        return Err(format!("{field}: a jti is at most 64 characters"));
    }
    Uuid::parse_str(text).map_err(|_| {
        format!(
            "{field}: {:?} is not a jti of this transmitter (a UUID)",
            text.chars().take(64).collect::<String>()
        )
    })
}

impl PollBody {
    /// The poll these fields ask for; `Err`: why they do not (a 400's description).
    fn check(self) -> Result<PollRequest, String> {
        let max_events = match self.max_events {
            None => DEFAULT_EVENTS,
            Some(n) if (0..=MAX_EVENTS as i64).contains(&n) => n as usize,
            Some(_) => return Err(format!("maxEvents must be 0 to {MAX_EVENTS}")),
        };
        if self.ack.len() > MAX_ACKS || self.set_errs.len() > MAX_ACKS {
            return Err(format!(
                "at most {MAX_ACKS} jtis in ack, and {MAX_ACKS} in setErrs"
            ));
        }
        let acks = self
            .ack
            .iter()
            .map(|t| jti(t, "ack"))
            .collect::<Result<_, _>>()?;
        let errors = self
            .set_errs
            .into_iter()
            .map(|(id, e)| {
                if e.err.is_empty()
                    || e.err.len() > MAX_ERR
                    || e.description.len() > MAX_DESCRIPTION
                {
                    return Err(format!(
                        "setErrs: err is 1 to {MAX_ERR} characters, description at most \
                         {MAX_DESCRIPTION}"
                    ));
                }
                Ok(SetError {
                    jti: jti(&id, "setErrs")?,
                    err: e.err,
                    description: e.description,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(PollRequest {
            max_events,
            return_immediately: self.return_immediately.unwrap_or(false),
            acks,
            errors,
            resync: self.resync,
        })
    }
}

async fn poll(
    State(s): State<Arc<HttpState>>,
    extensions: axum::http::Extensions,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Ok((client_id, secret)) = basic_credentials(&headers) else {
        return error(
            StatusCode::UNAUTHORIZED,
            "authentication_failed",
            "authenticate with the service account's client id and secret (HTTP Basic)",
        );
    };
    let signals = Signals(&s.core);
    let audience = match signals
        .poll_subscriber(&client_id, &secret, &s.client(&extensions, &headers))
        .await
    {
        Ok(a) => a,
        Err(e) => return failure(e),
    };
    // An empty body is a poll with every default.
    let text = if body.iter().all(u8::is_ascii_whitespace) {
        &b"{}"[..]
    } else {
        &body[..]
    };
    let request = match serde_json::from_slice::<PollBody>(text) {
        Ok(b) => match b.check() {
            Ok(r) => r,
            Err(why) => return invalid(why),
        },
        Err(e) => return invalid(format!("not an RFC 8936 poll request: {e}")),
    };
    let answer = match signals.poll(&audience, &request).await {
        Ok(a) => a,
        Err(e) => return failure(e),
    };
    let sets: Map<String, Value> = answer
        .sets
        .into_iter()
        .map(|(jti, set)| (jti.to_string(), Value::String(set)))
        .collect();
    (
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "sets": sets, "moreAvailable": answer.more_available })),
    )
        .into_response()
}

/// The service's errors in RFC 8936's form.
fn failure(e: AuthError) -> Response {
    match e {
        AuthError::Unauthenticated(m) => {
            error(StatusCode::UNAUTHORIZED, "authentication_failed", &m)
        }
        AuthError::PermissionDenied(m) => error(StatusCode::FORBIDDEN, "access_denied", &m),
        AuthError::InvalidArgument(v) => invalid(v.to_string()),
        // Not an RFC 8936 code: the receiver must resynchronise, then poll
        // with `"resync": true`.
        AuthError::OutOfRange(m) => error(StatusCode::CONFLICT, "resync_required", &m),
        AuthError::Throttled(wait) => throttled(wait),
        other => service_fault(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(body: Value) -> Result<PollRequest, String> {
        serde_json::from_value::<PollBody>(body)
            .map_err(|e| e.to_string())?
            .check()
    }

    #[test]
    fn poll_bodies_are_bounded_and_defaulted() {
        let jti = Uuid::new_v4();
        let ok = check(json!({})).unwrap();
        assert_eq!(ok.max_events, DEFAULT_EVENTS);
        assert!(!ok.return_immediately && !ok.resync);
        let ok = check(json!({
            "maxEvents": 0, "returnImmediately": true, "ack": [jti.to_string()],
            "setErrs": {jti.to_string(): {"err": "invalid_key", "description": "bad"}},
        }))
        .unwrap();
        assert_eq!((ok.max_events, ok.acks, ok.errors.len()), (0, vec![jti], 1));
        assert_eq!(check(json!({"maxEvents": 1000})).unwrap().max_events, 1000);
        let many: Vec<String> = (0..=MAX_ACKS).map(|_| Uuid::new_v4().to_string()).collect();
        for bad in [
            json!({"maxEvents": 1001}),
            json!({"maxEvents": -1}),
            json!({"maxEvents": 1.5}),
            json!({"ack": ["nope"]}),
            json!({"ack": ["a".repeat(65)]}),
            json!({"ack": many}),
            json!({"ack": "not a list"}),
            json!({"setErrs": {"nope": {"err": "x"}}}),
            json!({"setErrs": {jti.to_string(): {"err": ""}}}),
            json!({"setErrs": {jti.to_string(): {"err": "x".repeat(65)}}}),
            json!({"setErrs": {jti.to_string(): {"err": "x", "description": "d".repeat(1025)}}}),
            json!({"setErrs": {jti.to_string(): {}}}),
        ] {
            assert!(check(bad.clone()).is_err(), "{bad}");
        }
    }
}
