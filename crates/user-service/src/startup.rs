//! Builds the User Service from its settings and runs it until shutdown.
//! `Application::build` binds the listeners first, so tests start the real thing on
//! port 0 and read the bound addresses back.

use crate::config::Settings;
use crate::reads::Reads;
use crate::relay::ToAuthService;
use crate::service::Directory;
use crate::storage::{self, Stores};
use crate::transport::grpc::UserGrpc;
use anyhow::Context as _;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use identity_proto::user::v1::user_service_server::UserServiceServer;
use platform::access::{Authorizer, ClientCredentials, TokenSource};
use platform::clock::SharedClock;
use platform::grpc::MAX_MESSAGE_BYTES;
use platform::http_aux;
use platform::metrics::Metrics;
use platform::outbox::{Relay, RelayMetrics};
use platform::tasks::Supervisor;

/// How often delivered outbox events are pruned.
const PRUNE_EVERY: std::time::Duration = std::time::Duration::from_secs(15 * 60);
use platform::tls::Tls;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// A built, bound, not yet running User Service.
pub struct Application {
    grpc: TcpListener,
    http: TcpListener,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    directory: Arc<Directory>,
    store: Stores,
    auth: AuthServiceClient<Channel>,
    credentials: Option<Arc<dyn TokenSource>>,
    tls: Option<Tls>,
    clock: SharedClock,
    metrics: Metrics,
}

/// Opens the database and applies the migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Stores> {
    let store = storage::connect(settings.database_url.expose_secret())
        .await
        .context("cannot open the database")?;
    store
        .db
        .migrate()
        .await
        .context("cannot apply migrations")?;
    Ok(store)
}

impl Application {
    /// Binds both ports and opens and migrates the database.
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let grpc = TcpListener::bind(settings.grpc_addr)
            .await
            .with_context(|| format!("cannot bind gRPC address {}", settings.grpc_addr))?;
        let http = TcpListener::bind(settings.http_addr)
            .await
            .with_context(|| format!("cannot bind HTTP address {}", settings.http_addr))?;
        Self::build_on(settings, grpc, http, clock).await
    }

    /// Like [`Application::build`], on listeners the caller bound (tests wiring
    /// two services to each other bind both first).
    pub async fn build_on(
        settings: Settings,
        grpc: TcpListener,
        http: TcpListener,
        clock: SharedClock,
    ) -> anyhow::Result<Self> {
        platform::tls::install_crypto_provider();
        let store = open_store(&settings).await?;
        let tls = Tls::from_files(&settings.tls_files())?;
        let auth = platform::access::auth_client(&settings.auth_url, tls.as_ref().map(Tls::client))
            .map_err(anyhow::Error::msg)?;
        let credentials: Option<Arc<dyn TokenSource>> = match settings.client_credentials()? {
            Some((id, secret)) => Some(ClientCredentials::new(auth.clone(), id, secret)),
            None => {
                tracing::warn!(
                    "no service account configured (USER_CLIENT_ID): deletions wait in the outbox"
                );
                None
            }
        };
        let directory = Arc::new(Directory {
            store: store.users.clone(),
            reads: Reads::spawn(store.users.clone()),
            clock: clock.clone(),
            outbox_wake: Arc::new(Notify::new()),
        });
        Ok(Self {
            grpc_addr: grpc.local_addr()?,
            http_addr: http.local_addr()?,
            grpc,
            http,
            directory,
            store,
            auth,
            credentials,
            tls,
            clock,
            metrics: Metrics::new("user")?,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.grpc_addr
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.http_addr
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight calls finish.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(grpc = %self.grpc_addr, http = %self.http_addr, "user-service listening");
        let mut tasks = Supervisor::new(shutdown.clone());
        let relay = Relay {
            store: self.store.outbox.clone(),
            deliver: Arc::new(ToAuthService::new(
                self.auth.clone(),
                self.credentials.clone(),
            )),
            clock: self.clock.clone(),
            wake: self.directory.outbox_wake.clone(),
            poll: std::time::Duration::from_millis(500),
            metrics: RelayMetrics::new(self.metrics.registry())?,
        };
        tasks.spawn("outbox relay", move |stop| relay.clone().run(stop));
        let (outbox, clock) = (self.store.outbox.clone(), self.clock.clone());
        tasks.every("pruning", PRUNE_EVERY, move || {
            let (outbox, now) = (outbox.clone(), clock.now());
            async move {
                platform::outbox::prune_delivered(outbox.as_ref(), now)
                    .await
                    .map(drop)
            }
        });
        let users = UserServiceServer::new(UserGrpc::new(
            self.directory.clone(),
            Authorizer::new(self.auth.clone()),
        ))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let grpc = platform::grpc::serve(
            self.grpc,
            tonic::service::Routes::new(users),
            "identity.user.v1.UserService",
            &[identity_proto::FILE_DESCRIPTOR_SET],
            &[],
            self.tls.as_ref().map(Tls::server),
            self.metrics.clone(),
            shutdown.clone(),
        );
        let router = http_aux::router(
            Arc::new(self.store.db.clone()),
            self.metrics.clone(),
            shutdown.clone(),
        );
        let http = http_aux::serve(self.http, router, shutdown.clone());
        let (grpc_result, http_result) = tokio::join!(grpc, http);
        shutdown.cancel();
        tasks.join().await;
        self.directory.reads.finish().await;
        tracing::info!("user-service stopped");
        grpc_result.context("gRPC server failed")?;
        http_result.context("HTTP server failed")?;
        Ok(())
    }
}
