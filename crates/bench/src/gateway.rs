//! The `gateway` scenario: HTTP/2 requests through a real Envoy to a
//! `direct_response` route, once with ext_authz asking the Auth Service about
//! every request and once without, same load generator, same run. With no
//! upstream behind Envoy, the ratio is what the Auth Service costs a gateway
//! and nothing else.

use crate::load::Operation;
use futures::future::BoxFuture;
use std::path::Path;
use std::process::{Child, Command};
use tonic::transport::Channel;
use tower::ServiceExt;

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

/// Envoy's own answer to every request, so no upstream is involved. Headers
/// only: a body the client drops unread would end in a stream reset, and Envoy
/// closes connections with many early resets (its rapid-reset defence).
fn direct_response() -> serde_json::Value {
    serde_json::json!({
        "match": {"prefix": "/"},
        "direct_response": {"status": 200}
    })
}

/// Starts Envoy answering every request itself; with `auth`, every request is
/// first checked by that Auth Service's ext_authz.
pub fn start(envoy: &Path, auth: Option<&str>, logs: &Path, base_id: u32) -> anyhow::Result<Envoy> {
    let port = test_support::process::free_port();
    let mut filters = Vec::new();
    let mut clusters = Vec::new();
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
                            "routes": [direct_response()]
                        }]},
                        "http_filters": filters
                    }
                }]}]
            }],
            "clusters": clusters
        }
    });
    let name = format!("envoy-{base_id}");
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

/// `GET /api/resource` over the benchmark's HTTP/2 channels, carrying the
/// bearer token Envoy checks; anything but 200 counts as the gRPC code Envoy
/// would give a gRPC client for that status.
pub struct ThroughGateway {
    pub token: String,
    pub authority: String,
}

impl Operation for ThroughGateway {
    fn call(&self, _worker: usize, channel: Channel) -> BoxFuture<'_, Result<(), tonic::Code>> {
        Box::pin(async move {
            let request = http::Request::get(format!("http://{}/api/resource", self.authority))
                .header("authorization", format!("Bearer {}", self.token))
                .body(tonic::body::Body::empty())
                .map_err(|_| tonic::Code::InvalidArgument)?;
            let response = channel
                .oneshot(request)
                .await
                .map_err(|_| tonic::Code::Unavailable)?;
            match response.status() {
                http::StatusCode::OK => Ok(()),
                http::StatusCode::UNAUTHORIZED => Err(tonic::Code::Unauthenticated),
                http::StatusCode::FORBIDDEN => Err(tonic::Code::PermissionDenied),
                _ => Err(tonic::Code::Unknown),
            }
        })
    }
}
