//! Builds the Auth Service from its settings and runs it in the shell every
//! service shares ([`Shell`]): what is here is only the Auth Service's own.

use crate::access::freshness::{Freshness, Views};
use crate::accounts::Accounts;
use crate::config::Settings;
use crate::context::Context;
use crate::crypto::hasher::{HashParams, PasswordHasher};
use crate::crypto::jwt::TokenAuthority;
use crate::keys::{Kek, KeyRing};
use crate::notify::{Fanout, Smtp, Webhook, WebhookSecret};
use crate::relay::{Router, ToUserService};
use crate::retention::{Pruner, Retention};
use crate::storage;
use crate::transport::client::TrustedProxies;
use crate::transport::ext_authz::{CHECK_METHOD, ExtAuthz};
use crate::transport::grpc::AuthGrpc;
use crate::transport::http::HttpState;
use anyhow::Context as _;
use base64::Engine as _;
use envoy_types::ext_authz::v3::pb::AuthorizationServer;
use futures::future::BoxFuture;
use identity_proto::auth::v1::auth_service_server::AuthServiceServer;
use platform::access::{CachedToken, TokenError, TokenIssuer, TokenSource};
use platform::clock::SharedClock;
use platform::db::Database;
use platform::grpc::MAX_MESSAGE_BYTES;
use platform::http_aux::Readiness;
use platform::outbox::{Relay, RelayMetrics};
use platform::server::{Api, Listeners, PRUNE_EVERY, Shell};
use platform::tasks::Supervisor;
use platform::tls;
use secrecy::ExposeSecret;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// Keys are re-read this many sync intervals apart (they change rarely).
const KEY_REFRESH_EVERY: u32 = 20;

/// A built, bound, not yet running Auth Service.
pub struct Application {
    shell: Shell,
    core: Core,
    clock: SharedClock,
    settings: Settings,
    proxies: TrustedProxies,
    router: Router,
    retention: Retention,
}

/// Handles a running service's owner keeps (tests, admin subcommands).
#[derive(Clone)]
pub struct Handle {
    /// The key ring, for rotation.
    pub keys: Arc<KeyRing>,
    /// The core, for what an operator does from the command line (bootstrap an
    /// administrator, create service accounts).
    pub core: Arc<Context>,
    /// The pruning task's work, to run a pass on demand.
    pub pruner: Pruner,
}

/// Ready while the database answers and the view of revocations is fresh.
struct DbReadiness {
    db: Database,
    freshness: Arc<Freshness>,
}

impl Readiness for DbReadiness {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            self.freshness
                .check(platform::clock::monotonic_now())
                .map_err(|e| e.to_string())?;
            self.db.check().await
        })
    }
}

/// Opens the database and applies the migrations.
pub async fn open_store(settings: &Settings) -> anyhow::Result<Database> {
    let store = storage::connect(settings.server.database_url.expose_secret())
        .await
        .context("cannot open the database")?;
    store.migrate().await.context("cannot apply migrations")?;
    Ok(store)
}

/// How long each kind of row is kept (shared with the `prune` subcommand).
pub fn retention(settings: &Settings) -> anyhow::Result<Retention> {
    let d = chrono::Duration::from_std;
    Ok(Retention {
        access_token_ttl: d(settings.access_token_ttl)?,
        refresh_token_ttl: d(settings.refresh_token_ttl)?,
        session_max_lifetime: d(settings.session_max_lifetime)?,
        audit: d(settings.audit_retention)?,
        security_events: d(settings.events_retention)?,
    })
}

/// The key ring the settings describe (shared with the `rotate-keys` subcommand).
pub fn key_ring(
    settings: &Settings,
    db: platform::db::Database,
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
        db,
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
        settings.validate()?;
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
        let core = build_core(&settings, clock.clone()).await?;
        Accounts(&core.authenticator).ensure_own_account().await?;
        let proxies =
            TrustedProxies::parse(&settings.trusted_proxies).map_err(anyhow::Error::msg)?;
        let own: Arc<dyn TokenSource> = CachedToken::new(OwnToken(core.authenticator.clone()));
        let to_users = ToUserService::new(
            &settings.user_url,
            own,
            shell.tls().map(tls::Tls::client),
            core.db.clone(),
        )
        .map_err(anyhow::Error::msg)?;
        let router = Router {
            users: to_users,
            notifications: notification_sink(&settings, &clock)?,
        };
        let retention = retention(&settings)?;
        Ok(Self {
            retention,
            shell,
            core,
            clock,
            settings,
            proxies,
            router,
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

    /// Handles to the running service's parts.
    pub fn handle(&self) -> Handle {
        Handle {
            keys: self.core.keys.clone(),
            core: self.core.authenticator.clone(),
            pruner: self.pruner(),
        }
    }

    fn pruner(&self) -> Pruner {
        Pruner::new(self.core.db.clone(), self.clock.clone(), self.retention)
    }

    /// Serves until `shutdown` is cancelled, then lets in-flight calls finish.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let sync = self.settings.sync_interval;
        let pruner = self.pruner();
        let Core {
            authenticator,
            db,
            keys,
            views,
            outbox_wake,
        } = self.core;
        views.freshness.register(self.shell.metrics().registry())?;
        let mut tasks = Supervisor::new(shutdown.clone());
        db.maintain(&mut tasks);
        let v = views.clone();
        tasks.every("revocation poll", sync, move || {
            let v = v.clone();
            async move { v.poll_revocations().await }
        });
        let v = views.clone();
        tasks.every("role poll", sync, move || {
            let v = v.clone();
            async move { v.poll_roles().await }
        });
        let (feed, feed_db) = (authenticator.clone(), db.clone());
        tasks.every(
            "security event poll",
            self.settings.events_poll,
            move || {
                let (feed, db) = (feed.clone(), feed_db.clone());
                async move { feed.feed.poll(&db).await }
            },
        );
        let feed_stop = authenticator.feed.stop.clone();
        tasks.spawn("security event subscriptions", move |stop| {
            let feed_stop = feed_stop.clone();
            async move {
                stop.cancelled().await;
                feed_stop.cancel();
            }
        });
        tasks.every("signing key refresh", sync * KEY_REFRESH_EVERY, move || {
            let keys = keys.clone();
            async move { keys.refresh().await }
        });
        let relay = Relay {
            db: db.clone(),
            deliver: Arc::new(self.router.clone()),
            clock: self.clock.clone(),
            wake: outbox_wake,
            poll: std::time::Duration::from_millis(500),
            metrics: RelayMetrics::new(self.shell.metrics().registry())?,
        };
        tasks.spawn("outbox relay", move |stop| relay.clone().run(stop));
        tasks.every("pruning", PRUNE_EVERY, move || {
            let pruner = pruner.clone();
            async move { pruner.prune_once().await.map(drop) }
        });

        let auth =
            AuthServiceServer::new(AuthGrpc::new(authenticator.clone(), self.proxies.clone()))
                .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let ext_authz = AuthorizationServer::new(ExtAuthz::new(
            authenticator.clone(),
            !self.settings.gateway_strip_authorization,
        ))
        .max_decoding_message_size(MAX_MESSAGE_BYTES);
        let routes = crate::transport::http::routes(HttpState {
            core: authenticator.clone(),
            issuer: self.settings.issuer.clone(),
            public_url: self
                .settings
                .public_http_url
                .clone()
                .map(|u| u.trim_end_matches('/').to_owned())
                .unwrap_or_else(|| format!("http://{}", self.shell.http_addr())),
            jwks_max_age: crate::keys::jwks_max_age(chrono::Duration::from_std(
                self.settings.key_rotation_interval,
            )?),
            forward_uri_header: self.settings.forward_uri_header.clone(),
            proxies: self.proxies.clone(),
        });
        let api = Api {
            grpc: tonic::service::Routes::new(auth).add_service(ext_authz),
            health: "identity.auth.v1.AuthService",
            undescribed: &[CHECK_METHOD],
            readiness: Arc::new(DbReadiness {
                db: db.clone(),
                freshness: views.freshness.clone(),
            }),
            http: routes,
        };
        let jobs_done = async move { authenticator.finish_jobs().await };
        self.shell.run(shutdown, tasks, api, jobs_done).await
    }
}

/// The parts of a running Auth Service.
pub struct Core {
    pub authenticator: Arc<Context>,
    pub db: Database,
    pub keys: Arc<KeyRing>,
    pub views: Arc<Views>,
    pub outbox_wake: Arc<tokio::sync::Notify>,
}

/// Opens the database, loads the keys, revocations and roles, and builds the
/// core (the service and the admin subcommands share it).
pub async fn build_core(settings: &Settings, clock: SharedClock) -> anyhow::Result<Core> {
    settings.validate()?;
    let store = open_store(settings).await?;
    let keys = Arc::new(key_ring(settings, store.clone(), clock.clone())?);
    keys.refresh().await.context("cannot load signing keys")?;
    let access_ttl = chrono::Duration::from_std(settings.access_token_ttl)?;
    let horizon = access_ttl + chrono::Duration::minutes(1);
    let views =
        Arc::new(Views::load(store.clone(), clock.clone(), horizon, settings.max_sync_age).await?);
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
    let authenticator = Arc::new(Context {
        db: store.clone(),
        hasher,
        keys: keys.clone(),
        tokens,
        revoked: views.revoked.clone(),
        authz: views.authz.clone(),
        verified: crate::crypto::verified::VerifiedTokens::with_capacity(
            settings.verified_token_cache,
        ),
        clock,
        refresh_ttl: chrono::Duration::from_std(settings.refresh_token_ttl)?,
        session_max_lifetime: chrono::Duration::from_std(settings.session_max_lifetime)?,
        registrations_per_minute: settings.registrations_per_minute,
        outbox_wake: outbox_wake.clone(),
        freshness: views.freshness.clone(),
        recovery: crate::context::RecoverySettings {
            notifications: settings.sends_notifications(),
            email_verification_ttl: chrono::Duration::from_std(settings.email_verification_ttl)?,
            password_reset_ttl: chrono::Duration::from_std(settings.password_reset_ttl)?,
            mfa_challenge_ttl: chrono::Duration::from_std(settings.mfa_challenge_ttl)?,
            require_verified_email: settings.require_verified_email,
        },
        jobs: platform::tasks::Jobs::new(crate::context::MAX_JOBS),
        feed: crate::signals::Feed::new(
            settings.events_heartbeat,
            chrono::Duration::from_std(settings.events_retention)?,
            settings.events_max_subscribers,
            settings.events_long_poll,
        ),
        imports: Arc::new(tokio::sync::Semaphore::new(crate::import::MAX_RUNNING)),
    });
    Ok(Core {
        authenticator,
        db: store,
        keys,
        views,
        outbox_wake,
    })
}

/// The configured notification sink, if any.
fn notification_sink(
    settings: &Settings,
    clock: &SharedClock,
) -> anyhow::Result<Option<Arc<dyn platform::outbox::Deliver>>> {
    let mut sinks: Vec<Arc<dyn platform::outbox::Deliver>> = Vec::new();
    if let (Some(url), Some(secret)) = (&settings.notify_url, &settings.notify_secret) {
        let secret = WebhookSecret::parse(secret).map_err(anyhow::Error::msg)?;
        let webhook = Webhook::new(
            url,
            secret,
            &settings.issuer,
            settings.public_url.clone(),
            clock.clone(),
        )
        .map_err(anyhow::Error::msg)?;
        sinks.push(Arc::new(webhook));
    }
    if let Some(url) = &settings.smtp_url {
        let smtp = Smtp::new(url, &settings.smtp_from, settings.public_url.clone())
            .map_err(anyhow::Error::msg)?;
        sinks.push(Arc::new(smtp));
    }
    Ok(match sinks.len() {
        0 => {
            tracing::warn!(
                "no notification sink (AUTH_NOTIFY_URL, AUTH_SMTP_URL): email verification, \
                 password reset and email change are off"
            );
            None
        }
        1 => sinks.pop(),
        _ => Some(Arc::new(Fanout(sinks))),
    })
}

/// The Auth Service's own tokens, minted in-process for its relay.
struct OwnToken(Arc<Context>);

impl TokenIssuer for OwnToken {
    fn issue(&self) -> BoxFuture<'_, Result<(String, i64), TokenError>> {
        Box::pin(async move {
            self.0
                .own_token()
                .await
                .map_err(|e| TokenError::Issuer(Box::new(e)))
        })
    }
}
