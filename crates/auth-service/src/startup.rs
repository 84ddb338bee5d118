//! Builds the Auth Service from its settings and runs it until shutdown.
//! `Application::build` binds the listeners first, so tests start the real thing on
//! port 0 and read the bound addresses back.

use crate::config::Settings;
use crate::crypto::hasher::{HashParams, PasswordHasher};
use crate::crypto::jwt::TokenAuthority;
use crate::crypto::keys::{Kek, KeyRing};
use crate::relay::ToUserService;
use crate::revocation::{self, RevocationSet};
use crate::service::Authenticator;
use crate::storage::{self, AuthStore};
use crate::transport::grpc::AuthGrpc;
use anyhow::Context as _;
use base64::Engine as _;
use futures::future::BoxFuture;
use identity_proto::auth::v1::auth_service_server::AuthServiceServer;
use platform::caller::ServiceSecret;
use platform::clock::SharedClock;
use platform::grpc::MAX_MESSAGE_BYTES;
use platform::http_aux::{self, Readiness};
use platform::metrics::Metrics;
use platform::outbox::{Relay, RelayMetrics};
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Keys are re-read this many sync intervals apart (they change rarely).
const KEY_REFRESH_EVERY: u32 = 20;

/// A built, bound, not yet running Auth Service.
pub struct Application {
    grpc: TcpListener,
    http: TcpListener,
    grpc_addr: SocketAddr,
    http_addr: SocketAddr,
    core: Arc<Authenticator>,
    store: Arc<dyn AuthStore>,
    keys: Arc<KeyRing>,
    revoked: Arc<RevocationSet>,
    clock: SharedClock,
    settings: Settings,
    metrics: Metrics,
    outbox_wake: Arc<tokio::sync::Notify>,
    service_secret: Option<ServiceSecret>,
    to_users: ToUserService,
}

/// Handles a running service's owner keeps (tests, admin subcommands).
#[derive(Clone)]
pub struct Handle {
    /// The key ring, for rotation.
    pub keys: Arc<KeyRing>,
}

struct DbReadiness(Arc<dyn AuthStore>);

impl Readiness for DbReadiness {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.0
                .ping()
                .await
                .map_err(|_| "database unreachable".to_owned())
        })
    }
}

/// Opens the database and applies the migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Arc<dyn AuthStore>> {
    let store = storage::connect(settings.database_url.expose_secret())
        .await
        .context("cannot open the database")?;
    store.migrate().await.context("cannot apply migrations")?;
    Ok(store)
}

/// The key ring the settings describe (shared with the `rotate-keys` subcommand).
pub fn key_ring(
    settings: &Settings,
    store: Arc<dyn AuthStore>,
    clock: SharedClock,
) -> anyhow::Result<KeyRing> {
    let kek = match &settings.key_encryption_key {
        None => None,
        Some(b64) => {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.expose_secret().trim())
                .context("AUTH_KEY_ENCRYPTION_KEY is not base64")?;
            Some(Kek::new(&raw)?)
        }
    };
    Ok(KeyRing::new(
        store,
        clock,
        kek,
        chrono::Duration::from_std(settings.key_rotation_interval)?,
        chrono::Duration::from_std(settings.access_token_ttl)? + chrono::Duration::minutes(1),
    ))
}

impl Application {
    /// Validates the settings, binds both ports, opens and migrates the database and
    /// loads (or creates) the signing keys.
    pub async fn build(settings: Settings, clock: SharedClock) -> anyhow::Result<Self> {
        settings.validate().map_err(anyhow::Error::msg)?;
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
        settings.validate().map_err(anyhow::Error::msg)?;
        let store = open_store(&settings).await?;
        let keys = Arc::new(key_ring(&settings, store.clone(), clock.clone())?);
        keys.refresh().await.context("cannot load signing keys")?;

        let access_ttl = chrono::Duration::from_std(settings.access_token_ttl)?;
        let revoked = Arc::new(RevocationSet::new(
            access_ttl + chrono::Duration::minutes(1),
        ));
        revoked.poll(store.as_ref(), clock.now()).await?;

        let workers = settings
            .hash_workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        let hasher = PasswordHasher::new(HashParams::default(), workers, settings.hash_queue)?;
        let tokens = TokenAuthority::new(
            settings.issuer.clone(),
            settings.audience.clone(),
            access_ttl,
        );
        let outbox_wake = Arc::new(tokio::sync::Notify::new());
        let service_secret = match &settings.service_secret {
            Some(s) => Some(ServiceSecret::new(s.clone()).map_err(anyhow::Error::msg)?),
            None => {
                tracing::warn!(
                    "AUTH_SERVICE_SECRET is not set: internal calls are refused and registrations wait in the outbox"
                );
                None
            }
        };
        let core = Arc::new(Authenticator {
            store: store.clone(),
            hasher,
            keys: keys.clone(),
            tokens,
            revoked: revoked.clone(),
            clock: clock.clone(),
            refresh_ttl: chrono::Duration::from_std(settings.refresh_token_ttl)?,
            outbox_wake: outbox_wake.clone(),
        });
        let to_users = ToUserService::new(&settings.user_url, service_secret.clone())
            .map_err(anyhow::Error::msg)?;
        Ok(Self {
            grpc_addr: grpc.local_addr()?,
            http_addr: http.local_addr()?,
            grpc,
            http,
            core,
            store,
            keys,
            revoked,
            clock,
            settings,
            metrics: Metrics::new("auth")?,
            outbox_wake,
            service_secret,
            to_users,
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

    /// Handles to the running service's parts.
    pub fn handle(&self) -> Handle {
        Handle {
            keys: self.keys.clone(),
        }
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight calls finish.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        tracing::info!(grpc = %self.grpc_addr, http = %self.http_addr, "auth-service listening");
        let sync = self.settings.sync_interval;
        let poller = tokio::spawn(revocation::run_poller(
            self.revoked.clone(),
            self.store.clone(),
            self.clock.clone(),
            sync,
            shutdown.clone(),
        ));
        let key_task = tokio::spawn(refresh_keys(
            self.keys.clone(),
            sync * KEY_REFRESH_EVERY,
            shutdown.clone(),
        ));

        let relay = tokio::spawn(
            Relay {
                store: self.store.outbox(),
                deliver: Arc::new(self.to_users.clone()),
                clock: self.clock.clone(),
                wake: self.outbox_wake.clone(),
                poll: std::time::Duration::from_millis(500),
                metrics: RelayMetrics::new(self.metrics.registry())?,
            }
            .run(shutdown.clone()),
        );

        let auth = AuthServiceServer::new(AuthGrpc::new(
            self.core.clone(),
            self.service_secret.clone(),
        ))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let grpc = platform::grpc::serve(
            self.grpc,
            tonic::service::Routes::new(auth),
            "identity.auth.v1.AuthService",
            &[identity_proto::FILE_DESCRIPTOR_SET],
            self.metrics.clone(),
            shutdown.clone(),
        );

        let router = http_aux::router(
            Arc::new(DbReadiness(self.store.clone())),
            self.metrics.clone(),
            shutdown.clone(),
        )
        .merge(crate::transport::http::routes(self.core.clone()));
        let http = http_aux::serve(self.http, router, shutdown.clone());

        let (grpc_result, http_result) = tokio::join!(grpc, http);
        shutdown.cancel();
        let _ = tokio::join!(poller, key_task, relay);
        tracing::info!("auth-service stopped");
        grpc_result.context("gRPC server failed")?;
        http_result.context("HTTP server failed")?;
        Ok(())
    }
}

async fn refresh_keys(keys: Arc<KeyRing>, every: std::time::Duration, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = tick.tick() => {
                if let Err(e) = keys.refresh().await {
                    tracing::warn!(error = %e, "signing key refresh failed; keeping the current keys");
                }
            }
        }
    }
}
