//! `spawn_system`: the Auth Service and the User Service wired to each other, each
//! with a fresh database, on port 0, sharing a manual clock.

use auth_service::accounts::NewServiceAccount;
use identity_proto::auth::v1 as auth_pb;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use identity_proto::user::v1 as pb;
use identity_proto::user::v1::user_service_client::UserServiceClient;
use platform::clock::ManualClock;
use std::sync::Arc;
pub use test_support::Backend;
use test_support::TestDatabase;
pub(crate) use test_support::both_backends;
pub use test_support::{PASSWORD, assert_code, bearer, eventually};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub struct TestSystem {
    /// The Auth Service's core, for what operators do from the command line.
    pub core: Arc<auth_service::context::Context>,
    /// A token of the User Service's own service account.
    pub service_token: String,
    pub auth: AuthServiceClient<tonic::transport::Channel>,
    pub users: UserServiceClient<tonic::transport::Channel>,
    pub clock: ManualClock,
    pub user_http: String,
    shutdown: CancellationToken,
    _dbs: (TestDatabase, TestDatabase),
}

impl Drop for TestSystem {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A user registered through the Auth Service, logged in, whose profile exists.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub id: String,
    pub name: String,
    pub email: String,
    pub access_token: String,
}

async fn bind() -> TcpListener {
    TcpListener::bind("127.0.0.1:0").await.unwrap()
}

pub fn auth_settings(db: &str, user_url: String) -> auth_service::config::Settings {
    test_support::service::settings(
        db,
        &[
            ("hash-workers", "2"),
            ("hash-queue", "64"),
            ("sync-interval", "50ms"),
            ("user-url", &user_url),
        ],
    )
}

pub fn user_settings(
    db: &str,
    auth_url: String,
    client: (String, String),
) -> user_service::config::Settings {
    test_support::service::settings(
        db,
        &[
            ("auth-url", &auth_url),
            ("client-id", &client.0),
            ("client-secret", &client.1),
        ],
    )
}

pub async fn spawn_system(backend: Backend) -> TestSystem {
    spawn_system_with(backend, |_| {}).await
}

/// [`spawn_system`] with the User Service's settings adjusted by `tweak`.
pub async fn spawn_system_with(
    backend: Backend,
    tweak: impl FnOnce(&mut user_service::config::Settings),
) -> TestSystem {
    test_support::init_test_logs();
    let (auth_db, user_db) = (
        backend.fresh_database().await,
        backend.fresh_database().await,
    );
    let (auth_grpc, auth_http, user_grpc, user_http) =
        (bind().await, bind().await, bind().await, bind().await);
    let (auth_addr, user_addr) = (
        auth_grpc.local_addr().unwrap(),
        user_grpc.local_addr().unwrap(),
    );
    let user_http_addr = user_http.local_addr().unwrap();
    let clock = ManualClock::default();
    let shutdown = CancellationToken::new();

    let auth = auth_service::startup::Application::build_on(
        auth_settings(&auth_db.url, format!("http://{user_addr}")),
        auth_grpc,
        auth_http,
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    let core = auth.handle().core;
    tokio::spawn(auth.run_until_stopped(shutdown.clone()));
    let (account, secret) = auth_service::accounts::Accounts(&core)
        .create_service_account(
            None,
            NewServiceAccount::parse("user-service", &["identity-service".into()]).unwrap(),
            &Default::default(),
        )
        .await
        .unwrap();
    let secret = secrecy::ExposeSecret::expose_secret(&secret).to_owned();
    let mut settings = user_settings(
        &user_db.url,
        format!("http://{auth_addr}"),
        (account.client_id.clone(), secret.clone()),
    );
    tweak(&mut settings);
    let users = user_service::startup::Application::build_on(
        settings,
        user_grpc,
        user_http,
        Arc::new(clock.clone()),
    )
    .await
    .unwrap();
    tokio::spawn(users.run_until_stopped(shutdown.clone()));

    let mut auth_client =
        AuthServiceClient::new(test_support::service::channel(auth_addr, true).await);
    let service_token = auth_client
        .issue_service_token(auth_pb::IssueServiceTokenRequest {
            client_id: account.client_id,
            client_secret: secret,
        })
        .await
        .unwrap()
        .into_inner()
        .access_token;
    TestSystem {
        core,
        service_token,
        auth: auth_client,
        users: UserServiceClient::new(test_support::service::channel(user_addr, true).await),
        clock,
        user_http: format!("http://{user_http_addr}"),
        shutdown,
        _dbs: (auth_db, user_db),
    }
}

impl TestSystem {
    /// Registers and logs in a fresh user, and waits for the profile to appear.
    pub async fn new_user(&self) -> TestUser {
        let email = test_support::unique_email();
        let id = self
            .auth
            .clone()
            .register(auth_pb::RegisterRequest {
                email: email.clone(),
                password: PASSWORD.into(),
                display_name: "Test User".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .user_id;
        let login = self
            .auth
            .clone()
            .login(auth_pb::LoginRequest {
                email: email.clone(),
                password: PASSWORD.into(),
            })
            .await
            .unwrap()
            .into_inner();
        let name = format!("users/{id}");
        let user = TestUser {
            id,
            name: name.clone(),
            email,
            access_token: login.access_token,
        };
        eventually(10, "the profile to appear", || async {
            self.get(&user.access_token, &name).await.is_ok()
        })
        .await;
        user
    }

    /// A fresh administrator (made as `auth-service create-admin` does), logged in.
    pub async fn admin_token(&self) -> String {
        use auth_service::domain::{DisplayName, Email, NewPassword};
        let email = format!("admin-{}@example.com", uuid::Uuid::new_v4().simple());
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
        self.login(&email).await.access_token
    }

    /// A new session of `email` (whose password is [`PASSWORD`]).
    pub async fn login(&self, email: &str) -> auth_pb::LoginResponse {
        let request = auth_pb::LoginRequest {
            email: email.to_owned(),
            password: PASSWORD.into(),
        };
        self.auth.clone().login(request).await.unwrap().into_inner()
    }

    /// Ends the session of `refresh_token`.
    pub async fn logout(&self, refresh_token: String) {
        let request = auth_pb::LogoutRequest { refresh_token };
        self.auth.clone().logout(request).await.unwrap();
    }

    /// A token of a new service account holding `roles`.
    pub async fn service_token(&self, roles: &[&str]) -> String {
        let name = format!("svc-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let roles: Vec<String> = roles.iter().map(|r| (*r).to_owned()).collect();
        let account = NewServiceAccount::parse(&name, &roles).unwrap();
        let (account, secret) = auth_service::accounts::Accounts(&self.core)
            .create_service_account(None, account, &Default::default())
            .await
            .unwrap();
        self.auth
            .clone()
            .issue_service_token(auth_pb::IssueServiceTokenRequest {
                client_id: account.client_id,
                client_secret: secrecy::ExposeSecret::expose_secret(&secret).to_owned(),
            })
            .await
            .unwrap()
            .into_inner()
            .access_token
    }

    pub async fn get(&self, token: &str, name: &str) -> Result<pb::User, tonic::Status> {
        self.users
            .clone()
            .get_user(bearer(pb::GetUserRequest { name: name.into() }, token))
            .await
            .map(|r| r.into_inner().user.unwrap())
    }

    pub async fn update(
        &self,
        token: &str,
        user: pb::User,
        paths: &[&str],
    ) -> Result<pb::User, tonic::Status> {
        let mask = prost_types::FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        };
        self.users
            .clone()
            .update_user(bearer(
                pb::UpdateUserRequest {
                    user: Some(user),
                    update_mask: Some(mask),
                },
                token,
            ))
            .await
            .map(|r| r.into_inner().user.unwrap())
    }

    pub async fn list(
        &self,
        token: &str,
        page_size: i32,
        page_token: &str,
        filter: &str,
    ) -> Result<pb::ListUsersResponse, tonic::Status> {
        self.users
            .clone()
            .list_users(bearer(
                pb::ListUsersRequest {
                    page_size,
                    page_token: page_token.into(),
                    filter: filter.into(),
                },
                token,
            ))
            .await
            .map(tonic::Response::into_inner)
    }

    pub async fn create_as_service(&self, user: pb::User) -> Result<pb::User, tonic::Status> {
        self.users
            .clone()
            .create_user(bearer(
                pb::CreateUserRequest { user: Some(user) },
                &self.service_token,
            ))
            .await
            .map(|r| r.into_inner().user.unwrap())
    }

    pub async fn validate(
        &self,
        token: &str,
    ) -> Result<auth_pb::ValidateTokenResponse, tonic::Status> {
        self.auth
            .clone()
            .validate_token(auth_pb::ValidateTokenRequest {
                access_token: token.into(),
            })
            .await
            .map(tonic::Response::into_inner)
    }
}
