//! gRPC handlers: request → domain types → [`Context`] → response. The
//! caller (from `authorization` metadata) and the client (address, user agent)
//! are resolved here; every decision is the core's.

mod convert;
mod import;
mod signals;

use super::client::TrustedProxies;
use crate::access::authz::Principal;
use crate::access::{NewRole, Permission, Resource, RoleName, Roles};
use crate::accounts::{Accounts, NewServiceAccount};
use crate::audit::Audit;
use crate::audit::AuditQuery;
use crate::audit::ClientInfo;
use crate::context::{Context, MfaCode};
use crate::credentials::Credentials;
use crate::domain::{DisplayName, Email, FieldViolation, NewPassword, Password};
use crate::error::AuthError;
use crate::import::Import;
use crate::mfa::Mfa;
use crate::recovery::Recovery;
use crate::sessions::Sessions;
use crate::signals::Signals;
use identity_proto::auth::v1 as pb;
use identity_proto::auth::v1::auth_service_server::AuthService;
use platform::ids::{ClientId, ServiceAccountId, SessionId, UserId};
use platform::paging::{Limits, PageRequest};
use secrecy::{ExposeSecret, SecretString};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// Bound on opaque token fields; a real refresh token is 43 characters.
const MAX_REFRESH_TOKEN_LEN: usize = 512;
/// Bound on DisableUser's free-text reason.
const MAX_REASON: usize = 200;

/// The `identity.auth.v1.AuthService` implementation.
#[derive(Debug, Clone)]
pub struct AuthGrpc {
    core: Arc<Context>,
    proxies: TrustedProxies,
}

type Reply<T> = Result<Response<T>, Status>;

impl AuthGrpc {
    /// Handlers over `core`, believing forwarded client metadata from `proxies`.
    pub fn new(core: Arc<Context>, proxies: TrustedProxies) -> Self {
        Self { core, proxies }
    }

    fn client<T>(&self, request: &Request<T>) -> ClientInfo {
        self.proxies
            .client(request.remote_addr(), request.metadata())
    }

    /// The authenticated caller and where they call from.
    fn caller<T>(&self, request: &Request<T>) -> Result<(Principal, ClientInfo), Status> {
        let bearer = platform::access::bearer(request.metadata())?;
        Ok((self.core.caller(Some(bearer))?, self.client(request)))
    }
}

fn required_secret(raw: String, field: &'static str) -> Result<SecretString, FieldViolation> {
    if raw.is_empty() {
        return Err(FieldViolation::new(field, "is required"));
    }
    if raw.len() > MAX_REFRESH_TOKEN_LEN {
        return Err(FieldViolation::new(field, "is too long"));
    }
    Ok(SecretString::from(raw))
}

fn uuid(raw: &str, field: &'static str) -> Result<Uuid, FieldViolation> {
    Uuid::parse_str(raw).map_err(|_| FieldViolation::new(field, "must be a UUID"))
}

/// An optional id field: empty means "not given".
fn optional<T>(
    raw: &str,
    field: &'static str,
    parse: fn(&str, &'static str) -> Result<T, FieldViolation>,
) -> Result<Option<T>, FieldViolation> {
    if raw.is_empty() {
        Ok(None)
    } else {
        parse(raw, field).map(Some)
    }
}

fn role_body(role: Option<pb::Role>) -> Result<NewRole, FieldViolation> {
    let r = role.ok_or_else(|| FieldViolation::new("role", "is required"))?;
    NewRole::parse(&r.name, &r.description, &r.permissions)
}

/// Page sizes of ListAuditEvents and ListSessions.
const PAGES: Limits = Limits {
    default: 50,
    max: 500,
};

/// A page cursor of time-ordered rows: (time in µs, id) of the previous page's last row.
fn time_cursor<I>(
    after: Option<(i64, I)>,
) -> Result<Option<(chrono::DateTime<chrono::Utc>, I)>, FieldViolation> {
    after
        .map(|(micros, id)| {
            chrono::DateTime::from_timestamp_micros(micros)
                .map(|at| (at, id))
                .ok_or_else(|| {
                    FieldViolation::new("page_token", "is not a token this service issued")
                })
        })
        .transpose()
}

#[tonic::async_trait]
impl AuthService for AuthGrpc {
    async fn register(&self, request: Request<pb::RegisterRequest>) -> Reply<pb::RegisterResponse> {
        let client = self.client(&request);
        let r = request.into_inner();
        let email = Email::parse(&r.email, "email")?;
        let password = NewPassword::parse(r.password, "password")?;
        let name = DisplayName::parse(&r.display_name, "display_name")?;
        let id = Credentials(&self.core)
            .register(email, password, name, &client)
            .await?;
        Ok(Response::new(pb::RegisterResponse {
            user_id: id.to_string(),
        }))
    }

    async fn login(&self, request: Request<pb::LoginRequest>) -> Reply<pb::LoginResponse> {
        let client = self.client(&request);
        let r = request.into_inner();
        let email = Email::parse(&r.email, "email")?;
        let password = Password::parse(r.password, "password")?;
        Ok(Response::new(convert::login_outcome(
            Credentials(&self.core)
                .login(email, password, &client)
                .await?,
        )))
    }

    async fn refresh_token(
        &self,
        request: Request<pb::RefreshTokenRequest>,
    ) -> Reply<pb::RefreshTokenResponse> {
        let client = self.client(&request);
        let token = required_secret(request.into_inner().refresh_token, "refresh_token")?;
        Ok(Response::new(convert::refreshed(
            Sessions(&self.core).refresh(&token, &client).await?,
        )))
    }

    async fn logout(&self, request: Request<pb::LogoutRequest>) -> Reply<pb::LogoutResponse> {
        let client = self.client(&request);
        let token = required_secret(request.into_inner().refresh_token, "refresh_token")?;
        Sessions(&self.core).logout(&token, &client).await?;
        Ok(Response::new(pb::LogoutResponse {}))
    }

    async fn validate_token(
        &self,
        request: Request<pb::ValidateTokenRequest>,
    ) -> Reply<pb::ValidateTokenResponse> {
        let token = request.into_inner().access_token;
        if token.is_empty() {
            return Err(FieldViolation::new("access_token", "is required").into());
        }
        Ok(Response::new(convert::validated(
            self.core.validate(&token)?,
        )))
    }

    async fn get_jwks(&self, _request: Request<pb::GetJwksRequest>) -> Reply<pb::GetJwksResponse> {
        let keys = self.core.key_set()?;
        let jwks = keys
            .jwks
            .keys
            .iter()
            .filter_map(convert::json_web_key)
            .collect();
        Ok(Response::new(pb::GetJwksResponse {
            jwks_json: keys.jwks_json.clone(),
            keys: jwks,
        }))
    }

    async fn disable_user(
        &self,
        request: Request<pb::DisableUserRequest>,
    ) -> Reply<pb::DisableUserResponse> {
        let (caller, client) = self.caller(&request)?;
        let r = request.into_inner();
        let user_id = UserId::parse(&r.user_id, "user_id")?;
        if r.reason.chars().count() > MAX_REASON {
            return Err(FieldViolation::new("reason", "must be at most 200 characters").into());
        }
        if r.reason.chars().any(char::is_control) {
            return Err(
                FieldViolation::new("reason", "must not contain control characters").into(),
            );
        }
        let reason = if r.reason.is_empty() {
            "disabled"
        } else {
            r.reason.as_str()
        };
        Credentials(&self.core)
            .disable_user(&caller, user_id, reason, r.purged, &client)
            .await?;
        Ok(Response::new(pb::DisableUserResponse {}))
    }

    async fn check_permission(
        &self,
        request: Request<pb::CheckPermissionRequest>,
    ) -> Reply<pb::CheckPermissionResponse> {
        let r = request.into_inner();
        if r.access_token.is_empty() {
            return Err(FieldViolation::new("access_token", "is required").into());
        }
        let permission = Permission::parse(&r.permission, "permission")?;
        let resource = Resource::parse(&r.resource, "resource")?;
        let (p, d) = self
            .core
            .check_permission(&r.access_token, &permission, resource.as_ref())?;
        Ok(Response::new(pb::CheckPermissionResponse {
            allowed: d.allowed,
            reason: d.reason,
            subject_id: p.subject_id.to_string(),
            subject_kind: convert::kind(p.subject_id.kind()),
            roles: convert::texts(&p.roles),
        }))
    }

    async fn create_role(
        &self,
        request: Request<pb::CreateRoleRequest>,
    ) -> Reply<pb::CreateRoleResponse> {
        let (caller, client) = self.caller(&request)?;
        let role = role_body(request.into_inner().role)?;
        let role = Roles(&self.core)
            .create_role(&caller, role, &client)
            .await?;
        Ok(Response::new(pb::CreateRoleResponse {
            role: Some(convert::role(role)),
        }))
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Reply<pb::ListRolesResponse> {
        let (caller, _) = self.caller(&request)?;
        let roles = Roles(&self.core).list_roles(&caller).await?;
        Ok(Response::new(pb::ListRolesResponse {
            roles: roles.into_iter().map(convert::role).collect(),
        }))
    }

    async fn update_role(
        &self,
        request: Request<pb::UpdateRoleRequest>,
    ) -> Reply<pb::UpdateRoleResponse> {
        let (caller, client) = self.caller(&request)?;
        let role = role_body(request.into_inner().role)?;
        let role = Roles(&self.core)
            .update_role(&caller, role, &client)
            .await?;
        Ok(Response::new(pb::UpdateRoleResponse {
            role: Some(convert::role(role)),
        }))
    }

    async fn delete_role(
        &self,
        request: Request<pb::DeleteRoleRequest>,
    ) -> Reply<pb::DeleteRoleResponse> {
        let (caller, client) = self.caller(&request)?;
        let name = RoleName::parse(&request.get_ref().name, "name")?;
        Roles(&self.core)
            .delete_role(&caller, &name, &client)
            .await?;
        Ok(Response::new(pb::DeleteRoleResponse {}))
    }

    async fn assign_role(
        &self,
        request: Request<pb::AssignRoleRequest>,
    ) -> Reply<pb::AssignRoleResponse> {
        let (caller, client) = self.caller(&request)?;
        let subject = uuid(&request.get_ref().subject_id, "subject_id")?;
        let role = RoleName::parse(&request.get_ref().role, "role")?;
        Roles(&self.core)
            .assign_role(&caller, subject, &role, true, &client)
            .await?;
        Ok(Response::new(pb::AssignRoleResponse {}))
    }

    async fn unassign_role(
        &self,
        request: Request<pb::UnassignRoleRequest>,
    ) -> Reply<pb::UnassignRoleResponse> {
        let (caller, client) = self.caller(&request)?;
        let subject = uuid(&request.get_ref().subject_id, "subject_id")?;
        let role = RoleName::parse(&request.get_ref().role, "role")?;
        Roles(&self.core)
            .assign_role(&caller, subject, &role, false, &client)
            .await?;
        Ok(Response::new(pb::UnassignRoleResponse {}))
    }

    async fn list_subject_roles(
        &self,
        request: Request<pb::ListSubjectRolesRequest>,
    ) -> Reply<pb::ListSubjectRolesResponse> {
        let (caller, _) = self.caller(&request)?;
        let subject = optional(&request.get_ref().subject_id, "subject_id", uuid)?;
        let (roles, permissions) = Roles(&self.core).subject_roles(&caller, subject).await?;
        Ok(Response::new(pb::ListSubjectRolesResponse {
            roles: convert::texts(&roles),
            permissions: convert::texts(&permissions),
        }))
    }

    async fn create_service_account(
        &self,
        request: Request<pb::CreateServiceAccountRequest>,
    ) -> Reply<pb::CreateServiceAccountResponse> {
        let (caller, client) = self.caller(&request)?;
        let r = request.into_inner();
        let account = NewServiceAccount::parse(&r.name, &r.roles)?;
        let (account, secret) = Accounts(&self.core)
            .create_service_account(Some(&caller), account, &client)
            .await?;
        Ok(Response::new(pb::CreateServiceAccountResponse {
            account: Some(convert::account(account)),
            client_secret: secrecy::ExposeSecret::expose_secret(&secret).to_owned(),
        }))
    }

    async fn list_service_accounts(
        &self,
        request: Request<pb::ListServiceAccountsRequest>,
    ) -> Reply<pb::ListServiceAccountsResponse> {
        let (caller, _) = self.caller(&request)?;
        let accounts = Accounts(&self.core).list_service_accounts(&caller).await?;
        Ok(Response::new(pb::ListServiceAccountsResponse {
            accounts: accounts.into_iter().map(convert::account).collect(),
        }))
    }

    async fn delete_service_account(
        &self,
        request: Request<pb::DeleteServiceAccountRequest>,
    ) -> Reply<pb::DeleteServiceAccountResponse> {
        let (caller, client) = self.caller(&request)?;
        let id = ServiceAccountId::parse(&request.get_ref().id, "id")?;
        Accounts(&self.core)
            .delete_service_account(&caller, id, &client)
            .await?;
        Ok(Response::new(pb::DeleteServiceAccountResponse {}))
    }

    async fn issue_service_token(
        &self,
        request: Request<pb::IssueServiceTokenRequest>,
    ) -> Reply<pb::IssueServiceTokenResponse> {
        let client = self.client(&request);
        let r = request.into_inner();
        // A malformed id is unknown credentials, as at the introspection endpoint.
        let client_id = ClientId::try_from(r.client_id.as_str()).map_err(AuthError::from)?;
        let secret = required_secret(r.client_secret, "client_secret")?;
        let (access_token, expires_in) = Accounts(&self.core)
            .issue_service_token(&client_id, &secret, &client)
            .await?;
        Ok(Response::new(pb::IssueServiceTokenResponse {
            access_token,
            token_type: "Bearer".into(),
            expires_in,
        }))
    }

    async fn list_sessions(
        &self,
        request: Request<pb::ListSessionsRequest>,
    ) -> Reply<pb::ListSessionsResponse> {
        let (caller, _) = self.caller(&request)?;
        let r = request.into_inner();
        let user = optional(&r.user_id, "user_id", UserId::parse)?;
        let filter = user.map(|u| u.to_string()).unwrap_or_default();
        let page =
            PageRequest::<(i64, SessionId)>::parse(r.page_size, &r.page_token, &filter, PAGES)?;
        let before = time_cursor(page.after)?;
        let sessions = Sessions(&self.core)
            .list_sessions(&caller, user, before, page.fetch())
            .await?;
        let (sessions, next_page_token) =
            page.finish(sessions, |s| (s.created_at.timestamp_micros(), s.id));
        let current = caller.session_id;
        Ok(Response::new(pb::ListSessionsResponse {
            sessions: sessions
                .into_iter()
                .map(|s| convert::session(s, current))
                .collect(),
            next_page_token,
        }))
    }

    async fn revoke_session(
        &self,
        request: Request<pb::RevokeSessionRequest>,
    ) -> Reply<pb::RevokeSessionResponse> {
        let (caller, client) = self.caller(&request)?;
        let session = SessionId::parse(&request.get_ref().session_id, "session_id")?;
        Sessions(&self.core)
            .revoke_session(&caller, session, &client)
            .await?;
        Ok(Response::new(pb::RevokeSessionResponse {}))
    }

    async fn revoke_other_sessions(
        &self,
        request: Request<pb::RevokeOtherSessionsRequest>,
    ) -> Reply<pb::RevokeOtherSessionsResponse> {
        let (caller, client) = self.caller(&request)?;
        let user = optional(&request.get_ref().user_id, "user_id", UserId::parse)?;
        let n = Sessions(&self.core)
            .revoke_other_sessions(&caller, user, &client)
            .await?;
        Ok(Response::new(pb::RevokeOtherSessionsResponse {
            revoked_count: n as i32,
        }))
    }

    async fn change_password(
        &self,
        request: Request<pb::ChangePasswordRequest>,
    ) -> Reply<pb::ChangePasswordResponse> {
        let (caller, client) = self.caller(&request)?;
        let r = request.into_inner();
        let old = Password::parse(r.old_password, "old_password")?;
        let new = NewPassword::parse(r.new_password, "new_password")?;
        let n = Credentials(&self.core)
            .change_password(&caller, old, new, &client)
            .await?;
        Ok(Response::new(pb::ChangePasswordResponse {
            revoked_count: n as i32,
        }))
    }

    async fn request_email_verification(
        &self,
        request: Request<pb::RequestEmailVerificationRequest>,
    ) -> Reply<pb::RequestEmailVerificationResponse> {
        let (caller, client) = self.caller(&request)?;
        Recovery(&self.core)
            .request_email_verification(&caller, &client)
            .await?;
        Ok(Response::new(pb::RequestEmailVerificationResponse {}))
    }

    async fn verify_email(
        &self,
        request: Request<pb::VerifyEmailRequest>,
    ) -> Reply<pb::VerifyEmailResponse> {
        let client = self.client(&request);
        let token = required_secret(request.into_inner().token, "token")?;
        Recovery(&self.core).verify_email(&token, &client).await?;
        Ok(Response::new(pb::VerifyEmailResponse {}))
    }

    async fn request_password_reset(
        &self,
        request: Request<pb::RequestPasswordResetRequest>,
    ) -> Reply<pb::RequestPasswordResetResponse> {
        let client = self.client(&request);
        let email = Email::parse(&request.into_inner().email, "email")?;
        Recovery(&self.core)
            .request_password_reset(email, &client)
            .await?;
        Ok(Response::new(pb::RequestPasswordResetResponse {}))
    }

    async fn reset_password(
        &self,
        request: Request<pb::ResetPasswordRequest>,
    ) -> Reply<pb::ResetPasswordResponse> {
        let client = self.client(&request);
        let r = request.into_inner();
        let token = required_secret(r.token, "token")?;
        let password = NewPassword::parse(r.new_password, "new_password")?;
        Recovery(&self.core)
            .reset_password(&token, password, &client)
            .await?;
        Ok(Response::new(pb::ResetPasswordResponse {}))
    }

    async fn change_email(
        &self,
        request: Request<pb::ChangeEmailRequest>,
    ) -> Reply<pb::ChangeEmailResponse> {
        let (caller, client) = self.caller(&request)?;
        let r = request.into_inner();
        let email = Email::parse(&r.new_email, "new_email")?;
        let password = Password::parse(r.password, "password")?;
        Recovery(&self.core)
            .change_email(&caller, email, password, &client)
            .await?;
        Ok(Response::new(pb::ChangeEmailResponse {}))
    }

    async fn cancel_email_change(
        &self,
        request: Request<pb::CancelEmailChangeRequest>,
    ) -> Reply<pb::CancelEmailChangeResponse> {
        let client = self.client(&request);
        let token = required_secret(request.into_inner().token, "token")?;
        Recovery(&self.core)
            .cancel_email_change(&token, &client)
            .await?;
        Ok(Response::new(pb::CancelEmailChangeResponse {}))
    }

    async fn enroll_totp(
        &self,
        request: Request<pb::EnrollTotpRequest>,
    ) -> Reply<pb::EnrollTotpResponse> {
        let (caller, client) = self.caller(&request)?;
        let password = Password::parse(request.into_inner().password, "password")?;
        let e = Mfa(&self.core)
            .enroll_totp(&caller, password, &client)
            .await?;
        Ok(Response::new(pb::EnrollTotpResponse {
            secret: e.secret_base32.expose_secret().to_owned(),
            otpauth_uri: e.otpauth_uri.expose_secret().to_owned(),
        }))
    }

    async fn confirm_totp(
        &self,
        request: Request<pb::ConfirmTotpRequest>,
    ) -> Reply<pb::ConfirmTotpResponse> {
        let (caller, client) = self.caller(&request)?;
        let code = MfaCode::totp(request.into_inner().code, "code")?;
        let codes = Mfa(&self.core).confirm_totp(&caller, code, &client).await?;
        Ok(Response::new(pb::ConfirmTotpResponse {
            recovery_codes: codes.iter().map(|c| c.expose_secret().to_owned()).collect(),
        }))
    }

    async fn verify_mfa(
        &self,
        request: Request<pb::VerifyMfaRequest>,
    ) -> Reply<pb::VerifyMfaResponse> {
        let client = self.client(&request);
        let r = request.into_inner();
        let challenge = required_secret(r.mfa_challenge, "mfa_challenge")?;
        let code = MfaCode::parse(r.code, r.recovery_code)?;
        Ok(Response::new(convert::verified_mfa(
            Mfa(&self.core)
                .verify_mfa(&challenge, code, &client)
                .await?,
        )))
    }

    async fn disable_totp(
        &self,
        request: Request<pb::DisableTotpRequest>,
    ) -> Reply<pb::DisableTotpResponse> {
        let (caller, client) = self.caller(&request)?;
        let r = request.into_inner();
        let password = Password::parse(r.password, "password")?;
        let code = MfaCode::parse(r.code, r.recovery_code)?;
        Mfa(&self.core)
            .disable_totp(&caller, password, code, &client)
            .await?;
        Ok(Response::new(pb::DisableTotpResponse {}))
    }

    async fn reset_user_mfa(
        &self,
        request: Request<pb::ResetUserMfaRequest>,
    ) -> Reply<pb::ResetUserMfaResponse> {
        let (caller, client) = self.caller(&request)?;
        let user_id = UserId::parse(&request.into_inner().user_id, "user_id")?;
        Mfa(&self.core)
            .reset_user_mfa(&caller, user_id, &client)
            .await?;
        Ok(Response::new(pb::ResetUserMfaResponse {}))
    }

    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Reply<pb::ListAuditEventsResponse> {
        let (caller, _) = self.caller(&request)?;
        let r = request.into_inner();
        // What a filter can match: stored fields are bounded and free of
        // control characters (audit::clean), and PostgreSQL text holds no NUL.
        let bounded = |s: String, field: &'static str| -> Result<Option<String>, FieldViolation> {
            match s.len() {
                0 => Ok(None),
                _ if s.chars().any(char::is_control) => Err(FieldViolation::new(
                    field,
                    "must not contain control characters",
                )),
                1..=256 => Ok(Some(s)),
                _ => Err(FieldViolation::new(field, "must be at most 256 characters")),
            }
        };
        let since = r
            .since
            .and_then(|t| chrono::DateTime::from_timestamp(t.seconds, t.nanos.max(0) as u32));
        let filter = format!("{}\n{}\n{:?}", r.kind, r.involving, since);
        let page = PageRequest::<(i64, Uuid)>::parse(r.page_size, &r.page_token, &filter, PAGES)?;
        let before = time_cursor(page.after)?;
        let query = AuditQuery {
            kind: bounded(r.kind, "kind")?,
            involving: bounded(r.involving, "involving")?,
            since,
            before,
            limit: page.fetch(),
        };
        let events = Audit(&self.core).list_audit(&caller, &query).await?;
        let (events, next_page_token) = page.finish(events, |e| (e.at.timestamp_micros(), e.id));
        Ok(Response::new(pb::ListAuditEventsResponse {
            events: events.into_iter().map(convert::audit).collect(),
            next_page_token,
        }))
    }

    async fn import_identities(
        &self,
        request: Request<tonic::Streaming<pb::ImportIdentitiesRequest>>,
    ) -> Reply<pb::ImportIdentitiesResponse> {
        let (caller, client) = self.caller(&request)?;
        let lines = import::lines(request.into_inner());
        let report = Import(&self.core)
            .import_lines(&caller, lines, &client)
            .await?;
        Ok(Response::new(convert::import_report(report)))
    }

    async fn enable_user(
        &self,
        request: Request<pb::EnableUserRequest>,
    ) -> Reply<pb::EnableUserResponse> {
        let (caller, client) = self.caller(&request)?;
        let user_id = UserId::parse(&request.get_ref().user_id, "user_id")?;
        Credentials(&self.core)
            .enable_user(&caller, user_id, &client)
            .await?;
        Ok(Response::new(pb::EnableUserResponse {}))
    }

    async fn subscribe_security_events(
        &self,
        request: Request<pb::SubscribeSecurityEventsRequest>,
    ) -> Reply<signals::EventStream> {
        let (caller, _) = self.caller(&request)?;
        let r = request.into_inner();
        let subscription = Signals(&self.core)
            .subscribe(&caller, &r.cursor, &r.event_types)
            .await?;
        Ok(Response::new(signals::stream(
            self.core.clone(),
            subscription,
        )))
    }
}
