//! Every operation the `scale` scenario times, one request each, over the
//! fixtures of one phase (near-empty or loaded), and the bound it is held to.

use super::fixtures::Cx;
use identity_proto::auth::v1 as auth_pb;
use identity_proto::user::v1 as user_pb;

/// Rows per page of every list call.
pub const PAGE_SIZE: i32 = 10;

/// Which page of a list: the first, or the second (reached with the first's
/// `next_page_token`, as a client paging on does).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    First,
    Later,
}

/// ListAuditEvents' filters.
#[derive(Debug, Clone, Copy)]
pub enum AuditBy {
    /// `kind = login.succeeded`, the commonest.
    Kind,
    /// Events whose actor or subject is one user.
    Involving,
    /// Events of the last 30 days.
    Since,
}

/// ListUsers' filters (the strings are in [`super::dataset::Filters`]).
#[derive(Debug, Clone, Copy)]
pub enum UsersBy {
    All,
    Exact,
    UsernameNarrow,
    UsernameBroad,
    NameNarrow,
    NameBroad,
}

/// What a loaded database's p99 must stay within.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// Twice the near-empty database's p99.
    Twice,
    /// 10 ms, whatever the near-empty one took (the list calls).
    TenMs,
}

/// One operation.
#[derive(Debug, Clone, Copy)]
pub enum Op {
    Register,
    Login,
    RefreshToken,
    ValidateToken,
    GetJwks,
    HttpJwks,
    HttpHealthz,
    HttpReadyz,
    CheckPermission,
    ListSessions,
    ListSessionsMany(Page),
    ListAuditEvents(AuditBy, Page),
    GetUser,
    BatchGetUsers,
    ListUsers(UsersBy, Page),
    UpdateUser,
}

/// Every operation, in the order they run: the hashing ones first, so that the
/// audit trail of the near-empty database has pages to turn too.
pub const ALL: [Op; 30] = {
    use AuditBy::*;
    use Op::*;
    use Page::*;
    use UsersBy::*;
    [
        Login,
        Register,
        RefreshToken,
        ValidateToken,
        GetJwks,
        HttpJwks,
        HttpHealthz,
        HttpReadyz,
        CheckPermission,
        ListSessions,
        ListSessionsMany(First),
        ListSessionsMany(Later),
        ListAuditEvents(Kind, First),
        ListAuditEvents(Kind, Later),
        ListAuditEvents(Involving, First),
        ListAuditEvents(Involving, Later),
        ListAuditEvents(Since, First),
        ListAuditEvents(Since, Later),
        GetUser,
        BatchGetUsers,
        UpdateUser,
        ListUsers(All, First),
        ListUsers(All, Later),
        ListUsers(Exact, First),
        ListUsers(UsernameNarrow, First),
        ListUsers(UsernameBroad, First),
        ListUsers(UsernameBroad, Later),
        ListUsers(NameNarrow, First),
        ListUsers(NameBroad, First),
        ListUsers(NameBroad, Later),
    ]
};

fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Ok(v) = format!("Bearer {token}").parse() {
        request.metadata_mut().insert("authorization", v);
    }
    request
}

fn failed(what: &str) -> impl Fn(tonic::Status) -> String + '_ {
    move |s| format!("{what}: {:?} {}", s.code(), s.message())
}

impl Op {
    /// The row's name.
    pub fn name(self) -> String {
        let page = |p: Page| match p {
            Page::First => "page 1",
            Page::Later => "page 2",
        };
        match self {
            Op::ListSessions => "ListSessions (own, few)".to_owned(),
            Op::ListSessionsMany(p) => format!("ListSessions (user with many), {}", page(p)),
            Op::ListAuditEvents(by, p) => format!("ListAuditEvents {by:?}, {}", page(p)),
            Op::ListUsers(by, p) => format!("ListUsers {by:?}, {}", page(p)),
            Op::HttpJwks => "HTTP GET /.well-known/jwks.json".to_owned(),
            Op::HttpHealthz => "HTTP GET /healthz".to_owned(),
            Op::HttpReadyz => "HTTP GET /readyz".to_owned(),
            other => format!("{other:?}"),
        }
    }

    pub fn bound(self) -> Bound {
        match self {
            Op::ListSessions
            | Op::ListSessionsMany(_)
            | Op::ListAuditEvents(..)
            | Op::ListUsers(..) => Bound::TenMs,
            _ => Bound::Twice,
        }
    }

    /// Whether each call costs an Argon2 hash (sampled less).
    pub fn hashes(self) -> bool {
        matches!(self, Op::Login | Op::Register)
    }

    /// The page this call asks for, if it is a list.
    pub fn page(self) -> Option<Page> {
        match self {
            Op::ListSessionsMany(p) | Op::ListAuditEvents(_, p) | Op::ListUsers(_, p) => Some(p),
            _ => None,
        }
    }

    /// One call, `i` the sample's number (to vary users); lists start at
    /// `page_token` and return the next one ("" for anything else).
    pub async fn call(self, cx: &Cx, i: usize, page_token: &str) -> Result<String, String> {
        let caller = &cx.callers[i % cx.callers.len()];
        let mut auth = cx.auth.clone();
        let mut users = cx.users.clone();
        let page_token = page_token.to_owned();
        match self {
            Op::Register => {
                let email = format!("scale-{}@example.com", uuid::Uuid::new_v4().simple());
                let request = auth_pb::RegisterRequest {
                    email,
                    password: super::dataset::PASSWORD.into(),
                    display_name: "Scale Bench".into(),
                };
                auth.register(request).await.map_err(failed("Register"))?;
            }
            Op::Login => {
                let reply = auth
                    .login(auth_pb::LoginRequest {
                        email: caller.email.clone(),
                        password: super::dataset::PASSWORD.into(),
                    })
                    .await
                    .map_err(failed("Login"))?;
                if reply.into_inner().access_token.is_empty() {
                    return Err("Login: no token".into());
                }
            }
            Op::RefreshToken => {
                let mut slot = cx.refresh.lock().await;
                let request = auth_pb::RefreshTokenRequest {
                    refresh_token: slot.clone(),
                };
                let reply = auth.refresh_token(request).await;
                *slot = reply
                    .map_err(failed("RefreshToken"))?
                    .into_inner()
                    .refresh_token;
            }
            Op::ValidateToken => {
                let request = auth_pb::ValidateTokenRequest {
                    access_token: caller.access.clone(),
                };
                auth.validate_token(request)
                    .await
                    .map_err(failed("ValidateToken"))?;
            }
            Op::GetJwks => {
                auth.get_jwks(auth_pb::GetJwksRequest {})
                    .await
                    .map_err(failed("GetJwks"))?;
            }
            Op::HttpJwks => cx.get("/.well-known/jwks.json").await?,
            Op::HttpHealthz => cx.get("/healthz").await?,
            Op::HttpReadyz => cx.get("/readyz").await?,
            Op::CheckPermission => {
                let request = auth_pb::CheckPermissionRequest {
                    access_token: caller.access.clone(),
                    permission: "users:write".into(),
                    resource: format!("users/{}", caller.user_id),
                };
                let reply = auth.check_permission(request).await;
                if !reply
                    .map_err(failed("CheckPermission"))?
                    .into_inner()
                    .allowed
                {
                    return Err("CheckPermission: denied".into());
                }
            }
            Op::ListSessions | Op::ListSessionsMany(_) => {
                let who = match self {
                    Op::ListSessions => caller,
                    _ => &cx.heavy,
                };
                let request = auth_pb::ListSessionsRequest {
                    user_id: String::new(),
                    page_size: PAGE_SIZE,
                    page_token,
                };
                let reply = auth.list_sessions(bearer(request, &who.access)).await;
                return Ok(reply
                    .map_err(failed("ListSessions"))?
                    .into_inner()
                    .next_page_token);
            }
            Op::ListAuditEvents(by, _) => {
                let mut request = auth_pb::ListAuditEventsRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                    ..Default::default()
                };
                match by {
                    AuditBy::Kind => request.kind = "login.succeeded".into(),
                    AuditBy::Involving => request.involving = cx.callers[0].user_id.clone(),
                    AuditBy::Since => request.since = Some(cx.since),
                }
                let reply = auth.list_audit_events(bearer(request, &cx.admin)).await;
                return Ok(reply
                    .map_err(failed("ListAuditEvents"))?
                    .into_inner()
                    .next_page_token);
            }
            Op::GetUser => {
                let name = format!("users/{}", cx.targets[i % cx.targets.len()]);
                let request = bearer(user_pb::GetUserRequest { name }, &caller.access);
                users.get_user(request).await.map_err(failed("GetUser"))?;
            }
            Op::BatchGetUsers => {
                let names = (0..20)
                    .map(|k| format!("users/{}", cx.targets[(i * 20 + k) % cx.targets.len()]))
                    .collect();
                let request = bearer(user_pb::BatchGetUsersRequest { names }, &caller.access);
                users
                    .batch_get_users(request)
                    .await
                    .map_err(failed("BatchGetUsers"))?;
            }
            Op::UpdateUser => {
                let user = user_pb::User {
                    name: format!("users/{}", caller.user_id),
                    bio: format!("scale bench {i}"),
                    ..Default::default()
                };
                let update_mask = Some(prost_types::FieldMask {
                    paths: vec!["bio".into()],
                });
                let request = user_pb::UpdateUserRequest {
                    user: Some(user),
                    update_mask,
                };
                users
                    .update_user(bearer(request, &caller.access))
                    .await
                    .map_err(failed("UpdateUser"))?;
            }
            Op::ListUsers(by, _) => {
                let f = &cx.filters;
                let filter = match by {
                    UsersBy::All => "",
                    UsersBy::Exact => &f.exact,
                    UsersBy::UsernameNarrow => &f.username_narrow,
                    UsersBy::UsernameBroad => &f.username_broad,
                    UsersBy::NameNarrow => &f.name_narrow,
                    UsersBy::NameBroad => &f.name_broad,
                };
                let request = user_pb::ListUsersRequest {
                    page_size: PAGE_SIZE,
                    page_token,
                    filter: filter.to_owned(),
                };
                let reply = users.list_users(bearer(request, &caller.access)).await;
                return Ok(reply
                    .map_err(failed("ListUsers"))?
                    .into_inner()
                    .next_page_token);
            }
        }
        Ok(String::new())
    }
}
