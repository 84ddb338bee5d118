//! Delivers the User Service's outbox to the Auth Service: a deleted user's
//! identity is disabled and its sessions revoked. `DisableUser` is idempotent, so
//! redeliveries are harmless. The relay calls as this service's service account.

use crate::service::{USER_DELETED, UserDeleted};
use futures::future::BoxFuture;
use identity_proto::auth::v1::DisableUserRequest;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use platform::access::{TokenSource, authorization};
use platform::outbox::{Deliver, OutboxEvent};
use std::sync::Arc;
use tonic::transport::Channel;

/// The Auth Service, as the receiver of outbox events.
#[derive(Clone)]
pub struct ToAuthService {
    client: AuthServiceClient<Channel>,
    token: Option<Arc<dyn TokenSource>>,
}

impl ToAuthService {
    /// Delivers through `client`, as the service account `token` stands for.
    pub fn new(client: AuthServiceClient<Channel>, token: Option<Arc<dyn TokenSource>>) -> Self {
        Self { client, token }
    }
}

impl Deliver for ToAuthService {
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if event.topic != USER_DELETED {
                return Err(format!("unknown topic {:?}", event.topic));
            }
            let body: UserDeleted =
                serde_json::from_str(&event.payload).map_err(|e| format!("bad payload: {e}"))?;
            let source = self
                .token
                .as_ref()
                .ok_or("no service account configured (USER_CLIENT_ID)")?;
            let token = source.token().await?;
            let mut request = tonic::Request::new(DisableUserRequest {
                user_id: body.user_id.to_string(),
                reason: "user deleted".to_owned(),
            });
            request.metadata_mut().insert(
                "authorization",
                authorization(&token).map_err(|s| s.message().to_owned())?,
            );
            self.client
                .clone()
                .disable_user(request)
                .await
                .map(|_| ())
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
        })
    }
}
