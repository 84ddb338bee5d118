//! The service account's own access token (client-credentials grant), reused
//! until 80 % of its lifetime and forgotten at once when the Auth Service
//! refuses it (its clock jumped, a key was rotated away, the account's roles
//! changed): the next subscription then presents a fresh one instead of
//! retrying a dead token until it would have expired by our clock.

use identity_proto::auth::v1::IssueServiceTokenRequest;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use platform::clock::monotonic_now;
use secrecy::{ExposeSecret, SecretString};
use std::time::Duration;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tonic::transport::Channel;

/// Issues and caches the subscriber's token.
pub(crate) struct ServiceToken {
    client: AuthServiceClient<Channel>,
    client_id: String,
    secret: SecretString,
    cached: Mutex<Option<(String, Instant)>>,
}

impl ServiceToken {
    pub(crate) fn new(
        client: AuthServiceClient<Channel>,
        client_id: String,
        secret: SecretString,
    ) -> Self {
        Self {
            client,
            client_id,
            secret,
            cached: Mutex::new(None),
        }
    }

    /// A token believed valid.
    pub(crate) async fn get(&self) -> Result<String, tonic::Status> {
        let mut cached = self.cached.lock().await;
        if let Some((token, renew_at)) = cached.as_ref()
            && monotonic_now() < *renew_at
        {
            return Ok(token.clone());
        }
        let mut request = tonic::Request::new(IssueServiceTokenRequest {
            client_id: self.client_id.clone(),
            client_secret: self.secret.expose_secret().to_owned(),
        });
        request.set_timeout(crate::feed::CALL_TIMEOUT);
        let reply = self
            .client
            .clone()
            .issue_service_token(request)
            .await?
            .into_inner();
        let life = Duration::from_secs(u64::try_from(reply.expires_in.max(1)).unwrap_or(1));
        *cached = Some((
            reply.access_token.clone(),
            monotonic_now() + life.mul_f32(0.8),
        ));
        Ok(reply.access_token)
    }

    /// The Auth Service refused the cached token: issue a new one next time.
    pub(crate) async fn forget(&self) {
        *self.cached.lock().await = None;
    }
}
