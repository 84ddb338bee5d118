//! `spawn_app`: the real Auth Service on port 0 with a fresh database and a manual clock.

use auth_service::accounts::NewServiceAccount;
use auth_service::config::Settings;
use auth_service::startup::{Application, Handle};
use identity_proto::auth::v1 as pb;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use platform::clock::ManualClock;
use std::sync::Arc;
pub use test_support::Backend;
use test_support::TestDatabase;
pub use test_support::{PASSWORD, assert_code, bearer, unique_email};
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;

pub(crate) use test_support::both_backends;

pub struct TestApp {
    pub grpc_addr: std::net::SocketAddr,
    pub grpc: AuthServiceClient<Channel>,
    pub http: String,
    pub clock: ManualClock,
    pub handle: Handle,
    pub db_url: String,
    pub shutdown: CancellationToken,
    pub stopped: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    /// Keeps the database alive as long as the app.
    pub _db: Option<TestDatabase>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn settings(db_url: &str) -> Settings {
    test_support::service::settings(
        db_url,
        &[
            ("hash-workers", "2"),
            ("hash-queue", "64"),
            ("sync-interval", "50ms"),
            // Nothing listens here: registrations wait in the outbox.
            ("user-url", "http://127.0.0.1:9"),
        ],
    )
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let db = backend.fresh_database().await;
    let url = db.url.clone();
    let mut app = spawn_with(settings(&url), ManualClock::default(), true).await;
    app._db = Some(db);
    app
}

/// Another replica of `app`, on the same database, with its own settings.
pub async fn spawn_replica(app: &TestApp, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let mut s = settings(&app.db_url);
    tweak(&mut s);
    spawn_with(s, app.clock.clone(), true).await
}

pub async fn spawn_with(settings: Settings, clock: ManualClock, connect: bool) -> TestApp {
    test_support::init_test_logs();
    let db_url = secrecy::ExposeSecret::expose_secret(&settings.server.database_url).to_owned();
    let app = Application::build(settings, Arc::new(clock.clone()))
        .await
        .expect("build app");
    let grpc_addr = app.grpc_addr();
    let http = format!("http://{}", app.http_addr());
    let handle = app.handle();
    let shutdown = CancellationToken::new();
    let stopped = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let channel = test_support::service::channel(grpc_addr, connect).await;
    TestApp {
        grpc_addr,
        grpc: AuthServiceClient::new(channel),
        http,
        clock,
        handle,
        db_url,
        shutdown,
        stopped: Some(stopped),
        _db: None,
    }
}

impl TestApp {
    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc_addr)
    }

    pub async fn register(
        &self,
        email: &str,
        password: &str,
    ) -> Result<pb::RegisterResponse, tonic::Status> {
        self.grpc
            .clone()
            .register(pb::RegisterRequest {
                email: email.into(),
                password: password.into(),
                display_name: "Test User".into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn login(
        &self,
        email: &str,
        password: &str,
    ) -> Result<pb::LoginResponse, tonic::Status> {
        self.grpc
            .clone()
            .login(pb::LoginRequest {
                email: email.into(),
                password: password.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    /// Registers a user holding `roles` directly through the core (as the
    /// `create-admin` subcommand does), logs in and returns the session.
    pub async fn user_with_roles(&self, roles: &[&str]) -> pb::LoginResponse {
        use auth_service::domain::{DisplayName, Email, NewPassword};
        let email = unique_email();
        auth_service::credentials::Credentials(&self.handle.core)
            .register_with_roles(
                Email::parse(&email, "email").unwrap(),
                NewPassword::parse(PASSWORD.into(), "password").unwrap(),
                DisplayName::parse("Admin", "d").unwrap(),
                roles,
                &auth_service::audit::ClientInfo::default(),
            )
            .await
            .unwrap();
        self.login(&email, PASSWORD).await.unwrap()
    }

    /// A fresh administrator's access token.
    pub async fn admin_token(&self) -> String {
        self.user_with_roles(&["user", "admin"]).await.access_token
    }

    /// A service account with `roles`: its client id, secret and a token.
    pub async fn service_account(&self, roles: &[&str]) -> (String, String, String) {
        let name = format!("svc-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let account = NewServiceAccount::parse(&name, &roles).unwrap();
        let (account, secret) = auth_service::accounts::Accounts(&self.handle.core)
            .create_service_account(None, account, &Default::default())
            .await
            .unwrap();
        let secret = secrecy::ExposeSecret::expose_secret(&secret).to_owned();
        let token = self
            .grpc
            .clone()
            .issue_service_token(pb::IssueServiceTokenRequest {
                client_id: account.client_id.clone(),
                client_secret: secret.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .access_token;
        (account.client_id, secret, token)
    }

    /// Registers a fresh user and logs in.
    pub async fn new_session(&self) -> pb::LoginResponse {
        let email = unique_email();
        self.register(&email, PASSWORD).await.expect("register");
        self.login(&email, PASSWORD).await.expect("login")
    }

    /// The audit events of `kind`, newest first (up to 100), as `admin` lists them.
    pub async fn audit_events(&self, admin: &str, kind: &str) -> Vec<pb::AuditEvent> {
        let request = pb::ListAuditEventsRequest {
            page_size: 100,
            kind: kind.into(),
            ..Default::default()
        };
        self.grpc
            .clone()
            .list_audit_events(bearer(request, admin))
            .await
            .unwrap()
            .into_inner()
            .events
    }

    pub async fn validate(&self, token: &str) -> Result<pb::ValidateTokenResponse, tonic::Status> {
        self.grpc
            .clone()
            .validate_token(pb::ValidateTokenRequest {
                access_token: token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn refresh(&self, token: &str) -> Result<pb::RefreshTokenResponse, tonic::Status> {
        self.grpc
            .clone()
            .refresh_token(pb::RefreshTokenRequest {
                refresh_token: token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn logout(&self, token: &str) -> Result<pb::LogoutResponse, tonic::Status> {
        self.grpc
            .clone()
            .logout(pb::LogoutRequest {
                refresh_token: token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn jwks(&self) -> serde_json::Value {
        reqwest::get(format!("{}/.well-known/jwks.json", self.http))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}
