//! Who a request counts against, pure: the client address of a request (from every line
//! of `X-Forwarded-For`, only when the peer is a trusted proxy) and the key its budgets are
//! counted under (an IPv6 client by its /64, which one host can fill). The counters
//! themselves are shared by every replica ([`crate::shared`]).

use std::net::{IpAddr, SocketAddr};

/// The address of a client that a trusted proxy named in a form that does not parse
/// (`unknown`, an obfuscated name): every such client shares this one budget, never the
/// proxy's own.
pub const UNPARSEABLE_CLIENT: IpAddr = IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED);

/// One `X-Forwarded-For` entry: an address, with or without a port (`[v6]:port`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    hop.parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

/// The client of a request: the peer, or, when the peer is a trusted proxy, the
/// right-most address of `X-Forwarded-For` that is not a trusted proxy, across every
/// line of the header (`lines`, in the order received: proxies may add a line rather
/// than extend one). Entries left of it were written by the client and are not believed.
/// An entry that does not parse is an untrusted client: [`UNPARSEABLE_CLIENT`].
pub fn client_ip(peer: SocketAddr, lines: &[&str], trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer_ip = peer.ip();
    if !is_trusted(&peer_ip) {
        return peer_ip;
    }
    let mut client = peer_ip;
    for hop in lines.iter().rev().flat_map(|line| line.rsplit(',')) {
        match parse_hop(hop) {
            Some(ip) if is_trusted(&ip) => client = ip,
            Some(ip) => return ip,
            None => return UNPARSEABLE_CLIENT,
        }
    }
    client
}

/// The key a client's budgets are counted under: an IPv4 address as it is, an IPv6
/// address by its /64 (one host is usually given a whole /64).
pub fn client_key(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                let prefix = std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0);
                format!("{prefix}/64")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_for_only_from_trusted_proxies() {
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let proxy: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let xff = ["1.2.3.4, 10.0.0.7"];
        assert_eq!(
            client_ip("9.9.9.9:1".parse().unwrap(), &xff, &trusted),
            ip("9.9.9.9")
        );
        assert_eq!(client_ip(proxy, &xff, &trusted), ip("1.2.3.4"));
        assert_eq!(client_ip(proxy, &[], &trusted), ip("10.0.0.1"));
        assert_eq!(client_ip(proxy, &["10.0.0.9"], &trusted), ip("10.0.0.9"));
        assert_eq!(
            client_ip(proxy, &["5.5.5.5, 6.6.6.6"], &trusted),
            ip("6.6.6.6"),
            "the client wrote 5.5.5.5"
        );
        assert_eq!(
            client_ip(proxy, &["garbage"], &trusted),
            UNPARSEABLE_CLIENT,
            "not the proxy's own address"
        );
        assert_eq!(client_ip(proxy, &["1.2.3.4:5678"], &trusted), ip("1.2.3.4"));
        assert_eq!(
            client_ip(proxy, &["[2001:db8::1]:443"], &trusted),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn every_header_line_counts_and_forged_lines_are_not_believed() {
        // As tried from outside: the client sends its own first line; the proxy adds a
        // second with the address it saw. The second line's address is the client.
        let trusted: Vec<ipnet::IpNet> = vec!["127.0.0.1/32".parse().unwrap()];
        let proxy: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for forged in ["203.0.113.1", "203.0.113.2, 127.0.0.1", "garbage"] {
            assert_eq!(
                client_ip(proxy, &[forged, "198.51.100.7"], &trusted),
                "198.51.100.7".parse::<IpAddr>().unwrap(),
                "{forged}"
            );
        }
    }

    #[test]
    fn ipv6_clients_count_by_their_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), "2001:db8:1:2::/64");
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
        assert_eq!(client_key("::ffff:10.0.0.1".parse().unwrap()), "10.0.0.1");
        assert_eq!(client_key("10.0.0.1".parse().unwrap()), "10.0.0.1");
    }
}
