//! Delivers the Auth Service's outbox: registrations to the User Service
//! (every registration becomes a profile there; `CreateUser` is idempotent on
//! the user id, so a redelivery after a crash or a lost reply creates nothing
//! twice; the relay calls as the Auth Service's own service account), and
//! notifications to people to the notification sink.

use crate::service::{USER_REGISTERED, UserRegistered};
use futures::future::BoxFuture;
use identity_proto::user::v1::user_service_client::UserServiceClient;
use identity_proto::user::v1::{CreateUserRequest, User};
use platform::access::{PeerError, TokenSource, authorization, peer_endpoint};
use platform::outbox::{Deliver, DeliveryError, OutboxEvent};
use std::sync::Arc;
use tonic::transport::{Channel, ClientTlsConfig};

/// The User Service, as the receiver of outbox events.
#[derive(Clone)]
pub struct ToUserService {
    client: UserServiceClient<Channel>,
    token: Arc<dyn TokenSource>,
}

impl ToUserService {
    /// Talks to the User Service at `url` (connecting lazily, reconnecting as
    /// needed), authenticated with tokens from `token`.
    pub fn new(
        url: &str,
        token: Arc<dyn TokenSource>,
        tls: Option<ClientTlsConfig>,
    ) -> Result<Self, PeerError> {
        let endpoint = peer_endpoint(url, platform::outbox::DELIVERY_TIMEOUT, tls)?;
        Ok(Self {
            client: UserServiceClient::new(endpoint.connect_lazy()),
            token,
        })
    }
}

/// Sends each event to its receiver by topic.
#[derive(Clone)]
pub struct Router {
    pub users: ToUserService,
    /// The notification sink, if one is configured.
    pub notifications: Option<Arc<dyn Deliver>>,
}

impl Deliver for Router {
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> BoxFuture<'a, Result<(), DeliveryError>> {
        if !crate::notify::is_notification(&event.topic) {
            return self.users.deliver(event);
        }
        match &self.notifications {
            Some(sink) => sink.deliver(event),
            // Kept and retried: a sink configured later delivers it.
            None => Box::pin(async { Err(DeliveryError::NotConfigured("no notification sink")) }),
        }
    }
}

impl Deliver for ToUserService {
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            if event.topic != USER_REGISTERED {
                return Err(DeliveryError::UnknownTopic(event.topic.clone()));
            }
            let body: UserRegistered = serde_json::from_str(&event.payload)?;
            let token = self.token.token().await?;
            let mut request = tonic::Request::new(CreateUserRequest {
                user: Some(User {
                    id: body.user_id.to_string(),
                    email: body.email,
                    display_name: body.display_name,
                    ..User::default()
                }),
            });
            let md = request.metadata_mut();
            md.insert("authorization", authorization(&token)?);
            // A UUID is always valid metadata; the id lets the receiver's logs match ours.
            if let Ok(id) = event.id.to_string().parse() {
                md.insert("x-request-id", id);
            }
            self.client
                .clone()
                .create_user(request)
                .await
                .map(|_| ())
                .map_err(DeliveryError::from)
        })
    }
}
