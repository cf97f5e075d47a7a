//! Who a request counts against, pure: the client address of a request (from
//! `X-Forwarded-For` only when the peer is a trusted proxy) and the key its budgets are
//! counted under (an IPv6 client by its /64, which one host can fill). The counters
//! themselves are shared by every replica ([`crate::shared`]).

use std::net::{IpAddr, SocketAddr};

/// The client of a request: the peer, or the right-most untrusted address of
/// `X-Forwarded-For` when the peer is a trusted proxy.
pub fn client_ip(
    peer: SocketAddr,
    forwarded_for: Option<&str>,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    let peer_ip = peer.ip();
    if !is_trusted(&peer_ip) {
        return peer_ip;
    }
    let Some(xff) = forwarded_for else {
        return peer_ip;
    };
    let mut client = peer_ip;
    for hop in xff.rsplit(',') {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            Err(_) => break,
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
        let xff = Some("1.2.3.4, 10.0.0.7");
        assert_eq!(
            client_ip("9.9.9.9:1".parse().unwrap(), xff, &trusted),
            "9.9.9.9".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip("10.0.0.1:1".parse().unwrap(), xff, &trusted),
            "1.2.3.4".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip("10.0.0.1:1".parse().unwrap(), Some("garbage"), &trusted),
            "10.0.0.1".parse::<IpAddr>().unwrap()
        );
        assert_eq!(
            client_ip(
                "10.0.0.1:1".parse().unwrap(),
                Some("5.5.5.5, 6.6.6.6"),
                &trusted
            ),
            "6.6.6.6".parse::<IpAddr>().unwrap()
        );
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
