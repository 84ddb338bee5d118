//! gRPC handlers: authenticate the caller, parse the request into domain types,
//! call [`Directory`], map the result. Nothing else.

use crate::domain::{FieldViolation, ProfileInput, Username, user_id_from_name};
use crate::error::UserError;
use crate::service::{self, Directory, MAX_BATCH, NewUser};
use crate::storage::UserRecord;
use identity_proto::user::v1 as pb;
use identity_proto::user::v1::user_service_server::UserService;
use platform::caller::{Caller, CallerResolver};
use std::sync::Arc;
use tonic::{Request, Response, Status};
use uuid::Uuid;

/// The `identity.user.v1.UserService` implementation.
#[derive(Debug, Clone)]
pub struct UserGrpc {
    directory: Arc<Directory>,
    callers: CallerResolver,
}

impl UserGrpc {
    /// Handlers over `directory`, identifying callers with `callers`.
    pub fn new(directory: Arc<Directory>, callers: CallerResolver) -> Self {
        Self { directory, callers }
    }

    async fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        self.callers.resolve(request.metadata()).await
    }
}

fn timestamp(t: chrono::DateTime<chrono::Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

fn to_proto(u: UserRecord) -> pb::User {
    pb::User {
        name: format!("users/{}", u.id),
        id: u.id.to_string(),
        email: u.email,
        username: u.username,
        display_name: u.display_name,
        avatar_url: u.avatar_url,
        bio: u.bio,
        locale: u.locale,
        time_zone: u.time_zone,
        create_time: Some(timestamp(u.created_at)),
        update_time: Some(timestamp(u.updated_at)),
        etag: service::etag(u.version),
    }
}

fn input_of(u: &pb::User) -> ProfileInput {
    ProfileInput {
        username: u.username.clone(),
        display_name: u.display_name.clone(),
        avatar_url: u.avatar_url.clone(),
        bio: u.bio.clone(),
        locale: u.locale.clone(),
        time_zone: u.time_zone.clone(),
    }
}

/// The user an update names, by `user.name` or else `user.id`.
fn target_of(u: &pb::User) -> Result<Uuid, UserError> {
    if !u.name.is_empty() {
        return Ok(user_id_from_name(&u.name, "user.name")?);
    }
    Uuid::parse_str(&u.id)
        .map_err(|_| FieldViolation::new("user.name", "is required, as users/{id}").into())
}

#[tonic::async_trait]
impl UserService for UserGrpc {
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        let caller = self.caller(&request).await?;
        let user = request
            .into_inner()
            .user
            .ok_or_else(|| FieldViolation::new("user", "is required"))?;
        let id = Uuid::parse_str(&user.id)
            .map_err(|_| FieldViolation::new("user.id", "must be a UUID"))?;
        let username = match user.username.as_str() {
            "" => None,
            raw => Some(Username::parse(raw, "user.username")?),
        };
        let new = NewUser {
            id,
            email: service::email(&user.email)?,
            username,
            input: input_of(&user),
        };
        let created = self.directory.create(&caller, new).await?;
        Ok(Response::new(pb::CreateUserResponse {
            user: Some(to_proto(created)),
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let caller = self.caller(&request).await?;
        let id = user_id_from_name(&request.get_ref().name, "name")?;
        let user = self.directory.get(&caller, id).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(to_proto(user)),
        }))
    }

    async fn batch_get_users(
        &self,
        request: Request<pb::BatchGetUsersRequest>,
    ) -> Result<Response<pb::BatchGetUsersResponse>, Status> {
        let caller = self.caller(&request).await?;
        let names = &request.get_ref().names;
        if names.len() > MAX_BATCH {
            return Err(FieldViolation::new("names", "must name at most 100 users").into());
        }
        let ids = names
            .iter()
            .map(|n| user_id_from_name(n, "names"))
            .collect::<Result<Vec<_>, _>>()?;
        let users = self.directory.batch_get(&caller, &ids).await?;
        Ok(Response::new(pb::BatchGetUsersResponse {
            users: users.into_iter().map(to_proto).collect(),
        }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let page = self
            .directory
            .list(&caller, &r.filter, r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: page.users.into_iter().map(to_proto).collect(),
            next_page_token: page.next.map(|t| t.encode()).unwrap_or_default(),
        }))
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let user = r
            .user
            .ok_or_else(|| FieldViolation::new("user", "is required"))?;
        let id = target_of(&user)?;
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let updated = self
            .directory
            .update(&caller, id, &user.etag, &paths, &input_of(&user))
            .await?;
        Ok(Response::new(pb::UpdateUserResponse {
            user: Some(to_proto(updated)),
        }))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let caller = self.caller(&request).await?;
        let r = request.into_inner();
        let id = user_id_from_name(&r.name, "name")?;
        self.directory.delete(&caller, id, &r.etag).await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }
}
