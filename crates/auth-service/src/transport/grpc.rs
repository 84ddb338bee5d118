//! gRPC handlers: request → domain types → [`Authenticator`] → response. Nothing else.

use crate::domain::{DisplayName, Email, FieldViolation, NewPassword, Password};
use crate::error::AuthError;
use crate::service::{Authenticator, IssuedTokens};
use identity_proto::auth::v1 as pb;
use identity_proto::auth::v1::auth_service_server::AuthService;
use platform::caller::ServiceSecret;
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// Bound on opaque token fields; a real refresh token is 43 characters.
const MAX_REFRESH_TOKEN_LEN: usize = 512;

/// The `identity.auth.v1.AuthService` implementation.
#[derive(Debug, Clone)]
pub struct AuthGrpc {
    core: Arc<Authenticator>,
    service_secret: Option<ServiceSecret>,
}

impl AuthGrpc {
    /// Handlers over `core`; internal RPCs accept callers presenting `service_secret`.
    pub fn new(core: Arc<Authenticator>, service_secret: Option<ServiceSecret>) -> Self {
        Self {
            core,
            service_secret,
        }
    }

    /// Admits internal services only.
    fn require_service(&self, metadata: &tonic::metadata::MetadataMap) -> Result<(), Status> {
        let token = platform::caller::bearer(metadata)?;
        match &self.service_secret {
            Some(secret) if secret.matches(token) => Ok(()),
            _ => Err(Status::permission_denied(
                "this RPC is for internal services only",
            )),
        }
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn seconds(s: i64) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: s,
        nanos: 0,
    }
}

fn refresh_token(raw: String) -> Result<SecretString, AuthError> {
    if raw.is_empty() {
        return Err(FieldViolation::new("refresh_token", "is required").into());
    }
    if raw.len() > MAX_REFRESH_TOKEN_LEN {
        return Err(
            FieldViolation::new("refresh_token", "is too long to be a refresh token").into(),
        );
    }
    Ok(SecretString::from(raw))
}

macro_rules! token_response {
    ($ty:ident, $t:expr) => {{
        let t: IssuedTokens = $t;
        pb::$ty {
            access_token: t.access_token,
            refresh_token: t.refresh_token.expose_secret().to_owned(),
            token_type: "Bearer".to_owned(),
            expires_in: t.expires_in,
            session_id: t.session_id.to_string(),
            user_id: t.user_id.to_string(),
            refresh_expires_at: Some(timestamp(t.refresh_expires_at)),
        }
    }};
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn register(
        &self,
        request: Request<pb::RegisterRequest>,
    ) -> Result<Response<pb::RegisterResponse>, Status> {
        let r = request.into_inner();
        let email = Email::parse(&r.email, "email").map_err(AuthError::from)?;
        let password = NewPassword::parse(r.password, "password").map_err(AuthError::from)?;
        let name = DisplayName::parse(&r.display_name, "display_name").map_err(AuthError::from)?;
        let id = self.core.register(email, password, name).await?;
        Ok(Response::new(pb::RegisterResponse {
            user_id: id.to_string(),
        }))
    }

    async fn login(
        &self,
        request: Request<pb::LoginRequest>,
    ) -> Result<Response<pb::LoginResponse>, Status> {
        let r = request.into_inner();
        let email = Email::parse(&r.email, "email").map_err(AuthError::from)?;
        let password = Password::parse(r.password, "password").map_err(AuthError::from)?;
        let tokens = self.core.login(email, password).await?;
        Ok(Response::new(token_response!(LoginResponse, tokens)))
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Result<Response<pb::RefreshTokenResponse>, Status> {
        let token = refresh_token(request.into_inner().refresh_token)?;
        let tokens = self.core.refresh(&token).await?;
        Ok(Response::new(token_response!(RefreshTokenResponse, tokens)))
    }

    async fn logout(
        &self,
        request: Request<pb::LogoutRequest>,
    ) -> Result<Response<pb::LogoutResponse>, Status> {
        let token = refresh_token(request.into_inner().refresh_token)?;
        self.core.logout(&token).await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn validate_token(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Result<Response<pb::ValidateTokenResponse>, Status> {
        let token = request.into_inner().access_token;
        if token.is_empty() {
            return Err(AuthError::from(FieldViolation::new("access_token", "is required")).into());
        }
        let c = self.core.validate(&token)?;
        Ok(Response::new(pb::ValidateTokenResponse {
            user_id: c.sub.to_string(),
            session_id: c.sid.to_string(),
            roles: c.roles,
            expires_at: Some(seconds(c.exp)),
            token_id: c.jti.to_string(),
            issued_at: Some(seconds(c.iat)),
        }))
    }

    async fn get_jwks(
        &self,
        _request: Request<pb::GetJwksRequest>,
    ) -> Result<Response<pb::GetJwksResponse>, Status> {
        let keys = self.core.key_set()?;
        Ok(Response::new(pb::GetJwksResponse {
            jwks_json: keys.jwks_json.clone(),
            keys: keys
                .jwks
                .iter()
                .map(|k| pb::JsonWebKey {
                    kty: k.kty.to_owned(),
                    crv: k.crv.to_owned(),
                    x: k.x.clone(),
                    y: k.y.clone(),
                    kid: k.kid.clone(),
                    alg: k.alg.to_owned(),
                    r#use: k.use_.to_owned(),
                })
                .collect(),
        }))
    }

    async fn disable_user(
        &self,
        request: Request<pb::DisableUserRequest>,
    ) -> Result<Response<pb::DisableUserResponse>, Status> {
        self.require_service(request.metadata())?;
        let r = request.into_inner();
        let user_id = uuid::Uuid::parse_str(&r.user_id)
            .map_err(|_| AuthError::from(FieldViolation::new("user_id", "must be a UUID")))?;
        if r.reason.chars().count() > 200 {
            return Err(AuthError::from(FieldViolation::new(
                "reason",
                "must be at most 200 characters",
            ))
            .into());
        }
        let reason = if r.reason.is_empty() {
            "disabled"
        } else {
            r.reason.as_str()
        };
        self.core.disable_user(user_id, reason).await?;
        Ok(Response::new(pb::DisableUserResponse {}))
    }
}
