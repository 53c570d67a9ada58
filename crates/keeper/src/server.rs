//! Serving the HTTP API over HTTP/1.1 with bounds on what clients can hold: a deadline for a request's headers,
//! which also bounds how long a keep-alive connection may sit idle (hyper starts it whenever it waits for the next
//! request), a deadline for its body (see `http`), and caps on open connections in total and per client address
//! (IPv6 by /64, as the rate limits; a trusted proxy counts only against the total). A connection over a cap is
//! closed at once and logged, at most once a second, so a flood from one address cannot use up the keeper's file
//! descriptors. When every regular slot is taken (many clients at once), a small reserve of connections is still
//! served, one request each, by the monitoring routes only (`/health`, `/ready`, `/metrics`), so health checks get
//! in while the API is full. On shutdown the listener closes and open connections finish their request in flight
//! (for at most [`DRAIN`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::ConnectionLimits;
use crate::ratelimit::{self, Network};

/// How long open connections may finish their requests after a shutdown.
const DRAIN: Duration = Duration::from_secs(5);
/// A failed `accept` (out of file descriptors, typically) is retried after this pause.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// At most one "cap reached" log line per this interval.
const LOG_EVERY: Duration = Duration::from_secs(1);

/// Which cap refused a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cap {
    /// Every connection slot is taken.
    Total,
    /// The client's address holds its share.
    PerClient,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    reserve: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// The open connections, counted against the caps.
#[derive(Debug)]
pub struct Connections {
    limits: ConnectionLimits,
    trusted: Vec<Network>,
    counts: Mutex<Counts>,
}

/// A connection's place in [`Connections`], given back when dropped.
#[derive(Debug)]
pub struct Slot {
    connections: Arc<Connections>,
    client: Option<IpAddr>,
    /// Taken from the reserve: the connection is served the monitoring routes only, for one request.
    pub reserve: bool,
}

impl Connections {
    /// Counts connections against `limits`; peers in `trusted` (reverse proxies) only against the total.
    pub fn new(limits: ConnectionLimits, trusted: Vec<Network>) -> Arc<Self> {
        Arc::new(Self { limits, trusted, counts: Mutex::default() })
    }

    /// Connections beyond the total that are served the monitoring routes only.
    pub fn reserve(&self) -> usize {
        (self.limits.max / 32).clamp(8, 64)
    }

    /// A slot for a connection from `peer` (a reserve one when the regular slots are taken), or the cap that
    /// refuses it.
    pub fn open(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Cap> {
        let peer = peer.to_canonical();
        let client = (!self.trusted.iter().any(|n| n.contains(peer))).then(|| ratelimit::client_key(peer));
        // Counters only; a panicking holder cannot leave them half-updated.
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let reserve = counts.total >= self.limits.max;
        if reserve && counts.reserve >= self.reserve() {
            return Err(Cap::Total);
        }
        if let Some(client) = client {
            let held = counts.per_client.entry(client).or_default();
            if *held >= self.limits.per_client {
                return Err(Cap::PerClient);
            }
            *held += 1;
        }
        if reserve {
            counts.reserve += 1;
        } else {
            counts.total += 1;
        }
        Ok(Slot { connections: Arc::clone(self), client, reserve })
    }

    /// Connections open now.
    pub fn open_count(&self) -> usize {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).total
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.connections.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if self.reserve {
            counts.reserve = counts.reserve.saturating_sub(1);
        } else {
            counts.total = counts.total.saturating_sub(1);
        }
        if let Some(client) = self.client
            && let Some(held) = counts.per_client.get_mut(&client)
        {
            *held -= 1;
            if *held == 0 {
                counts.per_client.remove(&client);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` fires, within `connections`' caps and with `header_timeout` for
/// each request's headers; reserve connections get `monitoring` instead, one request each.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    monitoring: Router,
    connections: Arc<Connections>,
    header_timeout: Duration,
    mut shutdown: watch::Receiver<bool>,
) {
    let graceful = GracefulShutdown::new();
    let mut last_log: Option<Instant> = None;
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let slot = match connections.open(peer.ip()) {
            Ok(slot) => slot,
            Err(cap) => {
                if last_log.is_none_or(|at| at.elapsed() >= LOG_EVERY) {
                    last_log = Some(Instant::now());
                    let (open, limit) = match cap {
                        Cap::Total => (connections.open_count(), connections.limits.max),
                        Cap::PerClient => (connections.limits.per_client, connections.limits.per_client),
                    };
                    tracing::warn!(peer = %peer.ip(), cap = ?cap, open, limit, "connection cap reached; closing new connections");
                }
                drop(stream);
                continue;
            }
        };
        let routes = if slot.reserve { monitoring.clone() } else { app.clone() };
        let service = tower::ServiceExt::map_request(routes, move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            request
        });
        let connection = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .keep_alive(!slot.reserve)
            .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            // A client that goes away, or is cut off by a timeout, ends its connection; nothing to report.
            let _ = connection.await;
            drop(slot);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after the shutdown drain; closing them");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(max: usize, per_client: usize) -> ConnectionLimits {
        ConnectionLimits {
            header_timeout: Duration::from_secs(1),
            body_timeout: Duration::from_secs(1),
            max,
            per_client,
        }
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_client_gets_its_share_and_leaves_room_for_others() {
        let connections = Connections::new(limits(5, 2), vec![]);
        let mut held = Vec::new();
        for _ in 0..2 {
            held.extend(connections.open(ip("10.0.0.1")).ok());
        }
        assert_eq!(connections.open(ip("10.0.0.1")).err(), Some(Cap::PerClient));
        // One /64 is one client; IPv4-mapped addresses are the IPv4 client.
        held.extend(connections.open(ip("2001:db8::1")).ok());
        held.extend(connections.open(ip("2001:db8::2")).ok());
        assert_eq!(connections.open(ip("2001:db8::3")).err(), Some(Cap::PerClient));
        assert_eq!(connections.open(ip("::ffff:10.0.0.1")).err(), Some(Cap::PerClient));
        held.extend(connections.open(ip("10.0.0.2")).ok());
        assert_eq!(held.len(), 5);
        // Past the total, the reserve (8 here) serves monitoring only, then nothing.
        let reserve: Vec<_> =
            (0..8).filter_map(|i| connections.open(ip(&format!("10.1.0.{i}"))).ok()).collect();
        assert!(reserve.iter().all(|slot| slot.reserve) && reserve.len() == 8);
        assert_eq!(connections.open(ip("10.0.0.3")).err(), Some(Cap::Total));
        // Closing gives the slot back.
        held.truncate(4);
        assert_eq!(connections.open_count(), 4);
        assert!(connections.open(ip("10.0.0.3")).is_ok_and(|slot| !slot.reserve));
    }

    #[test]
    fn a_trusted_proxy_counts_only_against_the_total() {
        let proxy: Network = "10.9.0.0/16".parse().unwrap();
        let connections = Connections::new(limits(3, 1), vec![proxy]);
        let held: Vec<_> = (0..11).filter_map(|_| connections.open(ip("10.9.0.1")).ok()).collect();
        assert_eq!(held.iter().filter(|slot| !slot.reserve).count(), 3);
        assert_eq!(held.iter().filter(|slot| slot.reserve).count(), 8);
        assert_eq!(connections.open(ip("10.9.0.1")).err(), Some(Cap::Total));
    }
}
