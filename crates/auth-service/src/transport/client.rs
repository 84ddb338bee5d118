//! Where a request comes from. The peer address is the client's, unless the peer
//! is a trusted proxy (the API Gateway): then the client address and user agent it
//! forwards in metadata are used. Metadata from anyone else is ignored, so a
//! client cannot dodge throttling by claiming another address.

use crate::audit::ClientInfo;
use ipnet::IpNet;
use std::net::IpAddr;
use tonic::metadata::MetadataMap;

/// Metadata a trusted proxy sets to the end client's address.
pub const FORWARDED_FOR: &str = "x-forwarded-for";
/// Metadata a trusted proxy sets to the end client's user agent.
pub const FORWARDED_USER_AGENT: &str = "x-forwarded-user-agent";
const MAX_USER_AGENT: usize = 256;

/// The networks whose forwarded metadata is believed.
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses a comma-separated list of addresses and CIDR networks.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut nets = Vec::new();
        for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let net = item
                .parse::<IpNet>()
                .or_else(|_| item.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| {
                    format!("trusted proxy {item:?} is not an IP address or CIDR network")
                })?;
            nets.push(net);
        }
        Ok(Self(nets))
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.0.iter().any(|n| n.contains(&ip))
    }

    /// The client of a request that arrived from `peer`.
    pub fn client(&self, peer: Option<std::net::SocketAddr>, metadata: &MetadataMap) -> ClientInfo {
        let text = |key: &str| {
            metadata
                .get(key)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let peer_ip = peer.map(|p| p.ip());
        let trusted = peer_ip.is_some_and(|ip| self.trusts(ip));
        let forwarded = trusted
            .then(|| text(FORWARDED_FOR))
            .flatten()
            .and_then(|v| v.split(',').next())
            .and_then(|v| v.trim().parse::<IpAddr>().ok());
        let user_agent = if trusted {
            text(FORWARDED_USER_AGENT)
        } else {
            text("user-agent")
        };
        ClientInfo {
            address: forwarded.or(peer_ip).map(|ip| ip.to_string()),
            user_agent: user_agent.map(|u| u.chars().take(MAX_USER_AGENT).collect()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md(pairs: &[(&'static str, &str)]) -> MetadataMap {
        let mut m = MetadataMap::new();
        for (k, v) in pairs {
            m.insert(*k, v.parse().unwrap());
        }
        m
    }

    #[test]
    fn forwarded_address_only_from_trusted_proxies() {
        let proxies = TrustedProxies::parse("10.0.0.0/8, 127.0.0.1").unwrap();
        let m = md(&[
            ("x-forwarded-for", "203.0.113.7, 10.0.0.2"),
            ("x-forwarded-user-agent", "Firefox"),
        ]);
        let trusted = proxies.client(Some("10.1.2.3:5000".parse().unwrap()), &m);
        assert_eq!(trusted.address.as_deref(), Some("203.0.113.7"));
        assert_eq!(trusted.user_agent.as_deref(), Some("Firefox"));
        let untrusted = proxies.client(Some("192.0.2.1:5000".parse().unwrap()), &m);
        assert_eq!(untrusted.address.as_deref(), Some("192.0.2.1"));
        let garbage = proxies.client(
            Some("127.0.0.1:1".parse().unwrap()),
            &md(&[("x-forwarded-for", "not-an-ip")]),
        );
        assert_eq!(garbage.address.as_deref(), Some("127.0.0.1"));
        assert!(TrustedProxies::parse("nonsense").is_err());
    }
}
