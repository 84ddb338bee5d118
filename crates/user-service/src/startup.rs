//! Builds the User Service from its settings and runs it in the shell every
//! service shares ([`Shell`]): what is here is only the User Service's own.

use crate::config::{Settings, TokenVerification};
use crate::policy::Access;
use crate::reads::Reads;
use crate::relay::ToAuthService;
use crate::service::Directory;
use crate::storage;
use crate::transport::grpc::UserGrpc;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use identity_proto::user::v1::user_service_server::UserServiceServer;
use platform::access::{Authorizer, ClientCredentials, TokenSource};
use platform::clock::SharedClock;
use platform::db::Database;
use platform::grpc::MAX_MESSAGE_BYTES;
use platform::outbox::{Relay, RelayMetrics};
use platform::server::{Api, Listeners, PRUNE_EVERY, Shell};
use platform::tasks::Supervisor;
use platform::tls::Tls;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

/// The verifier's configuration when tokens are verified locally (the
/// default), which needs the service account; `None` otherwise.
fn verifier_config(
    settings: &Settings,
    shell: &Shell,
    client: Option<&(platform::ids::ClientId, secrecy::SecretString)>,
    clock: &SharedClock,
) -> Option<identity_verifier::Config> {
    if settings.token_verification == TokenVerification::Remote {
        return None;
    }
    let Some((id, secret)) = client else {
        tracing::warn!(
            "no service account configured (USER_CLIENT_ID): every token is checked with CheckPermission"
        );
        return None;
    };
    let mut config = identity_verifier::Config::new(
        settings.auth_url.clone(),
        id.as_str(),
        secret.clone(),
        settings.token_issuer.clone(),
        settings.token_audience.clone(),
    );
    config.tls = shell.tls().map(Tls::client);
    config.max_staleness = settings.verifier_max_staleness;
    config.retention = settings.verifier_retention;
    config.clock = clock.clone();
    config.registry = Some(shell.metrics().registry().clone());
    Some(config)
}

/// A built, bound, not yet running User Service.
pub struct Application {
    shell: Shell,
    directory: Arc<Directory>,
    db: Database,
    auth: AuthServiceClient<Channel>,
    credentials: Option<Arc<dyn TokenSource>>,
    /// The local token verifier's settings, unless decisions are remote.
    verifier: Option<identity_verifier::Config>,
    clock: SharedClock,
}

/// Opens the database and applies the migrations.
pub async fn open_database(settings: &Settings) -> anyhow::Result<Database> {
    settings.server.open_database(&storage::MIGRATIONS).await
}

impl Application {
    /// Binds both ports and opens and migrates the database.
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        let Listeners { grpc, http } = settings.server.bind().await?;
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
        let shell = Shell::new(&settings.server, Listeners { grpc, http })?;
        let db = open_database(&settings).await?;
        let auth = platform::access::auth_client(&settings.auth_url, shell.tls().map(Tls::client))
            .map_err(anyhow::Error::msg)?;
        let client = settings.client_credentials()?;
        let verifier = verifier_config(&settings, &shell, client.as_ref(), &clock);
        let credentials: Option<Arc<dyn TokenSource>> = match client {
            Some((id, secret)) => Some(ClientCredentials::new(auth.clone(), id, secret)),
            None => {
                tracing::warn!(
                    "no service account configured (USER_CLIENT_ID): deletions wait in the outbox"
                );
                None
            }
        };
        let directory = Arc::new(Directory {
            db: db.clone(),
            reads: Reads::spawn(db.clone()),
            clock: clock.clone(),
            outbox_wake: Arc::new(Notify::new()),
        });
        Ok(Self {
            shell,
            directory,
            db,
            auth,
            credentials,
            verifier,
            clock,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> SocketAddr {
        self.shell.grpc_addr()
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> SocketAddr {
        self.shell.http_addr()
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight calls finish.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let mut tasks = Supervisor::new(shutdown.clone());
        self.directory.db.maintain(&mut tasks);
        let relay = Relay {
            db: self.directory.db.clone(),
            deliver: Arc::new(ToAuthService::new(
                self.auth.clone(),
                self.credentials.clone(),
            )),
            clock: self.clock.clone(),
            wake: self.directory.outbox_wake.clone(),
            poll: std::time::Duration::from_millis(500),
            metrics: RelayMetrics::new(self.shell.metrics().registry())?,
        };
        tasks.spawn("outbox relay", move |stop| relay.clone().run(stop));
        let (db, clock) = (self.directory.db.clone(), self.clock.clone());
        tasks.every("pruning", PRUNE_EVERY, move || {
            let (db, now) = (db.clone(), clock.now());
            async move { platform::outbox::prune_delivered(&db, now).await.map(drop) }
        });
        let authorizer = Authorizer::new(self.auth.clone());
        let access = match self.verifier {
            Some(config) => Access::local(
                identity_verifier::Verifier::start(config, &mut tasks)?,
                authorizer,
            ),
            None => Access::remote(authorizer),
        };
        let users = UserServiceServer::new(UserGrpc::new(self.directory.clone(), access))
            .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let api = Api {
            grpc: tonic::service::Routes::new(users),
            health: "identity.user.v1.UserService",
            undescribed: &[],
            readiness: Arc::new(self.db.clone()),
            http: Default::default(),
        };
        let directory = self.directory;
        let reads_done = async move { directory.reads.finish().await };
        self.shell.run(shutdown, tasks, api, reads_done).await
    }
}
