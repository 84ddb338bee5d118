//! The system under test: both services as processes from a build directory, on
//! a fresh SQLite file or a database of the throwaway PostgreSQL cluster, wired
//! with a service account, plus the echo server.

use std::path::{Path, PathBuf};
use test_support::process::{ServiceProcess, create_user_service_account, free_port};
use test_support::{Backend, TestDatabase};

/// The pair of services under test: started here (and stopped when dropped),
/// or already running somewhere.
pub struct Under {
    /// What the table calls them: the backend, or `external`.
    pub label: String,
    pub auth_url: String,
    pub user_url: String,
    /// (auth, user) process ids when they run on this machine.
    pub pids: Option<(u32, u32)>,
    /// What the bench started itself, for scenarios that also work on the
    /// databases and the command line (`scale`).
    pub local: Option<Local>,
    _started: Option<(ServiceProcess, ServiceProcess, TestDatabase, TestDatabase)>,
}

impl Under {
    /// Services someone else runs.
    pub fn external(auth_url: &str, user_url: &str, pids: Option<(u32, u32)>) -> Self {
        Self {
            label: "external".to_owned(),
            auth_url: auth_url.to_owned(),
            user_url: user_url.to_owned(),
            pids,
            local: None,
            _started: None,
        }
    }
}

/// The parts of services the bench started: where their databases and the
/// Auth Service's HTTP port are, and its binary for the admin subcommands.
#[derive(Debug, Clone)]
pub struct Local {
    pub auth_bin: PathBuf,
    pub auth_db_url: String,
    pub user_db_url: String,
    pub auth_http_url: String,
}

impl Local {
    /// `auth-service <args>` on the Auth Service's database, as an operator
    /// runs it next to the service.
    pub fn auth_command(&self, args: &[&str]) -> std::process::Command {
        let mut command = std::process::Command::new(&self.auth_bin);
        command
            .args(args)
            .env("AUTH_DATABASE_URL", &self.auth_db_url)
            .env("RUST_LOG", "warn");
        command
    }
}

/// Starts both services from `bin_dir` on `backend`, logging into `logs`.
pub async fn start(bin_dir: &Path, backend: Backend, logs: &Path) -> anyhow::Result<Under> {
    let auth_db = backend.fresh_database().await;
    let user_db = backend.fresh_database().await;
    let auth_bin = bin_dir.join("auth-service");
    let user_bin = bin_dir.join("user-service");
    anyhow::ensure!(
        auth_bin.exists() && user_bin.exists(),
        "no service binaries in {}",
        bin_dir.display()
    );

    let credentials = logs.join(format!(
        "credentials-{}.json",
        uuid::Uuid::new_v4().simple()
    ));
    let json = create_user_service_account(&auth_bin, &auth_db.url).map_err(anyhow::Error::msg)?;
    std::fs::write(&credentials, json)?;

    let (ag, ah, ug, uh) = (free_port(), free_port(), free_port(), free_port());
    let auth_env = [
        ("AUTH_GRPC_ADDR", format!("127.0.0.1:{ag}")),
        ("AUTH_HTTP_ADDR", format!("127.0.0.1:{ah}")),
        ("AUTH_DATABASE_URL", auth_db.url.clone()),
        ("AUTH_USER_URL", format!("http://127.0.0.1:{ug}")),
        // The load generator registers thousands of users from one address.
        ("AUTH_REGISTRATIONS_PER_MINUTE", "4000000000".to_owned()),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let auth = ServiceProcess::start(
        &auth_bin,
        &auth_env,
        &format!("http://127.0.0.1:{ah}/readyz"),
        logs,
    );
    let user_env = [
        ("USER_GRPC_ADDR", format!("127.0.0.1:{ug}")),
        ("USER_HTTP_ADDR", format!("127.0.0.1:{uh}")),
        ("USER_DATABASE_URL", user_db.url.clone()),
        ("USER_AUTH_URL", format!("http://127.0.0.1:{ag}")),
        (
            "USER_CLIENT_CREDENTIALS_FILE",
            credentials.display().to_string(),
        ),
        ("RUST_LOG", "warn".to_owned()),
    ];
    let user = ServiceProcess::start(
        &user_bin,
        &user_env,
        &format!("http://127.0.0.1:{uh}/readyz"),
        logs,
    );
    Ok(Under {
        label: format!("{backend:?}"),
        auth_url: format!("http://127.0.0.1:{ag}"),
        user_url: format!("http://127.0.0.1:{ug}"),
        pids: Some((auth.pid(), user.pid())),
        local: Some(Local {
            auth_bin,
            auth_db_url: auth_db.url.clone(),
            user_db_url: user_db.url.clone(),
            auth_http_url: format!("http://127.0.0.1:{ah}"),
        }),
        _started: Some((auth, user, auth_db, user_db)),
    })
}

/// The running echo server, stopped when dropped.
pub struct Echo {
    pub child: std::process::Child,
    /// Where it listens.
    pub url: String,
    pub channels: Vec<tonic::transport::Channel>,
    pub op: std::sync::Arc<dyn crate::load::Operation>,
}

impl Drop for Echo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts this binary as the echo server; returns it and its URL.
pub fn start_echo(logs: &Path) -> anyhow::Result<(std::process::Child, String)> {
    let port = free_port();
    let me: PathBuf = std::env::current_exe()?;
    let child = std::process::Command::new(me)
        .args(["echo-server", "--addr", &format!("127.0.0.1:{port}")])
        .stdout(std::fs::File::create(logs.join("echo.log"))?)
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}");
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok((child, url));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    anyhow::bail!("the echo server did not start")
}
