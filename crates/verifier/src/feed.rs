//! The background side: fetches the JWKS and the role table, subscribes to
//! `SubscribeSecurityEvents` with the service account's token, applies every
//! message, and reconnects with backoff from the last cursor (any replica
//! serves it). A stream silent for longer than `max_staleness` is dropped and
//! reopened; a cursor the Auth Service no longer keeps (`OUT_OF_RANGE`)
//! restarts from the oldest event with every older token to be refreshed.

use crate::config::{Config, ConnectError};
use crate::credentials::ServiceToken;
use crate::keys::parse_jwks;
use crate::state::RoleTable;
use crate::verifier::{Handled, Shared, needs_roles};
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use identity_proto::auth::v1::{
    GetJwksRequest, ListRolesRequest, SubscribeSecurityEventsRequest,
    SubscribeSecurityEventsResponse as SecurityEvent,
};
use platform::access::authorization;
use platform::clock::monotonic_now;
use platform::tasks::Supervisor;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Request};

/// Unary calls (JWKS, roles, fallback) give up after this.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(5);
const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// A stream is dropped as dead after at least this much silence.
const MIN_SILENCE: Duration = Duration::from_secs(5);
/// Gauges refreshed, and old entries forgotten, this often.
const HOUSEKEEPING: Duration = Duration::from_secs(1);

/// Why a stream ended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FeedError {
    #[error("the Auth Service refused: {0}")]
    Status(#[from] tonic::Status),
    #[error("the JWKS is unusable: {0}")]
    Keys(#[from] crate::keys::KeyError),
    #[error("the stream was silent for {0:?}")]
    Silent(Duration),
    #[error("the stream ended")]
    Ended,
    #[error("the cursor is too old: resynchronising")]
    Resync,
}

/// The feed's connection and where it is in the stream.
pub(crate) struct Feed {
    shared: Arc<Shared>,
    client: AuthServiceClient<Channel>,
    token: ServiceToken,
    cursor: parking_lot::Mutex<String>,
    jwks_refresh: Duration,
}

impl Feed {
    pub(crate) fn new(shared: Arc<Shared>, config: &Config) -> Result<Self, ConnectError> {
        // No request timeout on the channel: it would cut the stream. Unary
        // calls set their own; HTTP/2 keep-alives notice a dead peer.
        let mut endpoint = Endpoint::from_shared(config.auth_url.clone())?
            .connect_timeout(Duration::from_secs(2))
            .http2_keep_alive_interval(Duration::from_secs(5))
            .keep_alive_timeout(Duration::from_secs(5))
            .keep_alive_while_idle(true);
        if let Some(tls) = &config.tls {
            endpoint = endpoint.tls_config(tls.clone())?;
        }
        let client = AuthServiceClient::new(endpoint.connect_lazy());
        let token = ServiceToken::new(
            client.clone(),
            config.client_id.clone(),
            config.client_secret.clone(),
        );
        Ok(Self {
            shared,
            client,
            token,
            cursor: parking_lot::Mutex::new(String::new()),
            jwks_refresh: config.jwks_refresh,
        })
    }

    /// The Auth Service client (for the fallback).
    pub(crate) fn client(&self) -> AuthServiceClient<Channel> {
        self.client.clone()
    }

    /// Starts the feed, the key refresher and the housekeeping in `tasks`.
    pub(crate) fn spawn(self: &Arc<Self>, tasks: &mut Supervisor) {
        let feed = self.clone();
        tasks.spawn("token verifier feed", move |stop| feed.clone().run(stop));
        let feed = self.clone();
        tasks.spawn("token verifier keys", move |stop| {
            feed.clone().refresh_keys(stop)
        });
        let shared = self.shared.clone();
        tasks.every("token verifier housekeeping", HOUSEKEEPING, move || {
            shared.housekeeping();
            futures::future::ready(Ok::<(), std::convert::Infallible>(()))
        });
    }

    fn unary<T>(message: T) -> Request<T> {
        let mut r = Request::new(message);
        r.set_timeout(CALL_TIMEOUT);
        r
    }

    async fn authorized<T>(&self, message: T) -> Result<Request<T>, FeedError> {
        let token = self.token.get().await?;
        let mut r = Request::new(message);
        r.metadata_mut()
            .insert("authorization", authorization(&token)?);
        Ok(r)
    }

    /// Fetches the JWKS and replaces the keys with it.
    pub(crate) async fn fetch_keys(&self) -> Result<(), FeedError> {
        let reply = self
            .client
            .clone()
            .get_jwks(Self::unary(GetJwksRequest {}))
            .await?
            .into_inner();
        self.shared.keys.replace(parse_jwks(&reply.jwks_json)?);
        Ok(())
    }

    /// Loads every role's permissions with `ListRoles` (`roles:read`).
    async fn load_roles(&self) -> Result<(), FeedError> {
        let mut request = self.authorized(ListRolesRequest {}).await?;
        request.set_timeout(CALL_TIMEOUT);
        let roles = self
            .client
            .clone()
            .list_roles(request)
            .await?
            .into_inner()
            .roles;
        let table: RoleTable = roles.into_iter().map(|r| (r.name, r.permissions)).collect();
        self.shared.state.set_roles(table);
        Ok(())
    }

    /// Keeps a stream open until `stop`, reconnecting with backoff.
    async fn run(self: Arc<Self>, stop: CancellationToken) {
        let mut backoff = MIN_BACKOFF;
        while !stop.is_cancelled() {
            let started = monotonic_now();
            let Err(e) = self.stream(&stop).await else {
                return;
            };
            *self.shared.last_error.lock() = Some(e.to_string());
            if matches!(&e, FeedError::Status(s) if s.code() == Code::Unauthenticated) {
                // Our token, not the feed: present a fresh one next time.
                self.token.forget().await;
            }
            if matches!(e, FeedError::Resync) {
                tracing::warn!(
                    "security-event cursor too old: resynchronising from the oldest event"
                );
                continue;
            }
            // A stream that lived a while starts its next backoff afresh.
            if started.elapsed() > self.shared.max_staleness {
                backoff = MIN_BACKOFF;
            }
            tracing::warn!(error = %e, retry_in = ?backoff, "security-event feed interrupted");
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// One stream: returns `Ok` only when stopped.
    async fn stream(&self, stop: &CancellationToken) -> Result<(), FeedError> {
        if !self.shared.keys.loaded() {
            self.fetch_keys().await?;
        }
        if !self.shared.state.roles_loaded() {
            self.load_roles().await?;
        }
        let cursor = self.cursor.lock().clone();
        let request = self
            .authorized(SubscribeSecurityEventsRequest {
                cursor,
                event_types: vec![],
            })
            .await?;
        self.shared.state.stream_started();
        let mut stream = self
            .client
            .clone()
            .subscribe_security_events(request)
            .await
            .map_err(|s| self.refused(s))?
            .into_inner();
        // A stream silent past the staleness bound is presumed dead (a peer
        // that vanished without closing); never sooner than MIN_SILENCE, so a
        // tiny bound does not turn into a reconnection storm.
        let silent = self.shared.max_staleness.max(MIN_SILENCE);
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => return Ok(()),
                next = tokio::time::timeout(silent, stream.message()) => next,
            };
            let msg = next
                .map_err(|_| FeedError::Silent(silent))?
                .map_err(|s| self.refused(s))?
                .ok_or(FeedError::Ended)?;
            self.process(msg).await;
            *self.shared.last_error.lock() = None;
        }
    }

    /// An error status; `OUT_OF_RANGE` starts a resynchronisation.
    fn refused(&self, status: tonic::Status) -> FeedError {
        if status.code() == Code::OutOfRange {
            self.cursor.lock().clear();
            self.shared
                .state
                .resync(self.shared.clock.now().timestamp());
            return FeedError::Resync;
        }
        FeedError::Status(status)
    }

    /// Applies a message (fetching the JWKS again once for an unknown key),
    /// then remembers its cursor.
    pub(crate) async fn process(&self, msg: SecurityEvent) {
        let mut handled = self.shared.handle(&msg);
        if handled == Handled::Ignored(crate::event::SetError::UnknownKey) {
            // A SET signed by a key published after our last fetch.
            if let Err(e) = self.fetch_keys().await {
                tracing::warn!(error = %e, "cannot fetch the JWKS");
            }
            handled = self.shared.handle(&msg);
        }
        match handled {
            Handled::Ignored(e) => self.shared.ignore(&msg, &e),
            Handled::Applied(event) if needs_roles(&event) => {
                // The SET did not carry the role's permissions: read them.
                if let Err(e) = self.load_roles().await {
                    if matches!(&e, FeedError::Status(s) if s.code() == Code::Unauthenticated) {
                        self.token.forget().await;
                    }
                    tracing::warn!(error = %e, "cannot reload the role table");
                }
            }
            Handled::Applied(_) | Handled::Heartbeat => {}
        }
        *self.cursor.lock() = msg.cursor;
    }

    /// Refetches the JWKS every `jwks_refresh`, and when an unknown kid asks.
    async fn refresh_keys(self: Arc<Self>, stop: CancellationToken) {
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.jwks_refresh) => {}
                () = self.shared.keys.refetch.notified() => {}
            }
            if let Err(e) = self.fetch_keys().await {
                tracing::warn!(error = %e, "cannot refresh the JWKS");
            }
        }
    }
}
