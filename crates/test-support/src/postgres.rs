//! A throwaway PostgreSQL cluster, started once per test process on a free port.
//!
//! `initdb` refuses to run as root, so as root the cluster runs as the `postgres`
//! OS user (through `runuser`). The server is started by a small shell that also
//! reads our stdin: when the test process exits, for whatever reason, the pipe
//! closes and the shell stops the server and removes its data directory, so no
//! cluster outlives its tests.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

struct Cluster {
    port: u16,
    _guard: Child,
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

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("no free port")
}

fn start() -> Cluster {
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
    let data = dir.join("data");
    let out = as_owner(root, &bin.join("initdb"))
        .args(["-D"])
        .arg(&data)
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

    for _attempt in 0..5 {
        let port = free_port();
        let server = format!(
            "{postgres} -D {data} -p {port} -k {dir} -h 127.0.0.1 -c fsync=off \
             -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \
             -c shared_buffers=64MB > {dir}/server.log 2>&1 & pid=$!; \
             cat > /dev/null; kill -INT $pid; wait $pid; rm -rf {dir}",
            postgres = bin.join("postgres").display(),
            data = data.display(),
            dir = dir.display(),
        );
        let mut guard = as_owner(root, Path::new("/bin/sh"))
            .args(["-c", &server])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("start postgres");
        if wait_ready(&bin, port) {
            return Cluster {
                port,
                _guard: guard,
            };
        }
        // Most likely the port was taken between probe and bind; try another.
        drop(guard.stdin.take());
        let _ = guard.wait();
    }
    panic!("PostgreSQL did not start; see {}/server.log", dir.display());
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
    let cluster = CLUSTER.get_or_init(start);
    format!("postgres://postgres@127.0.0.1:{}/{database}", cluster.port)
}

/// Creates an empty database on the shared cluster and returns its URL.
pub async fn fresh_database() -> String {
    let admin = tokio::task::spawn_blocking(|| cluster_url("postgres"))
        .await
        .expect("cluster");
    let name = format!("test_{}", uuid::Uuid::new_v4().simple());
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .expect("connect to the test cluster");
    sqlx::Executor::execute(&mut conn, format!("CREATE DATABASE {name}").as_str())
        .await
        .expect("create test database");
    cluster_url(&name)
}
