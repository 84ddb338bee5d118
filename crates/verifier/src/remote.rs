//! The fallback: asking the Auth Service's `ValidateToken` while the feed is
//! stale. Slower (a network hop) but exact; an unreachable Auth Service is
//! still [`Rejection::Stale`], never a pass.

use crate::claims::Claims;
use crate::feed::CALL_TIMEOUT;
use crate::rejection::Rejection;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use identity_proto::auth::v1::{SubjectKind, ValidateTokenRequest};
use platform::ids::{SessionId, SubjectId};
use tonic::Code;
use tonic::transport::Channel;
use uuid::Uuid;

/// `token`'s claims as the Auth Service sees them now.
pub(crate) async fn validate(
    client: &AuthServiceClient<Channel>,
    token: &str,
) -> Result<Claims, Rejection> {
    let mut request = tonic::Request::new(ValidateTokenRequest {
        access_token: token.to_owned(),
    });
    request.set_timeout(CALL_TIMEOUT);
    let reply = match client.clone().validate_token(request).await {
        Ok(r) => r.into_inner(),
        Err(s) if matches!(s.code(), Code::Unauthenticated | Code::InvalidArgument) => {
            return Err(reason(s.message()));
        }
        Err(s) => {
            tracing::warn!(code = ?s.code(), "ValidateToken fallback failed");
            return Err(Rejection::Stale);
        }
    };
    let uuid = |s: &str| Uuid::parse_str(s).map_err(|_| Rejection::Stale);
    let service = reply.subject_kind == SubjectKind::ServiceAccount as i32;
    let mut permissions = reply.permissions;
    permissions.sort_unstable();
    Ok(Claims {
        subject: SubjectId::new(uuid(&reply.user_id)?, service),
        session_id: SessionId::from_uuid(uuid(&reply.session_id)?),
        roles: reply.roles,
        permissions,
        email_verified: reply.email_verified,
        amr: reply.amr,
        expires_at: reply.expires_at.map_or(0, |t| t.seconds),
        issued_at: reply.issued_at.map_or(0, |t| t.seconds),
        token_id: Uuid::parse_str(&reply.token_id).unwrap_or_default(),
    })
}

/// The rejection an Auth Service refusal message describes.
fn reason(message: &str) -> Rejection {
    let m = message.to_ascii_lowercase();
    if m.contains("expired") {
        Rejection::Expired
    } else if m.contains("revoked") {
        Rejection::Revoked
    } else if m.contains("disabled") || m.contains("deleted") {
        Rejection::Disabled
    } else {
        Rejection::Invalid
    }
}
