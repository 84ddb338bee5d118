//! `spawn_auth`: the real Auth Service on a fresh database with a manual
//! clock; `connect`: a verifier subscribed to it with a service account of
//! the `identity-service` role.

use auth_service::accounts::NewServiceAccount;
use auth_service::startup::Application;
use identity_proto::auth::v1 as pb;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use identity_verifier::{Config, Rejection, Verifier};
use platform::clock::ManualClock;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
pub use test_support::Backend;
use test_support::TestDatabase;
pub(crate) use test_support::both_backends;
pub use test_support::{PASSWORD, bearer, unique_email};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub struct Auth {
    pub addr: SocketAddr,
    pub grpc: AuthServiceClient<Channel>,
    pub core: Arc<auth_service::context::Context>,
    /// The key ring, to rotate keys.
    pub keys: Arc<auth_service::keys::KeyRing>,
    /// Its pruning, to run a pass now.
    pub pruner: auth_service::retention::Pruner,
    pub clock: ManualClock,
    pub db_url: String,
    pub shutdown: CancellationToken,
    pub stopped: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    pub _db: Option<Arc<TestDatabase>>,
}

impl Drop for Auth {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

fn settings(db_url: &str, grpc_addr: &str) -> auth_service::config::Settings {
    let mut s: auth_service::config::Settings = test_support::service::settings(
        db_url,
        &[
            ("hash-workers", "2"),
            ("hash-queue", "64"),
            ("sync-interval", "50ms"),
            ("user-url", "http://127.0.0.1:9"),
        ],
    );
    s.server.grpc_addr = grpc_addr.parse().unwrap();
    s
}

pub async fn spawn_auth(backend: Backend) -> Auth {
    let db = backend.fresh_database().await;
    let url = db.url.clone();
    let mut auth = spawn_on(&url, "127.0.0.1:0", ManualClock::default()).await;
    auth._db = Some(Arc::new(db));
    auth
}

/// An Auth Service on `db_url` listening on `grpc_addr` (a replica, or a
/// restart on the port a verifier knows).
pub async fn spawn_on(db_url: &str, grpc_addr: &str, clock: ManualClock) -> Auth {
    test_support::init_test_logs();
    let app = Application::build(settings(db_url, grpc_addr), Arc::new(clock.clone()))
        .await
        .expect("build the Auth Service");
    let addr = app.grpc_addr();
    let handle = app.handle();
    let (core, keys, pruner) = (handle.core, handle.keys, handle.pruner);
    let shutdown = CancellationToken::new();
    let stopped = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let channel = test_support::service::channel(addr, true).await;
    Auth {
        addr,
        grpc: AuthServiceClient::new(channel),
        core,
        keys,
        pruner,
        clock,
        db_url: db_url.to_owned(),
        shutdown,
        stopped: Some(stopped),
        _db: None,
    }
}

impl Auth {
    /// Stops the service and waits until it has.
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(stopped) = self.stopped.take() {
            tokio::time::timeout(Duration::from_secs(10), stopped)
                .await
                .expect("the Auth Service stops within 10 s (its streams end at shutdown)")
                .unwrap()
                .unwrap();
        }
    }

    /// A service account holding `roles`: its client id and secret.
    pub async fn service_account(&self, roles: &[&str]) -> (String, String) {
        let name = format!("svc-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let (account, secret) = auth_service::accounts::Accounts(&self.core)
            .create_service_account(
                None,
                NewServiceAccount::parse(&name, &roles).unwrap(),
                &Default::default(),
            )
            .await
            .unwrap();
        (
            account.client_id,
            secrecy::ExposeSecret::expose_secret(&secret).to_owned(),
        )
    }

    /// A verifier's configuration for this service, bounded by `max_staleness`.
    pub async fn config(&self, max_staleness: Duration) -> Config {
        let (id, secret) = self.service_account(&["identity-service"]).await;
        let mut config = Config::new(
            format!("http://{}", self.addr),
            id,
            secret.into(),
            "identity-auth",
            "identity-platform",
        );
        config.clock = Arc::new(self.clock.clone());
        config.max_staleness = max_staleness;
        config.connect_timeout = Duration::from_secs(20);
        config
    }

    /// A verifier caught up with this service's feed.
    pub async fn connect(&self) -> Verifier {
        Verifier::connect(self.config(Duration::from_secs(10)).await)
            .await
            .expect("the verifier catches up")
    }

    /// Registers a fresh user and logs in; the clock then moves a second on,
    /// so later changes are not in the token's own second.
    pub async fn new_session(&self) -> (String, pb::LoginResponse) {
        let email = unique_email();
        self.grpc
            .clone()
            .register(pb::RegisterRequest {
                email: email.clone(),
                password: PASSWORD.into(),
                display_name: "Test User".into(),
            })
            .await
            .unwrap();
        self.clock.advance(chrono::Duration::seconds(1));
        let login = self.login(&email).await;
        self.clock.advance(chrono::Duration::seconds(1));
        (email, login)
    }

    pub async fn login(&self, email: &str) -> pb::LoginResponse {
        self.grpc
            .clone()
            .login(pb::LoginRequest {
                email: email.into(),
                password: PASSWORD.into(),
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// A fresh administrator's access token.
    pub async fn admin_token(&self) -> String {
        use auth_service::domain::{DisplayName, Email, NewPassword};
        let email = unique_email();
        auth_service::credentials::Credentials(&self.core)
            .register_with_roles(
                Email::parse(&email, "e").unwrap(),
                NewPassword::parse(PASSWORD.into(), "p").unwrap(),
                DisplayName::parse("Admin", "d").unwrap(),
                &["user", "admin"],
                &Default::default(),
            )
            .await
            .unwrap();
        self.clock.advance(chrono::Duration::seconds(1));
        let token = self.login(&email).await.access_token;
        self.clock.advance(chrono::Duration::seconds(1));
        token
    }
}

/// Waits until `verifier` refuses `token` as `want`, at most `within`;
/// returns how long it took.
pub async fn refused_within(
    verifier: &Verifier,
    token: &str,
    want: Rejection,
    within: Duration,
) -> Duration {
    let started = Instant::now();
    loop {
        match verifier.verify(token) {
            Err(r) if r == want => return started.elapsed(),
            other => assert!(
                started.elapsed() < within,
                "not refused as {want:?} within {within:?}: {other:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
