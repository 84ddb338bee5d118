//! End to end, with both services as real processes: registration and a
//! verified email change reach the User Service even when it is down or the
//! Auth Service is killed with SIGKILL, exactly once; deletion reaches the Auth
//! Service.

use crate::helpers::{Backend, PASSWORD, assert_code, bearer, both_backends};
use identity_proto::auth::v1 as auth_pb;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use identity_proto::user::v1 as pb;
use identity_proto::user::v1::user_service_client::UserServiceClient;
use std::time::Duration;
use test_support::TestDatabase;
use test_support::process::{ServiceProcess, free_port};
use tonic::Code;
use tonic::transport::Channel;

both_backends!(
    profile_appears_after_registration_and_deletion_disables_login,
    registration_survives_a_down_user_service_and_a_sigkill,
    email_change_survives_a_down_user_service_and_a_sigkill,
    imported_users_log_in_and_reach_the_user_service,
);

/// Collects the notifications the Auth Service posts (signatures are checked
/// in the Auth Service's own tests).
#[derive(Clone, Default)]
struct Inbox(std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>);

impl Inbox {
    async fn start() -> (Self, String) {
        let inbox = Self::default();
        let events = inbox.0.clone();
        let app = axum::Router::new().route(
            "/",
            axum::routing::post(move |body: String| async move {
                if let Ok(event) = serde_json::from_str(&body) {
                    events.lock().unwrap().push(event);
                }
                axum::http::StatusCode::NO_CONTENT
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (inbox, url)
    }

    /// The token of the first `kind` event to `email`, waiting up to 20 s.
    async fn token(&self, kind: &str, email: &str) -> String {
        for _ in 0..200 {
            let found = self.0.lock().unwrap().iter().find_map(|e| {
                (e["type"] == kind && e["data"]["email"] == email)
                    .then(|| e["data"]["token"].as_str().unwrap_or_default().to_owned())
            });
            if let Some(token) = found {
                return token;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("no {kind} to {email}");
    }
}

struct System {
    auth_db: TestDatabase,
    user_db: TestDatabase,
    auth_ports: (u16, u16),
    user_ports: (u16, u16),
    logs: tempfile::TempDir,
    /// The User Service's service account, made with `auth-service create-service-account`.
    client: (String, String),
    /// Where notifications go, if anywhere.
    notify_url: Option<String>,
}

impl System {
    async fn new(backend: Backend) -> Self {
        let auth_db = backend.fresh_database().await;
        let json = test_support::process::create_user_service_account(
            &test_support::process::binary("auth-service"),
            &auth_db.url,
        )
        .unwrap();
        let created: serde_json::Value = serde_json::from_slice(&json).unwrap();
        let client = (
            created["client_id"].as_str().unwrap().to_owned(),
            created["client_secret"].as_str().unwrap().to_owned(),
        );
        Self {
            auth_db,
            user_db: backend.fresh_database().await,
            auth_ports: (free_port(), free_port()),
            user_ports: (free_port(), free_port()),
            logs: tempfile::tempdir().unwrap(),
            client,
            notify_url: None,
        }
    }

    fn start_auth(&self) -> ServiceProcess {
        let (grpc, http) = self.auth_ports;
        let mut env = vec![
            ("AUTH_GRPC_ADDR", format!("127.0.0.1:{grpc}")),
            ("AUTH_HTTP_ADDR", format!("127.0.0.1:{http}")),
            ("AUTH_DATABASE_URL", self.auth_db.url.clone()),
            (
                "AUTH_USER_URL",
                format!("http://127.0.0.1:{}", self.user_ports.0),
            ),
            ("AUTH_HASH_WORKERS", "2".to_owned()),
        ];
        if let Some(url) = &self.notify_url {
            env.push(("AUTH_NOTIFY_URL", url.clone()));
            env.push((
                "AUTH_NOTIFY_SECRET",
                "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".to_owned(),
            ));
        }
        ServiceProcess::start(
            &test_support::process::binary("auth-service"),
            &env,
            &format!("http://127.0.0.1:{http}/readyz"),
            self.logs.path(),
        )
    }

    fn start_user(&self) -> ServiceProcess {
        let (grpc, http) = self.user_ports;
        let env = [
            ("USER_GRPC_ADDR", format!("127.0.0.1:{grpc}")),
            ("USER_HTTP_ADDR", format!("127.0.0.1:{http}")),
            ("USER_DATABASE_URL", self.user_db.url.clone()),
            (
                "USER_AUTH_URL",
                format!("http://127.0.0.1:{}", self.auth_ports.0),
            ),
            ("USER_CLIENT_ID", self.client.0.clone()),
            ("USER_CLIENT_SECRET", self.client.1.clone()),
        ];
        ServiceProcess::start(
            &test_support::process::binary("user-service"),
            &env,
            &format!("http://127.0.0.1:{http}/readyz"),
            self.logs.path(),
        )
    }

    async fn auth(&self) -> AuthServiceClient<Channel> {
        AuthServiceClient::new(connect(self.auth_ports.0).await)
    }

    async fn users(&self) -> UserServiceClient<Channel> {
        UserServiceClient::new(connect(self.user_ports.0).await)
    }

    async fn register_and_login(&self, email: &str) -> auth_pb::LoginResponse {
        let mut auth = self.auth().await;
        auth.register(auth_pb::RegisterRequest {
            email: email.into(),
            password: PASSWORD.into(),
            display_name: "E2E".into(),
        })
        .await
        .unwrap();
        auth.login(auth_pb::LoginRequest {
            email: email.into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner()
    }

    /// Waits for the profile of `user_id`, then checks it exists exactly once.
    async fn profile_appears_once(&self, token: &str, user_id: &str) {
        let mut users = self.users().await;
        let name = format!("users/{user_id}");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while users
            .get_user(bearer(pb::GetUserRequest { name: name.clone() }, token))
            .await
            .is_err()
        {
            if tokio::time::Instant::now() > deadline {
                for entry in std::fs::read_dir(self.logs.path()).unwrap() {
                    let path = entry.unwrap().path();
                    eprintln!(
                        "--- {}\n{}",
                        path.display(),
                        std::fs::read_to_string(&path).unwrap_or_default()
                    );
                }
                panic!("the profile never appeared");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let all = users
            .list_users(bearer(
                pb::ListUsersRequest {
                    page_size: 1000,
                    ..Default::default()
                },
                token,
            ))
            .await
            .unwrap()
            .into_inner();
        let copies = all.users.iter().filter(|u| u.id == user_id).count();
        assert_eq!(copies, 1, "the profile exists exactly once");
    }
}

async fn connect(port: u16) -> Channel {
    Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn profile_appears_after_registration_and_deletion_disables_login(backend: Backend) {
    let sys = System::new(backend).await;
    let auth = sys.start_auth();
    let users = sys.start_user();
    let login = sys.register_and_login("e2e@example.com").await;
    sys.profile_appears_once(&login.access_token, &login.user_id)
        .await;

    let mut client = sys.users().await;
    client
        .delete_user(bearer(
            pb::DeleteUserRequest {
                name: format!("users/{}", login.user_id),
                etag: String::new(),
            },
            &login.access_token,
        ))
        .await
        .unwrap();
    let mut auth_client = sys.auth().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let v = auth_client
            .validate_token(auth_pb::ValidateTokenRequest {
                access_token: login.access_token.clone(),
            })
            .await;
        if v.is_err() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the deleted user's token still validates"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let again = auth_client
        .login(auth_pb::LoginRequest {
            email: "e2e@example.com".into(),
            password: PASSWORD.into(),
        })
        .await;
    assert_code(again, Code::Unauthenticated);

    // Both stop cleanly on SIGTERM.
    assert!(users.stop().success());
    assert!(auth.stop().success());
}

async fn registration_survives_a_down_user_service_and_a_sigkill(backend: Backend) {
    let sys = System::new(backend).await;
    // The User Service is down: registration still succeeds.
    let auth = sys.start_auth();
    let first = sys.register_and_login("first@example.com").await;
    // Killed right after a registration, before it could deliver anything.
    let mut auth_client = sys.auth().await;
    let second_id = auth_client
        .register(auth_pb::RegisterRequest {
            email: "second@example.com".into(),
            password: PASSWORD.into(),
            display_name: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .user_id;
    auth.kill_hard();

    let _users = sys.start_user();
    let auth = sys.start_auth();
    let token = sys
        .auth()
        .await
        .login(auth_pb::LoginRequest {
            email: "first@example.com".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner()
        .access_token;
    sys.profile_appears_once(&token, &first.user_id).await;
    sys.profile_appears_once(&token, &second_id).await;

    // Killed again after delivery: the restart delivers nothing twice.
    auth.kill_hard();
    let _auth = sys.start_auth();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sys.profile_appears_once(&token, &first.user_id).await;
    sys.profile_appears_once(&token, &second_id).await;
}

async fn email_change_survives_a_down_user_service_and_a_sigkill(backend: Backend) {
    let mut sys = System::new(backend).await;
    let (inbox, url) = Inbox::start().await;
    sys.notify_url = Some(url);
    let auth = sys.start_auth();
    let users = sys.start_user();
    let login = sys.register_and_login("before@example.com").await;
    sys.profile_appears_once(&login.access_token, &login.user_id)
        .await;
    // The User Service goes down; the change is asked for and verified.
    drop(users);
    let mut client = sys.auth().await;
    client
        .change_email(bearer(
            auth_pb::ChangeEmailRequest {
                new_email: "after@example.com".into(),
                password: PASSWORD.into(),
            },
            &login.access_token,
        ))
        .await
        .unwrap();
    let token = inbox
        .token("identity.email_change.requested", "after@example.com")
        .await;
    client
        .verify_email(auth_pb::VerifyEmailRequest { token })
        .await
        .unwrap();
    // Killed right after VerifyEmail, before anything could be delivered.
    auth.kill_hard();

    let _users = sys.start_user();
    let _auth = sys.start_auth();
    let mut client = sys.auth().await;
    let old = client
        .login(auth_pb::LoginRequest {
            email: "before@example.com".into(),
            password: PASSWORD.into(),
        })
        .await;
    assert_code(old, Code::Unauthenticated);
    let session = client
        .login(auth_pb::LoginRequest {
            email: "after@example.com".into(),
            password: PASSWORD.into(),
        })
        .await
        .unwrap()
        .into_inner();
    // The profile follows, once, and the old address is told.
    let mut profiles = sys.users().await;
    let name = format!("users/{}", login.user_id);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let user = profiles
            .get_user(bearer(
                pb::GetUserRequest { name: name.clone() },
                &session.access_token,
            ))
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        if user.email == "after@example.com" {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the profile kept {}",
            user.email
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    sys.profile_appears_once(&session.access_token, &login.user_id)
        .await;
    inbox
        .token("identity.email.changed", "before@example.com")
        .await;
}

/// `auth-service import` as an operator runs it: bad lines reported by number
/// with exit status 1, the rest imported; an imported user logs in with the
/// password of the system it came from and its profile (with its username)
/// reaches the User Service.
async fn imported_users_log_in_and_reach_the_user_service(backend: Backend) {
    let sys = System::new(backend).await;
    let file = sys.logs.path().join("users.jsonl");
    let hash = "$2b$05$z0Z5tr4U6ddWoYLTFQhFduUykitdTYyqyhH6plQ7eaqwKI8PIJGPy";
    let line = serde_json::json!({
        "email": "Imported@Example.com", "password_hash": hash, "username": "imported.user",
        "email_verified": true, "display_name": "Imported",
    });
    // The same username again: one profile gets it, the other a derived one.
    let twin = serde_json::json!({
        "email": "twin@example.com", "password_hash": hash, "username": "imported.user",
    });
    std::fs::write(&file, format!("{line}\n{{broken\n{twin}\n")).unwrap();
    let out = std::process::Command::new(test_support::process::binary("auth-service"))
        .arg("import")
        .arg(&file)
        .env("AUTH_DATABASE_URL", &sys.auth_db.url)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("line 2: malformed JSON"), "{stderr}");
    assert!(stderr.contains("imported 2, skipped 0"), "{stderr}");

    let _auth = sys.start_auth();
    let _users = sys.start_user();
    let login = sys
        .auth()
        .await
        .login(auth_pb::LoginRequest {
            email: "imported@example.com".into(),
            password: "correct horse battery staple".into(),
        })
        .await
        .unwrap()
        .into_inner();
    sys.profile_appears_once(&login.access_token, &login.user_id)
        .await;
    let user = sys
        .users()
        .await
        .get_user(bearer(
            pb::GetUserRequest {
                name: format!("users/{}", login.user_id),
            },
            &login.access_token,
        ))
        .await
        .unwrap()
        .into_inner();
    let first_name = user.user.unwrap().username;

    let twin = sys
        .auth()
        .await
        .login(auth_pb::LoginRequest {
            email: "twin@example.com".into(),
            password: "correct horse battery staple".into(),
        })
        .await
        .unwrap()
        .into_inner();
    sys.profile_appears_once(&twin.access_token, &twin.user_id)
        .await;
    // Profiles are delivered side by side: whichever arrived first has the
    // name, the other one derived from its address.
    let twin_name = sys
        .users()
        .await
        .get_user(bearer(
            pb::GetUserRequest {
                name: format!("users/{}", twin.user_id),
            },
            &twin.access_token,
        ))
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap()
        .username;
    let names = [first_name, twin_name];
    let holders = names.iter().filter(|n| *n == "imported.user").count();
    assert_eq!(holders, 1, "{names:?}");
}
