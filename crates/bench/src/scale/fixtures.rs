//! Who calls in one phase of the `scale` scenario: an administrator (for the
//! audit trail), a few users who log in, one user with many sessions, the
//! users whose profiles are read, and the clients to reach both services.

use super::dataset::{Filters, PASSWORD, person};
use anyhow::Context as _;
use identity_proto::auth::v1 as auth_pb;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use identity_proto::user::v1::user_service_client::UserServiceClient;
use tokio::sync::Mutex;
use tonic::transport::Channel;

/// The administrator `auth-service create-admin` makes for the bench.
pub const ADMIN_EMAIL: &str = "scale-admin@example.com";

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Caller {
    pub email: String,
    pub user_id: String,
    pub access: String,
}

/// The fixtures of one phase.
pub struct Cx {
    pub auth: AuthServiceClient<Channel>,
    pub users: UserServiceClient<Channel>,
    http: reqwest::Client,
    http_url: String,
    /// The administrator's access token.
    pub admin: String,
    /// Users who know their password, logged in.
    pub callers: Vec<Caller>,
    /// The user with many sessions, logged in.
    pub heavy: Caller,
    /// The refresh token RefreshToken rotates.
    pub refresh: Mutex<String>,
    /// Ids of users whose profiles are read.
    pub targets: Vec<String>,
    pub filters: Filters,
    /// ListAuditEvents' time filter.
    pub since: prost_types::Timestamp,
}

/// Where the services are.
pub struct Endpoints<'a> {
    pub auth_url: &'a str,
    pub user_url: &'a str,
    pub http_url: &'a str,
}

async fn login(
    auth: &mut AuthServiceClient<Channel>,
    email: &str,
) -> anyhow::Result<(Caller, String)> {
    let reply = auth
        .login(auth_pb::LoginRequest {
            email: email.to_owned(),
            password: PASSWORD.into(),
        })
        .await
        .map_err(|s| anyhow::anyhow!("login as {email}: {s}"))?
        .into_inner();
    let caller = Caller {
        email: email.to_owned(),
        user_id: reply.user_id,
        access: reply.access_token,
    };
    Ok((caller, reply.refresh_token))
}

impl Cx {
    /// Logs in the administrator, users `callers` and user `heavy`; reads
    /// are about the users of `targets`.
    pub async fn prepare(
        at: &Endpoints<'_>,
        callers: &[u64],
        heavy: u64,
        targets: Vec<uuid::Uuid>,
        filters: Filters,
    ) -> anyhow::Result<Self> {
        let mut auth = AuthServiceClient::new(
            Channel::from_shared(at.auth_url.to_owned())?
                .connect()
                .await?,
        );
        let users = UserServiceClient::new(
            Channel::from_shared(at.user_url.to_owned())?
                .connect()
                .await?,
        );
        let (admin, _) = login(&mut auth, ADMIN_EMAIL).await?;
        let mut logged_in = Vec::new();
        let mut refresh = String::new();
        for i in callers {
            let (caller, token) = login(&mut auth, &person(*i).email).await?;
            logged_in.push(caller);
            refresh = token;
        }
        // Past one page of sessions even on the near-empty database, so its
        // second page is measured there too.
        let mut many = None;
        for _ in 0..=super::ops::PAGE_SIZE {
            many = Some(login(&mut auth, &person(heavy).email).await?.0);
        }
        let heavy = many.context("logged in")?;
        let month_ago = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs() as i64
            - 30 * 86_400;
        // reqwest's TLS takes the process's provider (the workspace builds it
        // without one), even for the plain-HTTP calls here.
        platform::tls::install_crypto_provider();
        Ok(Self {
            auth,
            users,
            http: reqwest::Client::new(),
            http_url: at.http_url.to_owned(),
            admin: admin.access,
            callers: logged_in,
            heavy,
            refresh: Mutex::new(refresh),
            targets: targets.iter().map(ToString::to_string).collect(),
            filters,
            since: prost_types::Timestamp {
                seconds: month_ago,
                nanos: 0,
            },
        })
    }

    /// A GET on the Auth Service's HTTP port, its body read; 200 or an error.
    pub async fn get(&self, path: &str) -> Result<(), String> {
        let response = self
            .http
            .get(format!("{}{path}", self.http_url))
            .send()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        let status = response.status();
        response
            .bytes()
            .await
            .map_err(|e| format!("GET {path}: {e}"))?;
        match status.as_u16() {
            200 => Ok(()),
            other => Err(format!("GET {path}: {other}")),
        }
    }
}
