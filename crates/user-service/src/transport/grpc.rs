//! gRPC handlers: authenticate the caller, parse the request into domain types,
//! call [`Directory`], map the result. Nothing else.

use crate::domain::{Email, FieldViolation, ProfileInput, Username, user_id_from_name};
use crate::error::UserError;
use crate::policy;
use crate::service::{self, Directory, MAX_BATCH, NewUser};
use crate::storage::UserRecord;
use identity_proto::user::v1 as pb;
use identity_proto::user::v1::user_service_server::UserService;
use platform::access::Authorizer;
use platform::grpc::timestamp;
use platform::ids::UserId;
use std::sync::Arc;
use tonic::{Request, Response, Status};

/// The `identity.user.v1.UserService` implementation.
#[derive(Debug, Clone)]
pub struct UserGrpc {
    directory: Arc<Directory>,
    authorizer: Authorizer,
}

impl UserGrpc {
    /// Handlers over `directory`, asking `authorizer` for every decision.
    pub fn new(directory: Arc<Directory>, authorizer: Authorizer) -> Self {
        Self {
            directory,
            authorizer,
        }
    }

    async fn require<T>(
        &self,
        request: &Request<T>,
        permission: &str,
        target: Option<UserId>,
    ) -> Result<(), Status> {
        let resource = target.map(policy::resource);
        self.authorizer
            .require(request.metadata(), permission, resource.as_deref())
            .await
            .map(|_| ())
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
fn target_of(u: &pb::User) -> Result<UserId, UserError> {
    if !u.name.is_empty() {
        return Ok(user_id_from_name(&u.name, "user.name")?);
    }
    UserId::parse(&u.id, "user.id")
        .map_err(|_| FieldViolation::new("user.name", "is required, as users/{id}").into())
}

#[tonic::async_trait]
impl UserService for UserGrpc {
    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Result<Response<pb::CreateUserResponse>, Status> {
        self.require(&request, policy::CREATE, None).await?;
        let user = request
            .into_inner()
            .user
            .ok_or_else(|| FieldViolation::new("user", "is required"))?;
        let id = UserId::parse(&user.id, "user.id")?;
        let username = match user.username.as_str() {
            "" => None,
            raw => Some(Username::parse(raw, "user.username")?),
        };
        let new = NewUser {
            id,
            email: Email::parse(&user.email, "user.email")?.as_str().to_owned(),
            username,
            input: input_of(&user),
        };
        let created = self.directory.create(new).await?;
        Ok(Response::new(pb::CreateUserResponse {
            user: Some(to_proto(created)),
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let id = user_id_from_name(&request.get_ref().name, "name")?;
        self.require(&request, policy::READ, Some(id)).await?;
        let user = self.directory.get(id).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(to_proto(user)),
        }))
    }

    async fn batch_get_users(
        &self,
        request: Request<pb::BatchGetUsersRequest>,
    ) -> Result<Response<pb::BatchGetUsersResponse>, Status> {
        self.require(&request, policy::READ, None).await?;
        let names = &request.get_ref().names;
        if names.len() > MAX_BATCH {
            return Err(FieldViolation::new("names", "must name at most 100 users").into());
        }
        let ids = names
            .iter()
            .map(|n| user_id_from_name(n, "names"))
            .collect::<Result<Vec<_>, _>>()?;
        let users = self.directory.batch_get(&ids).await?;
        Ok(Response::new(pb::BatchGetUsersResponse {
            users: users.into_iter().map(to_proto).collect(),
        }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        self.require(&request, policy::READ, None).await?;
        let r = request.into_inner();
        let page = self
            .directory
            .list(&r.filter, r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: page.users.into_iter().map(to_proto).collect(),
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        let target = request.get_ref().user.as_ref().map(target_of);
        let id = target.ok_or_else(|| FieldViolation::new("user", "is required"))??;
        self.require(&request, policy::WRITE, Some(id)).await?;
        let r = request.into_inner();
        let user = r.user.unwrap_or_default();
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let updated = self
            .directory
            .update(id, &user.etag, &paths, &input_of(&user))
            .await?;
        Ok(Response::new(pb::UpdateUserResponse {
            user: Some(to_proto(updated)),
        }))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Result<Response<pb::DeleteUserResponse>, Status> {
        let id = user_id_from_name(&request.get_ref().name, "name")?;
        self.require(&request, policy::WRITE, Some(id)).await?;
        let r = request.into_inner();
        self.directory.delete(id, &r.etag).await?;
        Ok(Response::new(pb::DeleteUserResponse {}))
    }
}
