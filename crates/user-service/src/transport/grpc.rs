//! gRPC handlers: authenticate the caller, parse the request into domain types,
//! call [`Directory`], map the result. Nothing else.

use crate::domain::{Email, FieldViolation, ProfileInput, Username, user_id_from_name};
use crate::error::UserError;
use crate::policy::{self, Access};
use crate::service::{self, Directory, MAX_BATCH, NewUser};
use crate::storage::UserRecord;
use identity_proto::user::v1 as pb;
use identity_proto::user::v1::user_service_server::UserService;
use platform::grpc::timestamp;
use platform::ids::{SubjectId, UserId};
use std::sync::Arc;
use tonic::metadata::MetadataMap;
use tonic::{Code, Request, Response, Status};

/// The `identity.user.v1.UserService` implementation.
#[derive(Debug, Clone)]
pub struct UserGrpc {
    directory: Arc<Directory>,
    access: Access,
}

impl UserGrpc {
    /// Handlers over `directory`, deciding with `access`.
    pub fn new(directory: Arc<Directory>, access: Access) -> Self {
        Self { directory, access }
    }

    async fn require<T>(
        &self,
        request: &Request<T>,
        permission: &str,
        target: Option<UserId>,
    ) -> Result<SubjectId, Status> {
        let resource = target.map(policy::resource);
        self.access
            .require(request.metadata(), permission, resource.as_deref())
            .await
    }

    /// The users as `caller` may see them: someone else's email only with
    /// `users:read_email` (asked only when the reply holds someone else).
    async fn reply(
        &self,
        metadata: &MetadataMap,
        caller: &SubjectId,
        users: Vec<UserRecord>,
    ) -> Result<Vec<pb::User>, Status> {
        let own = |u: &UserRecord| caller.user() == Some(u.id);
        let all_emails = if users.iter().all(own) {
            false
        } else {
            match self
                .access
                .require(metadata, policy::READ_EMAIL, None)
                .await
            {
                Ok(_) => true,
                Err(s) if s.code() == Code::PermissionDenied => false,
                Err(s) => return Err(s),
            }
        };
        Ok(users
            .into_iter()
            .map(|u| {
                let email = all_emails || own(&u);
                to_proto(u, email)
            })
            .collect())
    }

    async fn reply_one(
        &self,
        metadata: &MetadataMap,
        caller: &SubjectId,
        user: UserRecord,
    ) -> Result<Option<pb::User>, Status> {
        Ok(self.reply(metadata, caller, vec![user]).await?.pop())
    }
}

fn to_proto(u: UserRecord, with_email: bool) -> pb::User {
    pb::User {
        name: format!("users/{}", u.id),
        id: u.id.to_string(),
        email: if with_email { u.email } else { String::new() },
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
        let caller = self.require(&request, policy::CREATE, None).await?;
        let metadata = request.metadata().clone();
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
            user: self.reply_one(&metadata, &caller, created).await?,
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let id = user_id_from_name(&request.get_ref().name, "name")?;
        let caller = self.require(&request, policy::READ, Some(id)).await?;
        let user = self.directory.get(id).await?;
        Ok(Response::new(pb::GetUserResponse {
            user: self.reply_one(request.metadata(), &caller, user).await?,
        }))
    }

    async fn batch_get_users(
        &self,
        request: Request<pb::BatchGetUsersRequest>,
    ) -> Result<Response<pb::BatchGetUsersResponse>, Status> {
        let caller = self.require(&request, policy::READ, None).await?;
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
            users: self.reply(request.metadata(), &caller, users).await?,
        }))
    }

    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let caller = self.require(&request, policy::READ, None).await?;
        let metadata = request.metadata().clone();
        let r = request.into_inner();
        let page = self
            .directory
            .list(&r.filter, r.page_size, &r.page_token)
            .await?;
        Ok(Response::new(pb::ListUsersResponse {
            users: self.reply(&metadata, &caller, page.users).await?,
            next_page_token: page.next_page_token,
        }))
    }

    async fn update_user(
        &self,
        request: Request<pb::UpdateUserRequest>,
    ) -> Result<Response<pb::UpdateUserResponse>, Status> {
        let target = request.get_ref().user.as_ref().map(target_of);
        let id = target.ok_or_else(|| FieldViolation::new("user", "is required"))??;
        let caller = self.require(&request, policy::WRITE, Some(id)).await?;
        let metadata = request.metadata().clone();
        let r = request.into_inner();
        let user = r.user.unwrap_or_default();
        let paths = r.update_mask.map(|m| m.paths).unwrap_or_default();
        let updated = self
            .directory
            .update(id, &user.etag, &paths, &input_of(&user))
            .await?;
        Ok(Response::new(pb::UpdateUserResponse {
            user: self.reply_one(&metadata, &caller, updated).await?,
        }))
    }

    async fn update_user_email(
        &self,
        request: Request<pb::UpdateUserEmailRequest>,
    ) -> Result<Response<pb::UpdateUserEmailResponse>, Status> {
        let id = user_id_from_name(&request.get_ref().name, "name")?;
        let caller = self.require(&request, policy::CREATE, None).await?;
        let metadata = request.metadata().clone();
        let email = Email::parse(&request.get_ref().email, "email")?;
        let updated = self.directory.set_email(id, email.as_str()).await?;
        Ok(Response::new(pb::UpdateUserEmailResponse {
            user: self.reply_one(&metadata, &caller, updated).await?,
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
