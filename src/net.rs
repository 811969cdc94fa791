//! Client addresses: CIDR blocks for `trusted_proxies`, the address a request came from
//! behind those proxies, and the key rate limits count an address under.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;

/// An address block such as `10.0.0.0/8`, `2001:db8::/32`, or one address (`192.0.2.7`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IpBlock {
    network: IpAddr,
    prefix: u8,
}

impl IpBlock {
    /// Whether `addr` lies in this block. IPv4-mapped IPv6 addresses count as IPv4.
    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, canonical(addr)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpBlock {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let problem = || format!("{text:?} is not an IP address or CIDR block like 10.0.0.0/8");
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let network = canonical(addr.parse::<IpAddr>().map_err(|_| problem())?);
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => match p.parse::<u8>() {
                Ok(p) if p <= max => p,
                _ => return Err(problem()),
            },
        };
        Ok(IpBlock { network, prefix })
    }
}

impl TryFrom<String> for IpBlock {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

impl From<IpBlock> for String {
    fn from(block: IpBlock) -> String {
        block.to_string()
    }
}

impl fmt::Display for IpBlock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// Which header a trusted proxy reports the client in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, proxy2`.
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// IPv4-mapped IPv6 (`::ffff:192.0.2.1`) as the IPv4 address it is.
fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// One hop as a proxy wrote it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`, optionally in double quotes (RFC 7239).
fn parse_hop(text: &str) -> Option<IpAddr> {
    let text = text.trim().trim_matches('"');
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (inside, _) = rest.split_once(']')?;
        return inside
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| canonical(ip.into()));
    }
    text.parse::<SocketAddr>().ok().map(|s| canonical(s.ip()))
}

/// The hops a header lists, nearest last. `values` are every instance of the header.
fn hops<'a>(kind: ForwardedHeader, values: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut out = Vec::new();
    for value in values {
        for element in value.split(',') {
            match kind {
                ForwardedHeader::XForwardedFor => out.push(element),
                ForwardedHeader::Forwarded => {
                    // An element without `for=` still is a hop, just an unknown one.
                    let node = element
                        .split(';')
                        .filter_map(|pair| pair.split_once('='))
                        .find(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
                        .map_or("", |(_, value)| value);
                    out.push(node);
                }
            }
        }
    }
    out
}

/// The address a request came from. Only when the socket peer is a trusted proxy are
/// the forwarding headers read; then the client is the right-most hop that is not
/// itself a trusted proxy (everything left of it could have been written by the client).
/// A hop that is not an address ends the walk at the last trusted proxy seen.
pub fn client_address<'a>(
    peer: IpAddr,
    trusted: &[IpBlock],
    kind: ForwardedHeader,
    header_values: impl Iterator<Item = &'a str>,
) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: IpAddr| trusted.iter().any(|block| block.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let mut client = peer;
    for hop in hops(kind, header_values).into_iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            return client;
        };
        client = ip;
        if !is_trusted(ip) {
            return ip;
        }
    }
    client
}

/// The key a rate limit counts an address under: the address itself for IPv4, its /64
/// network for IPv6 (one customer usually gets a whole /64). Anything that is not an
/// address (a CLI caller, say) is its own key.
pub fn rate_limit_key(address: &str) -> String {
    match address.parse::<IpAddr>().map(canonical) {
        Ok(IpAddr::V6(v6)) => {
            let network = Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64));
            format!("ip:{network}/64")
        }
        Ok(IpAddr::V4(v4)) => format!("ip:{v4}"),
        Err(_) => format!("ip:{address}"),
    }
}

/// The network an address belongs to, for telling a new network from a known one
/// (R012): its /24 for IPv4, its /64 for IPv6. Anything that is not an address is its
/// own network.
pub fn network_key(address: &str) -> String {
    match address.parse::<IpAddr>().map(canonical) {
        Ok(IpAddr::V6(v6)) => {
            let network = Ipv6Addr::from(u128::from(v6) & (u128::MAX << 64));
            format!("{network}/64")
        }
        Ok(IpAddr::V4(v4)) => {
            let network = std::net::Ipv4Addr::from(u32::from(v4) & (u32::MAX << 8));
            format!("{network}/24")
        }
        Err(_) => address.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(list: &[&str]) -> Vec<IpBlock> {
        list.iter().map(|b| b.parse().unwrap()).collect()
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_are_slash_24_and_slash_64() {
        assert_eq!(network_key("192.0.2.7"), "192.0.2.0/24");
        assert_eq!(network_key("192.0.2.250"), network_key("192.0.2.1"));
        assert_ne!(network_key("192.0.3.1"), network_key("192.0.2.1"));
        assert_eq!(network_key("::ffff:192.0.2.7"), "192.0.2.0/24");
        assert_eq!(network_key("2001:db8:1:2:3:4:5:6"), "2001:db8:1:2::/64");
        assert_ne!(
            network_key("2001:db8:1:3::1"),
            network_key("2001:db8:1:2::1")
        );
        assert_eq!(network_key("cli"), "cli");
    }

    #[test]
    fn blocks_parse_and_match() {
        let b: IpBlock = "10.0.0.0/8".parse().unwrap();
        assert!(b.contains(ip("10.200.1.1")));
        assert!(!b.contains(ip("11.0.0.1")));
        assert!(b.contains(ip("::ffff:10.1.2.3")));
        let single: IpBlock = "192.0.2.7".parse().unwrap();
        assert!(single.contains(ip("192.0.2.7")));
        assert!(!single.contains(ip("192.0.2.8")));
        let v6: IpBlock = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:1::5")));
        assert!(!v6.contains(ip("2001:db9::5")));
        let all: IpBlock = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("203.0.113.9")));
        for bad in ["10.0.0.0/33", "nonsense", "::/129", "10.0.0.0/-1", ""] {
            assert!(bad.parse::<IpBlock>().is_err(), "{bad}");
        }
    }

    #[test]
    fn right_most_untrusted_hop_is_the_client() {
        let trusted = blocks(&["10.0.0.0/8"]);
        let xff = ForwardedHeader::XForwardedFor;
        // Untrusted peer: headers ignored.
        assert_eq!(
            client_address(ip("203.0.113.5"), &trusted, xff, ["1.2.3.4"].into_iter()),
            ip("203.0.113.5")
        );
        // Trusted peer: the client wrote "1.2.3.4", the proxy appended the real peer.
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                &trusted,
                xff,
                ["1.2.3.4, 198.51.100.7, 10.0.0.9"].into_iter()
            ),
            ip("198.51.100.7")
        );
        // Several header lines are one list.
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                &trusted,
                xff,
                ["1.2.3.4", "198.51.100.7:5555"].into_iter()
            ),
            ip("198.51.100.7")
        );
        // No header: the proxy itself.
        assert_eq!(
            client_address(ip("10.0.0.2"), &trusted, xff, std::iter::empty()),
            ip("10.0.0.2")
        );
        // Garbage where an address should be: stop at the last trusted hop.
        assert_eq!(
            client_address(ip("10.0.0.2"), &trusted, xff, ["unknown"].into_iter()),
            ip("10.0.0.2")
        );
        // RFC 7239.
        assert_eq!(
            client_address(
                ip("10.0.0.2"),
                &trusted,
                ForwardedHeader::Forwarded,
                ["for=1.2.3.4, for=\"[2001:db8:cafe::17]:4711\";proto=https"].into_iter()
            ),
            ip("2001:db8:cafe::17")
        );
    }

    #[test]
    fn ipv6_is_limited_per_64() {
        assert_eq!(
            rate_limit_key("2001:db8:1:2:aaaa::1"),
            rate_limit_key("2001:db8:1:2:ffff::9")
        );
        assert_ne!(
            rate_limit_key("2001:db8:1:2::1"),
            rate_limit_key("2001:db8:1:3::1")
        );
        assert_eq!(rate_limit_key("2001:db8:1:2::1"), "ip:2001:db8:1:2::/64");
        assert_eq!(rate_limit_key("192.0.2.1"), "ip:192.0.2.1");
        assert_eq!(rate_limit_key("::ffff:192.0.2.1"), "ip:192.0.2.1");
        assert_eq!(rate_limit_key("local"), "ip:local");
    }
}
