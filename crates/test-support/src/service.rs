//! What every service's `spawn_app` helpers share: settings parsed by the
//! service's own flags, a client channel, and the assertions on gRPC answers.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tonic::transport::Channel;

/// The password of every user the tests register.
pub const PASSWORD: &str = "correct horse battery staple";

/// Settings of a service under test: the defaults its flags declare, listening
/// on port 0 of loopback, logging for a terminal, on `database_url`, with
/// `flags` (name and value) on top.
pub fn settings<T: clap::Args + clap::FromArgMatches>(
    database_url: &str,
    flags: &[(&str, &str)],
) -> T {
    let command = T::augment_args(clap::Command::new("test"))
        // A developer's own AUTH_* or USER_* variables must not reach the tests.
        .mut_args(|arg| arg.env(None));
    let local = [
        ("grpc-addr", "127.0.0.1:0"),
        ("http-addr", "127.0.0.1:0"),
        ("log-format", "pretty"),
        ("database-url", database_url),
    ];
    // `--flag=value`: a value that starts with `-` (a random secret may) stays a value.
    let argv = std::iter::once("test".to_owned()).chain(
        local
            .iter()
            .chain(flags)
            .map(|(flag, value)| format!("--{flag}={value}")),
    );
    let matches = command
        .try_get_matches_from(argv)
        .unwrap_or_else(|e| panic!("test settings {flags:?}: {e}"));
    T::from_arg_matches(&matches).unwrap_or_else(|e| panic!("test settings {flags:?}: {e}"))
}

/// A channel to the gRPC port at `addr`: connected now, or on first use when
/// `connect` is false (a port that speaks TLS, say).
pub async fn channel(addr: SocketAddr, connect: bool) -> Channel {
    let endpoint = Channel::from_shared(format!("http://{addr}")).expect("gRPC URL");
    if connect {
        endpoint.connect().await.expect("connect to the gRPC port")
    } else {
        endpoint.connect_lazy()
    }
}

/// A fresh email address.
pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// `message` with `authorization: Bearer <token>`.
pub fn bearer<T>(message: T, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    r
}

/// Asserts a call failed with `code`, and returns its message.
#[track_caller]
pub fn assert_code<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
) -> String {
    match result {
        Ok(v) => panic!("expected {code:?}, got OK: {v:?}"),
        Err(s) => {
            assert_eq!(s.code(), code, "unexpected status: {s:?}");
            s.message().to_owned()
        }
    }
}

/// The value of the first series on `{http}/metrics` whose name and labels
/// start with `series`; `None` when none does.
pub async fn metric(http: &str, series: &str) -> Option<f64> {
    let text = reqwest::get(format!("{http}/metrics"))
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    text.lines()
        .find(|l| l.starts_with(series))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

/// Polls `check` until it holds, for up to `secs` seconds.
pub async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    #[derive(Debug, clap::Args)]
    struct Flags {
        #[arg(long, env = "TEST_SUPPORT_SECRET")]
        secret: String,
        #[arg(long)]
        database_url: String,
        #[arg(long)]
        grpc_addr: String,
        #[arg(long)]
        http_addr: String,
        #[arg(long)]
        log_format: String,
    }

    #[test]
    fn a_value_that_starts_with_a_dash_stays_a_value() {
        let flags: Flags = super::settings("sqlite:x.db", &[("secret", "-Xy_z")]);
        assert_eq!(flags.secret, "-Xy_z");
        assert_eq!(flags.database_url, "sqlite:x.db");
        assert_eq!(flags.grpc_addr, "127.0.0.1:0");
    }
}
