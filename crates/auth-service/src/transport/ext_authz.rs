//! Envoy external authorization (`envoy.service.auth.v3.Authorization/Check`) on
//! the gRPC port: Envoy, Istio, Envoy Gateway, Contour and Gloo speak it. Route
//! requirements come from `context_extensions` (`permission`, `resource`).
//! The path decided on is the one Envoy forwards (after its own
//! `normalize_path`, when configured); one the upstream could read differently
//! is refused with 400.

use crate::context::Context;
use crate::gateway::{Access, Verdict};
use envoy_types::ext_authz::v3::pb::{
    Authorization, CheckRequest, CheckResponse, HeaderAppendAction, HttpStatusCode,
};
use envoy_types::ext_authz::v3::{
    CheckResponseExt, DeniedHttpResponseBuilder, OkHttpResponseBuilder,
};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The fully qualified method Envoy calls.
pub const CHECK_METHOD: &str = "/envoy.service.auth.v3.Authorization/Check";

/// The `Authorization` service.
#[derive(Debug, Clone)]
pub struct ExtAuthz {
    core: Arc<Context>,
    /// Whether the upstream still receives the `authorization` header.
    keep_authorization: bool,
}

impl ExtAuthz {
    pub fn new(core: Arc<Context>, keep_authorization: bool) -> Self {
        Self {
            core,
            keep_authorization,
        }
    }
}

#[tonic::async_trait]
impl Authorization for ExtAuthz {
    async fn check(
        &self,
        request: Request<CheckRequest>,
    ) -> Result<Response<CheckResponse>, Status> {
        let check = request.into_inner();
        let attributes = check.attributes.as_ref();
        let http = attributes
            .and_then(|a| a.request.as_ref())
            .and_then(|r| r.http.as_ref());
        let extension = |key: &str| {
            attributes
                .and_then(|a| a.context_extensions.get(key))
                .map(String::as_str)
                .filter(|v| !v.is_empty())
        };
        let access = Access {
            authorization: http.and_then(|h| h.headers.get("authorization").map(String::as_str)),
            target: http.map_or(&[][..], |h| h.path.as_bytes()),
            permission: extension("permission"),
            resource: extension("resource"),
            amr: extension("amr"),
        };
        // Our own trouble is a gRPC error: Envoy's `failure_mode_allow` decides.
        let verdict = self.core.gateway(&access)?;
        Ok(Response::new(self.response(verdict)))
    }
}

impl ExtAuthz {
    fn response(&self, verdict: Verdict) -> CheckResponse {
        let mut response = CheckResponse::new();
        let challenge = verdict.challenge();
        let (status, http, reason) = match verdict {
            Verdict::Allow(forwarded) => {
                let mut ok = OkHttpResponseBuilder::new();
                // Overwrite, so a client-supplied value never reaches the upstream.
                for (name, value) in forwarded.headers() {
                    ok.add_header(
                        name,
                        value,
                        Some(HeaderAppendAction::OverwriteIfExistsOrAdd),
                        true,
                    );
                }
                if !self.keep_authorization {
                    ok.remove_header("authorization");
                }
                response.set_status(Status::ok("")).set_http_response(ok);
                return response;
            }
            Verdict::Unauthenticated { reason, .. } => (
                Status::unauthenticated(reason.clone()),
                HttpStatusCode::Unauthorized,
                reason,
            ),
            Verdict::Forbidden(reason) => (
                Status::permission_denied(reason.clone()),
                HttpStatusCode::Forbidden,
                reason,
            ),
            Verdict::Malformed(reason) => (
                Status::invalid_argument(reason.clone()),
                HttpStatusCode::BadRequest,
                reason,
            ),
        };
        // The HTTP status goes in the denial itself: without one, Envoy answers
        // 403 to everything, and maps 401/403 to gRPC codes for gRPC clients.
        let mut denied = DeniedHttpResponseBuilder::new();
        denied.set_http_status(http).set_body(format!("{reason}\n"));
        if let Some(challenge) = challenge {
            denied.add_header("www-authenticate", challenge, None, false);
        }
        response.set_status(status).set_http_response(denied);
        response
    }
}
