//! Bounds on connections, so a flood of half-open or idle connections cannot exhaust
//! memory or file handles: at most [`Limits::connections`] open at once (each holds a
//! permit for its whole life), at most [`Limits::handshakes`] TLS handshakes under way,
//! of which at most [`Limits::handshakes_per_client`] from one client address, and a
//! handshake that does not finish within [`Limits::handshake_timeout`] is dropped. A
//! connection over a bound is closed at once, before any work.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The bounds.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Connections open at once (handshaking or established).
    pub connections: usize,
    /// TLS handshakes under way at once.
    pub handshakes: usize,
    /// TLS handshakes under way at once from one client address.
    pub handshakes_per_client: u32,
    /// Time a client has to finish its TLS handshake.
    pub handshake_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connections: 4096,
            handshakes: 256,
            handshakes_per_client: 16,
            handshake_timeout: Duration::from_secs(10),
        }
    }
}

/// Hands out permits within the [`Limits`].
#[derive(Debug, Clone)]
pub struct Gate {
    limits: Limits,
    connections: Arc<Semaphore>,
    handshakes: Arc<Semaphore>,
    per_client: Arc<Mutex<HashMap<IpAddr, u32>>>,
    trusted: Arc<Vec<ipnet::IpNet>>,
}

/// A handshake slot; freed when dropped.
#[derive(Debug)]
pub struct HandshakeSlot {
    _permit: OwnedSemaphorePermit,
    client: IpAddr,
    per_client: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut map = match self.per_client.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        if let Some(n) = map.get_mut(&self.client) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                map.remove(&self.client);
            }
        }
    }
}

impl Gate {
    /// A gate with these bounds. Connections from `trusted` proxies (an ingress
    /// controller carries many clients) are not held to the per-client bound.
    pub fn new(limits: Limits, trusted: Vec<ipnet::IpNet>) -> Self {
        Self {
            limits,
            connections: Arc::new(Semaphore::new(limits.connections.max(1))),
            handshakes: Arc::new(Semaphore::new(limits.handshakes.max(1))),
            per_client: Arc::default(),
            trusted: Arc::new(trusted),
        }
    }

    /// The bounds.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// A permit for one more open connection, if within the bound.
    pub fn connection(&self) -> Option<OwnedSemaphorePermit> {
        self.connections.clone().try_acquire_owned().ok()
    }

    /// A slot for one more handshake from `client`, if within both bounds.
    pub fn handshake(&self, client: IpAddr) -> Option<HandshakeSlot> {
        let mut map = match self.per_client.lock() {
            Ok(m) => m,
            Err(p) => p.into_inner(),
        };
        let proxy = self.trusted.iter().any(|n| n.contains(&client));
        let n = map.entry(client).or_insert(0);
        if *n >= self.limits.handshakes_per_client && !proxy {
            return None;
        }
        let permit = self.handshakes.clone().try_acquire_owned().ok()?;
        *n += 1;
        Some(HandshakeSlot {
            _permit: permit,
            client,
            per_client: self.per_client.clone(),
        })
    }
}

/// A stream that holds its connection permit until it is dropped.
#[derive(Debug)]
pub struct Counted<S> {
    inner: S,
    _permit: OwnedSemaphorePermit,
}

impl<S> Counted<S> {
    /// Wraps `inner`, holding `permit`.
    pub fn new(inner: S, permit: OwnedSemaphorePermit) -> Self {
        Self {
            inner,
            _permit: permit,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Counted<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Counted<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshakes_are_bounded_per_client_and_in_all() {
        let proxy: IpAddr = [10, 9, 0, 1].into();
        let gate = Gate::new(
            Limits {
                connections: 10,
                handshakes: 4,
                handshakes_per_client: 2,
                handshake_timeout: Duration::from_secs(1),
            },
            vec!["10.9.0.0/16".parse().unwrap()],
        );
        let p: Vec<_> = (0..3).map(|_| gate.handshake(proxy).unwrap()).collect();
        assert_eq!(p.len(), 3, "a trusted proxy carries many clients");
        drop(p);
        let a: IpAddr = [10, 0, 0, 1].into();
        let b: IpAddr = [10, 0, 0, 2].into();
        let a1 = gate.handshake(a).unwrap();
        let _a2 = gate.handshake(a).unwrap();
        assert!(gate.handshake(a).is_none(), "two per client");
        let _b1 = gate.handshake(b).unwrap();
        let _b2 = gate.handshake(b).unwrap();
        assert!(gate.handshake(proxy).is_none(), "four in all");
        drop(a1);
        assert!(gate.handshake(proxy).is_some(), "a freed slot is reused");
        let permits: Vec<_> = (0..10).map(|_| gate.connection().unwrap()).collect();
        assert!(gate.connection().is_none(), "ten connections in all");
        drop(permits);
        assert!(gate.connection().is_some());
    }
}
