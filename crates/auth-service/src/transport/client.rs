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

    /// The end client behind a trusted `peer`: proxies append the address they
    /// received from on the right, so only the right end of `x-forwarded-for`
    /// (every header, in order) is proxies' word; the first address from the
    /// right that is not a trusted proxy is the client. Anything to its left
    /// was written by the client and is ignored. An entry that is not an
    /// address stops the walk at the proxy that passed it on.
    fn forwarded_client(&self, peer: IpAddr, metadata: &MetadataMap) -> IpAddr {
        let entries: Vec<&str> = metadata
            .get_all(FORWARDED_FOR)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        let mut client = peer;
        for entry in entries.iter().rev() {
            let Some(ip) = parse_hop(entry) else {
                break;
            };
            client = ip;
            if !self.trusts(ip) {
                break;
            }
        }
        client
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
        let forwarded = match peer_ip {
            Some(ip) if trusted => Some(self.forwarded_client(ip, metadata)),
            _ => None,
        };
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

/// One `x-forwarded-for` entry: an address, possibly with a port.
fn parse_hop(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
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

    #[test]
    fn forwarded_for_is_read_right_to_left_across_headers() {
        let proxies = TrustedProxies::parse("10.0.0.0/8").unwrap();
        let gateway = Some("10.0.0.1:443".parse().unwrap());
        let from = |m: &MetadataMap| proxies.client(gateway, m).address;
        // A client prepends a victim's address: the proxy appended the real one.
        let spoofed = md(&[("x-forwarded-for", "198.51.100.66, 203.0.113.7")]);
        assert_eq!(from(&spoofed).as_deref(), Some("203.0.113.7"));
        // Two proxies in a row: both skipped.
        let chain = md(&[("x-forwarded-for", "1.2.3.4, 203.0.113.7, 10.0.0.9")]);
        assert_eq!(from(&chain).as_deref(), Some("203.0.113.7"));
        // Several headers are one list, in order.
        let mut two = MetadataMap::new();
        two.append("x-forwarded-for", "198.51.100.66".parse().unwrap());
        two.append("x-forwarded-for", "203.0.113.8:5555".parse().unwrap());
        assert_eq!(from(&two).as_deref(), Some("203.0.113.8"));
        // Garbage the client wrote on the left does not matter; garbage at the
        // right end leaves the gateway as the client.
        let left = md(&[("x-forwarded-for", "evil, 203.0.113.7")]);
        assert_eq!(from(&left).as_deref(), Some("203.0.113.7"));
        let right = md(&[("x-forwarded-for", "203.0.113.7, evil")]);
        assert_eq!(from(&right).as_deref(), Some("10.0.0.1"));
    }
}
