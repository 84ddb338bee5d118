//! The `gateway` scenario: gRPC requests through a real Envoy to the echo
//! server, once with ext_authz asking the Auth Service about every request and
//! once without, same load generator, same run. The ratio is what the Auth
//! Service costs a gateway.

use crate::load::Operation;
use futures::future::BoxFuture;
use identity_proto::auth::v1 as auth_pb;
use identity_proto::auth::v1::auth_service_client::AuthServiceClient;
use std::path::Path;
use std::process::{Child, Command};
use tonic::transport::Channel;

/// A running Envoy, stopped on drop.
pub struct Envoy {
    child: Child,
    pub url: String,
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn port_of(url: &str) -> anyhow::Result<u16> {
    url.rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no port in {url}"))
}

fn cluster(name: &str, port: u16) -> serde_json::Value {
    serde_json::json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}}
            }
        },
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]
        }
    })
}

/// Starts Envoy in front of `upstream` (the echo server); with `auth`, every
/// request is first checked by that Auth Service's ext_authz.
pub fn start(
    envoy: &Path,
    upstream: &str,
    auth: Option<&str>,
    logs: &Path,
    base_id: u32,
) -> anyhow::Result<Envoy> {
    let port = test_support::process::free_port();
    let mut filters = Vec::new();
    let mut clusters = vec![cluster("echo", port_of(upstream)?)];
    if let Some(auth) = auth {
        filters.push(serde_json::json!({
            "name": "envoy.filters.http.ext_authz",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_authz.v3.ExtAuthz",
                "transport_api_version": "V3",
                "failure_mode_allow": false,
                "grpc_service": {"envoy_grpc": {"cluster_name": "auth"}, "timeout": "1s"}
            }
        }));
        clusters.push(cluster("auth", port_of(auth)?));
    }
    filters.push(serde_json::json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    }));
    let config = serde_json::json!({
        "static_resources": {
            "listeners": [{
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "bench",
                        "codec_type": "AUTO",
                        "route_config": {"virtual_hosts": [{
                            "name": "all", "domains": ["*"],
                            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "echo"}}]
                        }]},
                        "http_filters": filters
                    }
                }]}]
            }],
            "clusters": clusters
        }
    });
    let name = if auth.is_some() {
        "envoy-authz"
    } else {
        "envoy-plain"
    };
    let path = logs.join(format!("{name}.json"));
    std::fs::write(&path, config.to_string())?;
    let child = Command::new(envoy)
        .arg("-c")
        .arg(&path)
        .args(["--log-level", "error", "--concurrency", "1", "--base-id"])
        .arg(base_id.to_string())
        .stdout(std::fs::File::create(logs.join(format!("{name}.log")))?)
        .stderr(std::fs::File::create(logs.join(format!("{name}.err")))?)
        .spawn()?;
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(Envoy {
                child,
                url: format!("http://127.0.0.1:{port}"),
            });
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    anyhow::bail!("Envoy did not start (see {name}.err)")
}

/// ValidateToken to the echo server, carrying the bearer token Envoy checks.
pub struct ThroughGateway {
    pub token: String,
}

impl Operation for ThroughGateway {
    fn call(&self, _worker: usize, channel: Channel) -> BoxFuture<'_, Result<(), tonic::Code>> {
        Box::pin(async move {
            let mut r = tonic::Request::new(auth_pb::ValidateTokenRequest {
                access_token: self.token.clone(),
            });
            if let Ok(v) = format!("Bearer {}", self.token).parse() {
                r.metadata_mut().insert("authorization", v);
            }
            AuthServiceClient::new(channel)
                .validate_token(r)
                .await
                .map(drop)
                .map_err(|s| s.code())
        })
    }
}
