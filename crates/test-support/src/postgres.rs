//! Throwaway PostgreSQL clusters on free ports: one shared per test process, and
//! private ones a test can stop and start again (a database outage).
//!
//! `initdb` refuses to run as root, so as root the cluster runs as the `postgres`
//! OS user (through `runuser`). The server is started by a small shell that also
//! reads our stdin: when the test process exits, for whatever reason, the pipe
//! closes and the shell stops the server (and removes the shared cluster's data
//! directory), so no cluster outlives its tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A running (or stopped) cluster.
pub struct Cluster {
    port: u16,
    bin: PathBuf,
    dir: PathBuf,
    root: bool,
    /// Removes the data directory when the server stops (the shared cluster,
    /// which is never dropped).
    shared: bool,
    guard: Option<Child>,
}

static CLUSTER: OnceLock<Cluster> = OnceLock::new();

/// Where Debian puts the server binaries (`/usr/lib/postgresql/<version>/bin`), or
/// `PG_BIN` when set.
pub fn bin_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PG_BIN") {
        return Some(PathBuf::from(dir));
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|p| p.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.trim_ascii() == b"0")
}

fn as_owner(is_root: bool, program: &Path) -> Command {
    if is_root {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

/// Tests want many small clusters (64 MB each); the scale bench wants one
/// sized like production (`TEST_PG_SHARED_BUFFERS=4GB`).
fn shared_buffers() -> String {
    std::env::var("TEST_PG_SHARED_BUFFERS")
        .ok()
        .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "64MB".to_owned())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

impl Cluster {
    /// A private cluster of the calling test's own, stopped and removed on drop.
    pub fn start_private() -> Cluster {
        Self::init(false)
    }

    fn init(shared: bool) -> Cluster {
        let bin = bin_dir().unwrap_or_else(|| {
            panic!(
                "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin. \
                 Install them with `apt-get install postgresql` (Debian) or set PG_BIN."
            )
        });
        let root = is_root();
        let dir = tempfile::Builder::new()
            .prefix("identity-pg-")
            .tempdir()
            .expect("temp dir")
            .keep();
        if root {
            let ok = Command::new("chown")
                .arg("postgres:")
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(
                ok.success(),
                "cannot give {} to the postgres user",
                dir.display()
            );
        }
        let out = as_owner(root, &bin.join("initdb"))
            .args(["-D"])
            .arg(dir.join("data"))
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "-E",
                "UTF8",
                "--locale=C",
            ])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut cluster = Cluster {
            port: 0,
            bin,
            dir,
            root,
            shared,
            guard: None,
        };
        for _attempt in 0..5 {
            cluster.port = free_port();
            if cluster.launch() {
                return cluster;
            }
        }
        panic!(
            "PostgreSQL did not start; see {}/server.log",
            cluster.dir.display()
        );
    }

    /// Starts the server on `self.port`; false if it did not become ready.
    fn launch(&mut self) -> bool {
        let cleanup = if self.shared {
            format!("; rm -rf {}", self.dir.display())
        } else {
            String::new()
        };
        let server = format!(
            "{postgres} -D {dir}/data -p {port} -k {dir} -h 127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
             -c shared_buffers={buffers} >> {dir}/server.log 2>&1 & pid=$!; \
             cat > /dev/null; kill -INT $pid 2>/dev/null; wait $pid{cleanup}",
            buffers = shared_buffers(),
            postgres = self.bin.join("postgres").display(),
            dir = self.dir.display(),
            port = self.port,
        );
        let mut guard = as_owner(self.root, Path::new("/bin/sh"))
            .args(["-c", &server])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start postgres");
        if wait_ready(&self.bin, self.port) {
            self.guard = Some(guard);
            return true;
        }
        drop(guard.stdin.take());
        let _ = guard.wait();
        false
    }

    /// The URL of `database` on this cluster.
    pub fn url(&self, database: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{database}", self.port)
    }

    /// Stops the server as an administrator would (`pg_ctl stop -m fast`:
    /// connections are terminated, new ones refused).
    pub fn stop(&mut self) {
        let out = as_owner(self.root, &self.bin.join("pg_ctl"))
            .args(["stop", "-m", "fast", "-w", "-D"])
            .arg(self.dir.join("data"))
            .output()
            .expect("run pg_ctl");
        assert!(
            out.status.success(),
            "pg_ctl stop failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if let Some(mut guard) = self.guard.take() {
            drop(guard.stdin.take());
            let _ = guard.wait();
        }
    }

    /// Starts the stopped server again on the same port.
    pub fn restart(&mut self) {
        assert!(self.launch(), "PostgreSQL did not restart");
    }

    /// Creates an empty database and returns its URL.
    pub async fn create_database(&self) -> String {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&self.url("postgres"))
            .await
            .expect("connect to the test cluster");
        sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        self.url(&name)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(mut guard) = self.guard.take() {
            drop(guard.stdin.take());
            let _ = guard.wait();
        }
        if !self.shared {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

fn wait_ready(bin: &Path, port: u16) -> bool {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        let ready = Command::new(bin.join("pg_isready"))
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-U",
                "postgres",
                "-q",
            ])
            .status()
            .is_ok_and(|s| s.success());
        if ready {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

/// The admin URL of the shared cluster, starting it on first use.
pub fn cluster_url(database: &str) -> String {
    CLUSTER.get_or_init(|| Cluster::init(true)).url(database)
}

/// Creates an empty database on the shared cluster and returns its URL.
pub async fn fresh_database() -> String {
    let cluster = tokio::task::spawn_blocking(|| CLUSTER.get_or_init(|| Cluster::init(true)))
        .await
        .expect("cluster");
    cluster.create_database().await
}
