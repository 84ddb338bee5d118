//! A `tower::Layer` (axum and tonic servers alike) and a tonic interceptor
//! that verify the `authorization: Bearer` header (parsed and size-bounded as
//! `platform::access::parse_bearer` does) and put [`Claims`] into the request
//! extensions. A refused request never reaches the service: gRPC requests get
//! a trailers-only `UNAUTHENTICATED` (`UNAVAILABLE` when stale), others an
//! HTTP 401 (503) with a `WWW-Authenticate` header; the message says what to
//! do (log in again, refresh the token, retry).

use crate::claims::Claims;
use crate::rejection::Rejection;
use crate::verifier::Verifier;
use futures::future::BoxFuture;
use http::{HeaderValue, Request, Response, StatusCode, header};
use std::task::{Context, Poll};

/// Why the header was refused, before any verification.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    Header(&'static str),
    Token(Rejection),
}

impl Refusal {
    fn message(self) -> String {
        match self {
            Self::Header(m) => m.to_owned(),
            Self::Token(r) => r.to_string(),
        }
    }

    fn status(self) -> tonic::Status {
        match self {
            Self::Header(m) => tonic::Status::unauthenticated(m),
            Self::Token(r) => r.to_status(),
        }
    }
}

/// The bearer token of an `authorization` header value.
fn token_of<B>(req: &Request<B>) -> Result<&str, Refusal> {
    let value = req
        .headers()
        .get(header::AUTHORIZATION)
        .ok_or(Refusal::Header(
            "missing `authorization: Bearer <token>` header",
        ))?
        .to_str()
        .map_err(|_| Refusal::Header("the authorization header is not valid ASCII"))?;
    platform::access::parse_bearer(value).map_err(Refusal::Header)
}

/// Percent-encodes a `grpc-message` (gRPC over HTTP/2 spec).
fn grpc_message(m: &str) -> String {
    let mut out = String::with_capacity(m.len());
    for b in m.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn refusal_response<ReqB, ResB: Default>(req: &Request<ReqB>, refusal: Refusal) -> Response<ResB> {
    let grpc = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/grpc"));
    let mut resp = Response::new(ResB::default());
    if grpc {
        let headers = resp.headers_mut();
        let status = refusal.status();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        headers.insert("grpc-status", HeaderValue::from(status.code() as i32));
        if let Ok(v) = HeaderValue::from_str(&grpc_message(status.message())) {
            headers.insert("grpc-message", v);
        }
        return resp;
    }
    let (code, error) = match refusal {
        Refusal::Token(Rejection::Stale) => (StatusCode::SERVICE_UNAVAILABLE, None),
        Refusal::Header(_) => (StatusCode::UNAUTHORIZED, Some("invalid_request")),
        Refusal::Token(r) => (r.http_status(), Some("invalid_token")),
    };
    *resp.status_mut() = code;
    let headers = resp.headers_mut();
    if let Some(error) = error {
        let challenge = format!(
            "Bearer error=\"{error}\", error_description=\"{}\"",
            refusal.message().replace('"', "'")
        );
        if let Ok(v) = HeaderValue::from_str(&challenge) {
            headers.insert(header::WWW_AUTHENTICATE, v);
        }
    }
    resp
}

/// Verifies every request's bearer token; see the module documentation.
/// With `config.fallback` on, a stale feed asks `ValidateToken`.
#[derive(Debug, Clone)]
pub struct VerifyLayer {
    verifier: Verifier,
}

impl VerifyLayer {
    /// A layer over `verifier`.
    pub fn new(verifier: Verifier) -> Self {
        Self { verifier }
    }
}

impl<S> tower::Layer<S> for VerifyLayer {
    type Service = VerifyService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        VerifyService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service [`VerifyLayer`] wraps.
#[derive(Debug, Clone)]
pub struct VerifyService<S> {
    inner: S,
    verifier: Verifier,
}

impl<S, ReqB, ResB> tower::Service<Request<ReqB>> for VerifyService<S>
where
    S: tower::Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqB: Send + 'static,
    ResB: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        // The ready service goes to this call; its clone stays for the next one.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            let verdict = match token_of(&req) {
                Ok(token) => verifier
                    .verify_or_fallback(token)
                    .await
                    .map_err(Refusal::Token),
                Err(r) => Err(r),
            };
            match verdict {
                Ok(claims) => {
                    req.extensions_mut().insert(claims);
                    inner.call(req).await
                }
                Err(refusal) => Ok(refusal_response(&req, refusal)),
            }
        })
    }
}

/// A tonic interceptor doing what [`VerifyLayer`] does, synchronously (no
/// fallback): `Server::add_service(InterceptedService::new(svc, verifier.interceptor()))`
/// or `FooServer::with_interceptor(svc, verifier.interceptor())`.
#[derive(Debug, Clone)]
pub struct VerifyInterceptor {
    verifier: Verifier,
}

impl tonic::service::Interceptor for VerifyInterceptor {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        let claims: Claims = {
            let token = platform::access::bearer(req.metadata())?;
            self.verifier.verify(token)?
        };
        req.extensions_mut().insert(claims);
        Ok(req)
    }
}

impl Verifier {
    /// A [`VerifyLayer`] over this verifier.
    pub fn layer(&self) -> VerifyLayer {
        VerifyLayer::new(self.clone())
    }

    /// A [`VerifyInterceptor`] over this verifier.
    pub fn interceptor(&self) -> VerifyInterceptor {
        VerifyInterceptor {
            verifier: self.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_messages_are_percent_encoded() {
        assert_eq!(grpc_message("a b: c"), "a b: c");
        assert_eq!(grpc_message("50% é\n"), "50%25 %C3%A9%0A");
    }
}
