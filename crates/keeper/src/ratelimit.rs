//! Intake rate limiting: a token bucket per client and one for the whole keeper.
//!
//! Clients are told apart by IP address, IPv6 clients by their /64 network (which one host usually holds
//! whole, so rotating addresses inside it gains nothing). Behind reverse proxies listed in `trusted_proxies`
//! (addresses or networks), the client is the rightmost `X-Forwarded-For` address that is not itself a trusted
//! proxy; the header of an untrusted peer is ignored, so a client cannot pick its own bucket. IPv4-mapped IPv6
//! addresses (what a dual-stack listener sees) count as the IPv4 address.
//!
//! A request first spends from its client's bucket and only then from the keeper's, so a client over its own
//! rate never uses the shared budget and one flooding client cannot starve the others. At most `max_clients`
//! buckets are kept: when the table is full, buckets that have refilled (clients idle long enough, which a
//! fresh bucket equals) are dropped; if every tracked client is still active, new clients wait.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// An address or a network (`10.0.0.0/8`, `fd00::/8`); host bits below the prefix are ignored.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Network {
    base: IpAddr,
    prefix: u8,
}

impl Network {
    /// Whether `ip` lies in the network (IPv4-mapped IPv6 addresses as their IPv4 address).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, ip.to_canonical()) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(base) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(base) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for Network {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let written =
            address.parse::<IpAddr>().map_err(|_| format!("{text:?} is not an IP address or network"))?;
        let bits = if written.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(prefix) => Some(prefix)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse::<u8>().ok())
                .filter(|p| *p <= bits)
                .ok_or_else(|| format!("{text:?}: the prefix length must be 0..={bits}"))?,
        };
        // An IPv4-mapped network (::ffff:10.0.0.0/104) is the IPv4 network it maps (10.0.0.0/8).
        let base = written.to_canonical();
        let prefix = if base.is_ipv4() && written.is_ipv6() { prefix.saturating_sub(96) } else { prefix };
        Ok(Self { base, prefix })
    }
}

impl TryFrom<String> for Network {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        text.parse()
    }
}

/// A token bucket's shape: `per_sec` requests per second, up to `burst` at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rate {
    /// Refill rate (at least 1).
    pub per_sec: u32,
    /// Size (at least 1).
    pub burst: u32,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: Rate, now: Instant) -> Self {
        Self { tokens: f64::from(rate.burst), at: now }
    }

    fn refill(&mut self, rate: Rate, now: Instant) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * f64::from(rate.per_sec);
        self.tokens = (self.tokens + earned).min(f64::from(rate.burst));
        self.at = self.at.max(now);
    }

    /// Takes a token, or says how long until one is there.
    fn take(&mut self, rate: Rate, now: Instant) -> Result<(), Duration> {
        self.refill(rate, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / f64::from(rate.per_sec)))
        }
    }

    fn is_full(&mut self, rate: Rate, now: Instant) -> bool {
        self.refill(rate, now);
        self.tokens >= f64::from(rate.burst)
    }
}

/// Whose budget a refused request exceeded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The client's own rate.
    Client,
    /// The keeper-wide rate, or every client slot is held by an active client.
    Keeper,
}

/// A refused request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// Which limit.
    pub scope: Scope,
    /// When the client may try again.
    pub retry_after: Duration,
}

impl Refusal {
    /// `retry_after` in whole seconds, rounded up and at least 1 (the `Retry-After` header's unit).
    pub fn retry_after_secs(&self) -> u64 {
        let secs = self.retry_after.as_secs() + u64::from(self.retry_after.subsec_nanos() > 0);
        secs.max(1)
    }
}

/// Per-client and keeper-wide token buckets.
#[derive(Debug)]
pub struct RateLimiter {
    client_rate: Rate,
    keeper_rate: Rate,
    max_clients: usize,
    keeper: Bucket,
    clients: HashMap<IpAddr, Bucket>,
}

impl RateLimiter {
    /// Full buckets: each client may send `client_rate.burst` requests at once, all clients together
    /// `keeper_rate.burst`; at most `max_clients` (at least 1) clients are tracked at a time.
    pub fn new(client_rate: Rate, keeper_rate: Rate, max_clients: usize, now: Instant) -> Self {
        Self {
            client_rate,
            keeper_rate,
            max_clients: max_clients.max(1),
            keeper: Bucket::full(keeper_rate, now),
            clients: HashMap::new(),
        }
    }

    /// Spends a token of `client`'s bucket and one of the keeper's, or neither.
    pub fn check(&mut self, client: IpAddr, now: Instant) -> Result<(), Refusal> {
        let key = client_key(client);
        if !self.clients.contains_key(&key) && self.clients.len() >= self.max_clients {
            let rate = self.client_rate;
            self.clients.retain(|_, bucket| !bucket.is_full(rate, now));
            if self.clients.len() >= self.max_clients {
                // The soonest any tracked bucket is full again bounds the wait.
                let refill = f64::from(rate.burst) / f64::from(rate.per_sec);
                let retry_after = Duration::from_secs_f64(refill);
                return Err(Refusal { scope: Scope::Keeper, retry_after });
            }
        }
        let rate = self.client_rate;
        let bucket = self.clients.entry(key).or_insert_with(|| Bucket::full(rate, now));
        bucket.take(rate, now).map_err(|retry_after| Refusal { scope: Scope::Client, retry_after })?;
        if let Err(retry_after) = self.keeper.take(self.keeper_rate, now) {
            // Not served, so not charged to the client either.
            bucket.tokens += 1.0;
            return Err(Refusal { scope: Scope::Keeper, retry_after });
        }
        Ok(())
    }

    /// How many clients have a bucket now.
    pub fn tracked_clients(&self) -> usize {
        self.clients.len()
    }
}

/// The bucket key of an address: IPv4 addresses (also when IPv4-mapped) as they are, IPv6 by their /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !u128::from(u64::MAX))),
        },
    }
}

/// The client a request comes from: the TCP peer, or, when the peer is a trusted proxy, the rightmost
/// `X-Forwarded-For` address (over all such headers, in order) that is not a trusted proxy. An entry that is
/// not an address (with or without a port) ends the walk at the peer, which then stands for the client.
pub fn client_ip<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    trusted_proxies: &[Network],
) -> IpAddr {
    let peer = peer.to_canonical();
    let trusted = |ip: IpAddr| trusted_proxies.iter().any(|network| network.contains(ip));
    if !trusted(peer) {
        return peer;
    }
    for header in forwarded_for.rev() {
        for entry in header.rsplit(',') {
            let entry = entry.trim();
            let Some(ip) =
                entry.parse::<IpAddr>().ok().or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
            else {
                return peer;
            };
            let ip = ip.to_canonical();
            if !trusted(ip) {
                return ip;
            }
        }
    }
    peer
}

#[cfg(test)]
mod tests {
    use super::*;

    const CLIENT: Rate = Rate { per_sec: 5, burst: 10 };
    const KEEPER: Rate = Rate { per_sec: 20, burst: 25 };

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn net(s: &str) -> Network {
        s.parse().unwrap()
    }

    fn served(limiter: &mut RateLimiter, client: &str, count: usize, now: Instant) -> usize {
        (0..count).filter(|_| limiter.check(ip(client), now).is_ok()).count()
    }

    #[test]
    fn a_flooding_client_gets_its_burst_and_the_others_keep_theirs() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(CLIENT, KEEPER, 100, t0);
        assert_eq!(served(&mut limiter, "10.0.0.1", 1000, t0), 10);
        // The flood's 990 refused requests spent nothing of the keeper's budget: 15 of 25 are left.
        assert_eq!(served(&mut limiter, "10.0.0.2", 10, t0), 10);
        assert_eq!(served(&mut limiter, "10.0.0.3", 10, t0), 5);
        let refusal = limiter.check(ip("10.0.0.1"), t0).unwrap_err();
        assert_eq!(refusal.scope, Scope::Client);
        assert_eq!(refusal.retry_after, Duration::from_millis(200));
        assert_eq!(limiter.check(ip("10.0.0.4"), t0).unwrap_err().scope, Scope::Keeper);
    }

    #[test]
    fn buckets_refill_at_their_rate_up_to_the_burst() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(CLIENT, KEEPER, 100, t0);
        assert_eq!(served(&mut limiter, "10.0.0.1", 20, t0), 10);
        let t1 = t0 + Duration::from_millis(600);
        assert_eq!(served(&mut limiter, "10.0.0.1", 20, t1), 3);
        // A long pause refills to the burst, not beyond.
        let t2 = t1 + Duration::from_secs(3600);
        assert_eq!(served(&mut limiter, "10.0.0.1", 20, t2), 10);
    }

    #[test]
    fn a_request_refused_by_the_keeper_budget_is_not_charged_to_the_client() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(CLIENT, Rate { per_sec: 1, burst: 3 }, 100, t0);
        assert_eq!(served(&mut limiter, "10.0.0.1", 3, t0), 3);
        // Twenty refusals, all the keeper's: had each cost client 2 a token, its burst of 10 would have run
        // out and the later ones would be its own.
        for _ in 0..20 {
            let refusal = limiter.check(ip("10.0.0.2"), t0).unwrap_err();
            assert_eq!((refusal.scope, refusal.retry_after_secs()), (Scope::Keeper, 1));
        }
        let t1 = t0 + Duration::from_secs(3);
        assert_eq!(served(&mut limiter, "10.0.0.2", 20, t1), 3);
    }

    #[test]
    fn a_full_client_table_drops_idle_clients_and_keeps_active_ones() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(CLIENT, Rate { per_sec: 1000, burst: 1000 }, 2, t0);
        assert!(limiter.check(ip("10.0.0.1"), t0).is_ok());
        assert!(limiter.check(ip("10.0.0.2"), t0).is_ok());
        // Both tracked clients are below their burst: a third waits until one has refilled.
        let refusal = limiter.check(ip("10.0.0.3"), t0).unwrap_err();
        assert_eq!((refusal.scope, refusal.retry_after_secs()), (Scope::Keeper, 2));
        assert_eq!(limiter.tracked_clients(), 2);
        // 0.2 s later both have refilled (1 token at 5/s): they are dropped and the newcomer is tracked.
        let t1 = t0 + Duration::from_millis(200);
        assert!(limiter.check(ip("10.0.0.3"), t1).is_ok());
        assert_eq!(limiter.tracked_clients(), 1);
        // A dropped client comes back with a full bucket, as if it had been kept.
        assert_eq!(served(&mut limiter, "10.0.0.1", 20, t1), 10);
    }

    #[test]
    fn ipv6_addresses_in_one_64_share_a_bucket() {
        let t0 = Instant::now();
        let mut limiter = RateLimiter::new(CLIENT, Rate { per_sec: 1000, burst: 1000 }, 100, t0);
        let same_64 =
            (0..20).filter(|i| limiter.check(ip(&format!("2001:db8:1:2::{i:x}")), t0).is_ok()).count();
        assert_eq!(same_64, 10);
        assert!(limiter.check(ip("2001:db8:1:3::1"), t0).is_ok(), "another /64 is another client");
        assert_eq!(client_key(ip("::ffff:10.1.2.3")), ip("10.1.2.3"));
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa:bbbb:cccc:dddd")), ip("2001:db8:1:2::"));
    }

    #[test]
    fn forwarded_for_from_an_untrusted_peer_is_ignored() {
        let trusted = [net("10.0.0.9")];
        assert_eq!(client_ip(ip("192.0.2.7"), ["203.0.113.5"].into_iter(), &trusted), ip("192.0.2.7"));
        assert_eq!(client_ip(ip("192.0.2.7"), ["203.0.113.5"].into_iter(), &[]), ip("192.0.2.7"));
    }

    #[test]
    fn behind_trusted_proxies_the_rightmost_untrusted_forwarded_address_is_the_client() {
        let trusted = [net("10.0.0.9"), net("10.0.0.8")];
        let peer = ip("10.0.0.9");
        // A client-supplied leftmost entry cannot override what the proxies appended.
        let chain = ["1.1.1.1, 203.0.113.5, 10.0.0.8"];
        assert_eq!(client_ip(peer, chain.into_iter(), &trusted), ip("203.0.113.5"));
        // Several headers read as one list in order; ports and IPv6 are understood.
        let headers = ["1.1.1.1", "[2001:db8::5]:4711"];
        assert_eq!(client_ip(peer, headers.into_iter(), &trusted), ip("2001:db8::5"));
        assert_eq!(client_ip(peer, ["198.51.100.1:80"].into_iter(), &trusted), ip("198.51.100.1"));
        // No header, only proxies, or garbage: the proxy itself is the client.
        assert_eq!(client_ip(peer, std::iter::empty(), &trusted), peer);
        assert_eq!(client_ip(peer, ["10.0.0.8"].into_iter(), &trusted), peer);
        assert_eq!(client_ip(peer, ["1.1.1.1, unknown"].into_iter(), &trusted), peer);
    }

    #[test]
    fn trusted_proxies_may_be_networks_and_dual_stack_peers_count_as_ipv4() {
        let trusted = [net("10.1.0.0/16"), net("fd00::/8")];
        assert_eq!(client_ip(ip("10.1.200.3"), ["198.51.100.1"].into_iter(), &trusted), ip("198.51.100.1"));
        assert_eq!(client_ip(ip("10.2.0.1"), ["198.51.100.1"].into_iter(), &trusted), ip("10.2.0.1"));
        assert_eq!(client_ip(ip("fd12::1"), ["2001:db8::7"].into_iter(), &trusted), ip("2001:db8::7"));
        // A dual-stack listener sees IPv4 peers as ::ffff:a.b.c.d.
        assert_eq!(
            client_ip(ip("::ffff:10.1.0.1"), ["::ffff:198.51.100.2"].into_iter(), &trusted),
            ip("198.51.100.2")
        );
        assert_eq!(
            client_ip(ip("::ffff:192.0.2.1"), ["198.51.100.2"].into_iter(), &trusted),
            ip("192.0.2.1")
        );
        // Host bits below the prefix are ignored; /0 trusts everything of the family.
        assert!(net("10.1.2.3/16").contains(ip("10.1.99.99")));
        assert!(net("0.0.0.0/0").contains(ip("203.0.113.1")));
        assert!(!net("0.0.0.0/0").contains(ip("2001:db8::1")));
        assert!(net("::ffff:10.0.0.1").contains(ip("10.0.0.1")));
        assert!(net("::ffff:10.0.0.0/104").contains(ip("10.200.0.1")));
        assert!(!net("::ffff:10.0.0.0/104").contains(ip("11.0.0.1")));
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "10.0.0/8",
            "localhost",
            "10.0.0.0/x",
            "10.0.0.0/+8",
            "10.0.0.0/",
            "",
        ] {
            assert!(bad.parse::<Network>().is_err(), "{bad}");
        }
    }
}
