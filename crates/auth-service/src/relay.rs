//! Delivers the Auth Service's outbox to the User Service: every registration
//! becomes a profile there. `CreateUser` is idempotent on the user id, so a
//! redelivery after a crash or a lost reply creates nothing twice.

use crate::service::{USER_REGISTERED, UserRegistered};
use futures::future::BoxFuture;
use identity_proto::user::v1::user_service_client::UserServiceClient;
use identity_proto::user::v1::{CreateUserRequest, User};
use platform::caller::ServiceSecret;
use platform::outbox::{Deliver, OutboxEvent};
use tonic::transport::{Channel, Endpoint};

/// The User Service, as the receiver of outbox events.
#[derive(Debug, Clone)]
pub struct ToUserService {
    client: UserServiceClient<Channel>,
    secret: Option<ServiceSecret>,
}

impl ToUserService {
    /// Talks to the User Service at `url` (connecting lazily, reconnecting as needed).
    pub fn new(url: &str, secret: Option<ServiceSecret>) -> Result<Self, String> {
        let endpoint = Endpoint::from_shared(url.to_owned())
            .map_err(|e| format!("invalid User Service URL {url:?}: {e}"))?
            .connect_timeout(std::time::Duration::from_secs(2))
            .timeout(platform::outbox::DELIVERY_TIMEOUT);
        Ok(Self {
            client: UserServiceClient::new(endpoint.connect_lazy()),
            secret,
        })
    }
}

impl Deliver for ToUserService {
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> BoxFuture<'a, Result<(), String>> {
        Box::pin(async move {
            if event.topic != USER_REGISTERED {
                return Err(format!("unknown topic {:?}", event.topic));
            }
            let body: UserRegistered =
                serde_json::from_str(&event.payload).map_err(|e| format!("bad payload: {e}"))?;
            let secret = self
                .secret
                .as_ref()
                .ok_or("no service secret configured (AUTH_SERVICE_SECRET)")?;
            let mut request = tonic::Request::new(CreateUserRequest {
                user: Some(User {
                    id: body.user_id.to_string(),
                    email: body.email,
                    display_name: body.display_name,
                    ..User::default()
                }),
            });
            request.metadata_mut().insert(
                "authorization",
                secret.authorization().map_err(|s| s.message().to_owned())?,
            );
            request.metadata_mut().insert(
                "x-request-id",
                event
                    .id
                    .to_string()
                    .parse()
                    .map_err(|_| "bad event id".to_owned())?,
            );
            self.client
                .clone()
                .create_user(request)
                .await
                .map(|_| ())
                .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
        })
    }
}
