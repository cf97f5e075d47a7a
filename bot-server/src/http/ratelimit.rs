//! Rate limiting, pure: fixed-window counters per key, and the client address of a
//! request (from `X-Forwarded-For` only when the peer is a trusted proxy).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Fixed-window counters.
#[derive(Debug, Default)]
pub struct Limiter {
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

impl Limiter {
    /// Counts one request of `key`; `Err(retry_after)` when over `limit` per `window`.
    pub fn check(
        &self,
        key: &str,
        limit: u32,
        window: Duration,
        now: Instant,
    ) -> Result<(), Duration> {
        let mut map = match self.windows.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if map.len() > 200_000 {
            map.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = map.entry(key.to_owned()).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            return Err(window
                .saturating_sub(now.duration_since(entry.0))
                .max(Duration::from_secs(1)));
        }
        entry.1 += 1;
        Ok(())
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_window() {
        let l = Limiter::default();
        let t = Instant::now();
        let w = Duration::from_secs(60);
        for _ in 0..3 {
            l.check("a", 3, w, t).unwrap();
        }
        let retry = l.check("a", 3, w, t + Duration::from_secs(10)).unwrap_err();
        assert_eq!(retry, Duration::from_secs(50));
        l.check("b", 3, w, t).unwrap();
        l.check("a", 3, w, t + w).unwrap();
    }

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
}
