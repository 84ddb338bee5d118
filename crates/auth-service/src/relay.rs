//! Delivers the Auth Service's outbox: registrations to the User Service
//! (every registration becomes a profile there; `CreateUser` is idempotent on
//! the user id, so a redelivery after a crash or a lost reply creates nothing
//! twice; the relay calls as the Auth Service's own service account), and
//! notifications to people to the notification sink.

use crate::context::{USER_EMAIL_CHANGED, USER_REGISTERED, UserEmailChanged, UserRegistered};
use crate::credentials::IdentitySql;
use futures::future::BoxFuture;
use identity_proto::user::v1::user_service_client::UserServiceClient;
use identity_proto::user::v1::{
    CreateUserRequest, CreateUserResponse, UpdateUserEmailRequest, User,
};
use platform::access::{PeerError, TokenSource, authorization, peer_endpoint};
use platform::db::Database;
use platform::outbox::{Deliver, DeliveryError, OutboxEvent};
use std::sync::Arc;
use tonic::transport::{Channel, ClientTlsConfig};

/// The User Service, as the receiver of outbox events.
#[derive(Clone)]
pub struct ToUserService {
    client: UserServiceClient<Channel>,
    token: Arc<dyn TokenSource>,
    /// Where the current address of an identity is read at delivery.
    db: Database,
}

impl ToUserService {
    /// Talks to the User Service at `url` (connecting lazily, reconnecting as
    /// needed), authenticated with tokens from `token`.
    pub fn new(
        url: &str,
        token: Arc<dyn TokenSource>,
        tls: Option<ClientTlsConfig>,
        db: Database,
    ) -> Result<Self, PeerError> {
        let endpoint = peer_endpoint(url, platform::outbox::DELIVERY_TIMEOUT, tls)?;
        Ok(Self {
            client: UserServiceClient::new(endpoint.connect_lazy()),
            token,
            db,
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

impl ToUserService {
    /// Sends `message` with `call`, as the relay's account and tagged with
    /// the event's id; a token the User Service refuses is not used again.
    async fn send<T, R, F, Fut>(
        &self,
        event: &OutboxEvent,
        message: T,
        call: F,
    ) -> Result<R, DeliveryError>
    where
        F: FnOnce(UserServiceClient<Channel>, tonic::Request<T>) -> Fut,
        Fut: std::future::Future<Output = Result<tonic::Response<R>, tonic::Status>>,
    {
        let token = self.token.token().await?;
        let mut request = tonic::Request::new(message);
        let md = request.metadata_mut();
        md.insert("authorization", authorization(&token)?);
        // A UUID is always valid metadata; the id lets the receiver's logs match ours.
        if let Ok(id) = event.id.to_string().parse() {
            md.insert("x-request-id", id);
        }
        match call(self.client.clone(), request).await {
            Ok(reply) => Ok(reply.into_inner()),
            Err(status) => {
                self.token.failed(&token, &status);
                Err(status.into())
            }
        }
    }

    async fn registered(&self, event: &OutboxEvent) -> Result<(), DeliveryError> {
        let body: UserRegistered = serde_json::from_str(&event.payload)?;
        let user = User {
            id: body.user_id.to_string(),
            email: body.email,
            display_name: body.display_name,
            ..User::default()
        };
        if let Some(username) = body.username {
            // An imported username is a wish: taken by someone else, the
            // profile still comes, with a name derived from the address.
            let wished = User {
                username,
                ..user.clone()
            };
            let request = CreateUserRequest { user: Some(wished) };
            match self.send(event, request, create_user).await {
                Err(DeliveryError::Receiver(s)) if s.code() == tonic::Code::AlreadyExists => {}
                other => return other.map(drop),
            }
        }
        let request = CreateUserRequest { user: Some(user) };
        self.send(event, request, create_user).await.map(drop)
    }

    /// Sends the address the identity has now, whatever the event saw.
    async fn email_changed(&self, event: &OutboxEvent) -> Result<(), DeliveryError> {
        let body: UserEmailChanged = serde_json::from_str(&event.payload)?;
        let Some(identity) =
            platform::sql!(read(&self.db), IdentitySql::identity_by_id(body.user_id))
                .map_err(|e| DeliveryError::Unreachable(e.to_string()))?
        else {
            return Ok(());
        };
        let request = UpdateUserEmailRequest {
            name: format!("users/{}", body.user_id),
            email: identity.email,
        };
        let update =
            |mut c: UserServiceClient<Channel>, r| async move { c.update_user_email(r).await };
        match self.send(event, request, update).await {
            // A profile deleted meanwhile has no address to follow.
            Err(DeliveryError::Receiver(s)) if s.code() == tonic::Code::NotFound => Ok(()),
            other => other.map(drop),
        }
    }
}

async fn create_user(
    mut c: UserServiceClient<Channel>,
    r: tonic::Request<CreateUserRequest>,
) -> Result<tonic::Response<CreateUserResponse>, tonic::Status> {
    c.create_user(r).await
}

impl Deliver for ToUserService {
    fn deliver<'a>(&'a self, event: &'a OutboxEvent) -> BoxFuture<'a, Result<(), DeliveryError>> {
        Box::pin(async move {
            match event.topic.as_str() {
                USER_REGISTERED => self.registered(event).await,
                USER_EMAIL_CHANGED => self.email_changed(event).await,
                other => Err(DeliveryError::UnknownTopic(other.to_owned())),
            }
        })
    }
}
