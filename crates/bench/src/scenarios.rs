//! The scenarios, each a [`Operation`] over real gRPC clients, and the fixtures
//! they need (registered users with tokens, one refresh chain per worker).

use crate::load::Operation;
use futures::future::BoxFuture;
use identity_proto::auth::v1 as auth_pb;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use identity_proto::user::v1 as pb;
use identity_proto::user::v1::user_service_client::UserServiceClient;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::Mutex;
use tonic::transport::Channel;

pub const PASSWORD: &str = "correct horse battery staple";

/// Every scenario, in the order they run.
pub const ALL: [&str; 10] = [
    "validate",
    "ext-authz",
    "check-permission",
    "get-user",
    "update-user",
    "refresh",
    "login",
    "register",
    "gateway-mix",
    "gateway",
];

/// A registered, logged-in user.
#[derive(Debug, Clone)]
pub struct Account {
    pub email: String,
    pub user_id: String,
    pub access_token: String,
}

/// What the scenarios share: accounts, and a refresh token per worker.
pub struct Fixtures {
    pub accounts: Vec<Account>,
    /// Distinct live access tokens that `validate` and `ext-authz` cycle
    /// through, so the verified-token cache meets as many as a platform would.
    pub tokens: Vec<String>,
    pub refresh: Vec<Mutex<String>>,
    /// User Service channels, for the mix (workers hold auth channels).
    pub user_channels: Vec<Channel>,
    counter: AtomicU64,
}

fn code(s: tonic::Status) -> tonic::Code {
    s.code()
}

fn bearer<T>(m: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(m);
    if let Ok(v) = format!("Bearer {token}").parse() {
        r.metadata_mut().insert("authorization", v);
    }
    r
}

impl Fixtures {
    /// Registers `users` accounts, opens one session per worker, and mints
    /// `tokens` distinct access tokens.
    pub async fn prepare(
        auth: Channel,
        user_channels: Vec<Channel>,
        users: usize,
        workers: usize,
        tokens: usize,
    ) -> anyhow::Result<Self> {
        let mut client = AuthServiceClient::new(auth);
        let mut accounts = Vec::with_capacity(users);
        for _ in 0..users {
            let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
            let user_id = client
                .register(auth_pb::RegisterRequest {
                    email: email.clone(),
                    password: PASSWORD.into(),
                    display_name: "Bench".into(),
                })
                .await?
                .into_inner()
                .user_id;
            let login = client
                .login(auth_pb::LoginRequest {
                    email: email.clone(),
                    password: PASSWORD.into(),
                })
                .await?
                .into_inner();
            accounts.push(Account {
                email,
                user_id,
                access_token: login.access_token,
            });
        }
        let mut refresh = Vec::with_capacity(workers);
        for w in 0..workers {
            let email = accounts[w % accounts.len()].email.clone();
            let login = client
                .login(auth_pb::LoginRequest {
                    email,
                    password: PASSWORD.into(),
                })
                .await?
                .into_inner();
            refresh.push(Mutex::new(login.refresh_token));
        }
        let tokens = mint_tokens(&client, &accounts, tokens).await?;
        present_once(&client, &tokens).await?;
        Ok(Self {
            accounts,
            tokens,
            refresh,
            user_channels,
            counter: AtomicU64::new(0),
        })
    }

    /// Waits until every account's profile exists in the User Service.
    pub async fn await_profiles(&self) -> anyhow::Result<()> {
        let mut users = UserServiceClient::new(self.user_channels[0].clone());
        for a in &self.accounts {
            let mut tries = 0;
            while users
                .get_user(bearer(
                    pb::GetUserRequest {
                        name: format!("users/{}", a.user_id),
                    },
                    &a.access_token,
                ))
                .await
                .is_err()
            {
                tries += 1;
                anyhow::ensure!(tries < 200, "profile of {} never appeared", a.user_id);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    fn account(&self, worker: usize) -> &Account {
        &self.accounts[worker % self.accounts.len()]
    }

    fn next(&self) -> u64 {
        self.counter.fetch_add(1, Ordering::Relaxed)
    }
}

/// `n` distinct live access tokens, minted by refreshing sessions (no Argon2):
/// refreshing rotates the refresh token but leaves earlier access tokens valid.
async fn mint_tokens(
    client: &AuthServiceClient<Channel>,
    accounts: &[Account],
    n: usize,
) -> anyhow::Result<Vec<String>> {
    const CHAINS: usize = 16;
    let mut chains = Vec::new();
    for i in 0..CHAINS.min(n.max(1)) {
        let login = client
            .clone()
            .login(auth_pb::LoginRequest {
                email: accounts[i % accounts.len()].email.clone(),
                password: PASSWORD.into(),
            })
            .await?
            .into_inner();
        let (client, per_chain) = (client.clone(), n.div_ceil(CHAINS));
        chains.push(tokio::spawn(async move {
            let mut refresh = login.refresh_token;
            let mut tokens = vec![login.access_token];
            while tokens.len() < per_chain {
                let reply = client
                    .clone()
                    .refresh_token(auth_pb::RefreshTokenRequest {
                        refresh_token: refresh,
                    })
                    .await?
                    .into_inner();
                refresh = reply.refresh_token;
                tokens.push(reply.access_token);
            }
            anyhow::Ok(tokens)
        }));
    }
    let mut tokens = Vec::with_capacity(n);
    for chain in chains {
        tokens.extend(chain.await??);
    }
    tokens.truncate(n.max(1));
    Ok(tokens)
}

/// Validates every token once before anything is measured: on a platform a
/// token is presented for its whole life, so the steady state (each token
/// verified once, then served from the verified-token cache) is what `validate`
/// and `ext-authz` should measure, not the first sight of each token.
async fn present_once(
    client: &AuthServiceClient<Channel>,
    tokens: &[String],
) -> anyhow::Result<()> {
    const WORKERS: usize = 16;
    let mut workers = Vec::new();
    for part in tokens.chunks(tokens.len().div_ceil(WORKERS).max(1)) {
        let (client, part) = (client.clone(), part.to_vec());
        workers.push(tokio::spawn(async move {
            for token in part {
                client
                    .clone()
                    .validate_token(auth_pb::ValidateTokenRequest {
                        access_token: token,
                    })
                    .await?;
            }
            anyhow::Ok(())
        }));
    }
    for worker in workers {
        worker.await??;
    }
    Ok(())
}

/// A scenario by name over shared fixtures.
pub struct Scenario {
    pub name: &'static str,
    pub fixtures: Arc<Fixtures>,
}

impl Scenario {
    fn token(&self) -> String {
        let t = &self.fixtures.tokens;
        t[self.fixtures.next() as usize % t.len()].clone()
    }

    async fn validate(&self, _worker: usize, ch: Channel) -> Result<(), tonic::Code> {
        let token = self.token();
        AuthServiceClient::new(ch)
            .validate_token(auth_pb::ValidateTokenRequest {
                access_token: token,
            })
            .await
            .map(drop)
            .map_err(code)
    }

    async fn get_user(&self, worker: usize, ch: Channel) -> Result<(), tonic::Code> {
        let a = self.fixtures.account(worker);
        let req = bearer(
            pb::GetUserRequest {
                name: format!("users/{}", a.user_id),
            },
            &a.access_token,
        );
        UserServiceClient::new(ch)
            .get_user(req)
            .await
            .map(drop)
            .map_err(code)
    }

    async fn refresh(&self, worker: usize, ch: Channel) -> Result<(), tonic::Code> {
        let mut slot = self.fixtures.refresh[worker % self.fixtures.refresh.len()]
            .lock()
            .await;
        let reply = AuthServiceClient::new(ch)
            .refresh_token(auth_pb::RefreshTokenRequest {
                refresh_token: slot.clone(),
            })
            .await
            .map_err(code)?;
        *slot = reply.into_inner().refresh_token;
        Ok(())
    }

    async fn login(&self, worker: usize, ch: Channel) -> Result<(), tonic::Code> {
        let email = self
            .fixtures
            .account(worker + self.fixtures.next() as usize)
            .email
            .clone();
        AuthServiceClient::new(ch)
            .login(auth_pb::LoginRequest {
                email,
                password: PASSWORD.into(),
            })
            .await
            .map(drop)
            .map_err(code)
    }

    async fn run(&self, worker: usize, ch: Channel) -> Result<(), tonic::Code> {
        match self.name {
            "validate" => self.validate(worker, ch).await,
            "ext-authz" => {
                use envoy_types::pb::envoy::service::auth::v3 as envoy;
                let a = self.fixtures.account(worker);
                let http = envoy::attribute_context::HttpRequest {
                    method: "PATCH".into(),
                    path: format!("/users/{}", a.user_id),
                    headers: [(
                        "authorization".to_owned(),
                        format!("Bearer {}", self.token()),
                    )]
                    .into(),
                    ..Default::default()
                };
                let request = envoy::CheckRequest {
                    attributes: Some(envoy::AttributeContext {
                        request: Some(envoy::attribute_context::Request {
                            http: Some(http),
                            ..Default::default()
                        }),
                        context_extensions: [("permission".to_owned(), "users:read".to_owned())]
                            .into(),
                        ..Default::default()
                    }),
                };
                let reply = envoy::authorization_client::AuthorizationClient::new(ch)
                    .check(request)
                    .await
                    .map_err(code)?
                    .into_inner();
                // A denial is a failed request here: every token is live.
                match reply.status.map(|s| s.code) {
                    Some(0) => Ok(()),
                    _ => Err(tonic::Code::PermissionDenied),
                }
            }
            "check-permission" => {
                let a = self.fixtures.account(worker);
                let req = auth_pb::CheckPermissionRequest {
                    access_token: a.access_token.clone(),
                    permission: "users:write".into(),
                    resource: format!("users/{}", a.user_id),
                };
                AuthServiceClient::new(ch)
                    .check_permission(req)
                    .await
                    .map(drop)
                    .map_err(code)
            }
            "get-user" => self.get_user(worker, ch).await,
            "update-user" => {
                let a = self.fixtures.account(worker);
                let user = pb::User {
                    name: format!("users/{}", a.user_id),
                    display_name: format!("Bench {}", self.fixtures.next()),
                    ..Default::default()
                };
                let mask = Some(prost_types::FieldMask {
                    paths: vec!["display_name".into()],
                });
                let req = bearer(
                    pb::UpdateUserRequest {
                        user: Some(user),
                        update_mask: mask,
                    },
                    &a.access_token,
                );
                UserServiceClient::new(ch)
                    .update_user(req)
                    .await
                    .map(drop)
                    .map_err(code)
            }
            "refresh" => self.refresh(worker, ch).await,
            "login" => self.login(worker, ch).await,
            "register" => {
                let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
                let req = auth_pb::RegisterRequest {
                    email,
                    password: PASSWORD.into(),
                    display_name: String::new(),
                };
                AuthServiceClient::new(ch)
                    .register(req)
                    .await
                    .map(drop)
                    .map_err(code)
            }
            "gateway-mix" => {
                // 90 % validate, 8 % get-user, 1.5 % refresh, 0.5 % login.
                let users = &self.fixtures.user_channels;
                match self.fixtures.next() % 1000 {
                    0..900 => self.validate(worker, ch).await,
                    900..980 => {
                        self.get_user(worker, users[worker % users.len()].clone())
                            .await
                    }
                    980..995 => self.refresh(worker, ch).await,
                    _ => self.login(worker, ch).await,
                }
            }
            _ => Err(tonic::Code::Unimplemented),
        }
    }

    /// Whether the scenario's requests go to the User Service.
    pub fn targets_users(&self) -> bool {
        matches!(self.name, "get-user" | "update-user")
    }
}

impl Operation for Scenario {
    fn call(&self, worker: usize, channel: Channel) -> BoxFuture<'_, Result<(), tonic::Code>> {
        Box::pin(self.run(worker, channel))
    }
}

/// ValidateToken against the echo server, with a real token's size.
pub struct EchoValidate {
    pub token: String,
}

impl Operation for EchoValidate {
    fn call(&self, _worker: usize, channel: Channel) -> BoxFuture<'_, Result<(), tonic::Code>> {
        Box::pin(async move {
            AuthServiceClient::new(channel)
                .validate_token(auth_pb::ValidateTokenRequest {
                    access_token: self.token.clone(),
                })
                .await
                .map(drop)
                .map_err(code)
        })
    }
}
