//! The services as real processes, for end-to-end tests: started from the
//! workspace's built binaries, waited for until ready, stopped with SIGTERM or
//! killed with SIGKILL.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running service binary; killed when dropped.
pub struct ServiceProcess {
    child: Child,
    name: String,
    log: PathBuf,
}

/// The path of a workspace binary next to the running test's own directory
/// (`target/<profile>/`). `cargo test --workspace` builds every binary first.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built; run `cargo build --workspace --bins` (the test command does)",
        path.display()
    );
    path
}

/// Provisions the User Service's service account the way an operator does
/// (`auth-service create-service-account` on the Auth Service's database) and
/// returns the credentials JSON it prints.
pub fn create_user_service_account(auth_bin: &Path, database_url: &str) -> Result<Vec<u8>, String> {
    let out = Command::new(auth_bin)
        .args([
            "create-service-account",
            "--name",
            "user-service",
            "--role",
            "identity-service",
        ])
        .env("AUTH_DATABASE_URL", database_url)
        .output()
        .map_err(|e| format!("cannot run {}: {e}", auth_bin.display()))?;
    if !out.status.success() {
        return Err(format!(
            "create-service-account failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(out.stdout)
}

/// A free loopback port (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

impl ServiceProcess {
    /// Starts `binary` with `env`, logging to a file in `log_dir`, and waits until
    /// `ready_url` answers 200.
    pub fn start(
        program: &std::path::Path,
        env: &[(&str, String)],
        ready_url: &str,
        log_dir: &std::path::Path,
    ) -> Self {
        let binary_name = program
            .file_name()
            .map_or_else(|| "service".into(), |n| n.to_string_lossy().into_owned());
        let log = log_dir.join(format!(
            "{binary_name}-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(program)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start service");
        let mut process = Self {
            child,
            name: binary_name,
            log,
        };
        process.wait_ready(ready_url);
        process
    }

    fn wait_ready(&mut self, url: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("{} exited with {status}:\n{}", self.name, self.log_text());
            }
            if http_ok(url) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("{} not ready at {url}:\n{}", self.name, self.log_text());
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the process has logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL: no chance to finish anything.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for a clean exit.
    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait for the service")
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A minimal HTTP/1.1 GET, enough for a readiness probe without a client crate.
fn http_ok(url: &str) -> bool {
    use std::io::{Read, Write};
    let Some(rest) = url.strip_prefix("http://") else {
        return false;
    };
    let (host, path) = rest
        .split_once('/')
        .map_or((rest, "/".to_owned()), |(h, p)| (h, format!("/{p}")));
    let Ok(mut stream) = std::net::TcpStream::connect(host) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}
