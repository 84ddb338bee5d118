//! Delivers the User Service's outbox to the Auth Service: a deleted user's
//! identity is disabled and its sessions revoked. `DisableUser` is idempotent, so
//! redeliveries are harmless. The relay calls as this service's service account.

use crate::service::{USER_DELETED, UserDeleted};
use futures::future::BoxFuture;
use identity_proto::auth::v1::DisableUserRequest;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use platform::access::{TokenSource, authorization};
use platform::outbox::{Deliver, DeliveryError, OutboxEvent};
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
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            if event.topic != USER_DELETED {
                return Err(DeliveryError::UnknownTopic(event.topic.clone()));
            }
            let body: UserDeleted = serde_json::from_str(&event.payload)?;
            let source = self.token.as_ref().ok_or(DeliveryError::NotConfigured(
                "no service account (USER_CLIENT_ID)",
            ))?;
            let token = source.token().await?;
            let mut request = tonic::Request::new(DisableUserRequest {
                user_id: body.user_id.to_string(),
                reason: "user deleted".to_owned(),
                purged: true,
            });
            request
                .metadata_mut()
                .insert("authorization", authorization(&token)?);
            self.client
                .clone()
                .disable_user(request)
                .await
                .map(|_| ())
                .map_err(|status| {
                    source.failed(&token, &status);
                    DeliveryError::from(status)
                })
        })
    }
}
