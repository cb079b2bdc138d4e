//! What every connection of a server shares: the configuration, the rooms, the metrics, the
//! JWT keys, the task tracker and shutdown signal, and the per-IP connection slots.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use governor::{DefaultKeyedRateLimiter, RateLimiter};
use tickwire_shared::ClientId;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::JwtKeys;
use crate::config::{GUEST_TOKEN_BURST, GUEST_TOKENS_PER_SEC, ServerConfig, quota};
use crate::metrics::Metrics;
use crate::rooms::Rooms;

/// State shared by every connection.
pub struct AppState {
    /// The configuration.
    pub config: ServerConfig,
    /// The rooms.
    pub rooms: Rooms,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// JWT keys.
    pub keys: JwtKeys,
    /// Tracks connection and session tasks for shutdown.
    pub tracker: TaskTracker,
    /// Cancelled when shutdown begins.
    pub shutdown: CancellationToken,
    /// SHA-256 of the DER certificate the server presents when TLS is on (`--dev-cert` or
    /// `--tls-cert`); `None` on plain HTTP. A browser accepts a short-lived self-signed
    /// certificate by this hash.
    pub tls_cert_sha256: Option<[u8; 32]>,
    /// The DER certificate the server presents when TLS is on.
    pub tls_certificate: Option<rustls::pki_types::CertificateDer<'static>>,
    /// The WebTransport endpoint, when there is one (`GET /api/transport`).
    pub webtransport: Option<crate::quic::WebTransportInfo>,
    /// Membership of a cluster (`--redis`); `None` for a process on its own.
    pub cluster: Option<Arc<crate::cluster::Cluster>>,
    /// The lobby and player presence.
    pub messaging: crate::messaging::Messaging,
    ips: Mutex<HashMap<IpAddr, usize>>,
    next_client: AtomicU32,
    guest_tokens: GuestLimiter,
    /// Connections not yet upgraded (or closed): in all, and by IP.
    pending: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

/// Connections waiting for their handshake (accepted, not yet upgraded) at most, over all IPs:
/// bounds what a slowloris from many addresses can hold.
pub const MAX_PENDING_CONNECTIONS: usize = 1024;

/// Connections waiting for their handshake from one IP at most: far more than a page or a
/// bots run opens at once, far fewer than a flood.
pub const MAX_PENDING_PER_IP: usize = 64;

/// One connection's pre-handshake slot (see [`MAX_PENDING_CONNECTIONS`],
/// [`MAX_PENDING_PER_IP`]); released on drop.
pub struct PendingGuard {
    state: Arc<AppState>,
    ip: IpAddr,
}

impl PendingGuard {
    /// A slot for a connection from `ip`, or `None` when the caps are reached.
    pub fn acquire(state: &Arc<AppState>, ip: IpAddr) -> Option<PendingGuard> {
        let mut pending = state.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (total, by_ip) = &mut *pending;
        let n = by_ip.entry(ip).or_insert(0);
        if *total >= MAX_PENDING_CONNECTIONS || *n >= MAX_PENDING_PER_IP {
            if *n == 0 {
                by_ip.remove(&ip);
            }
            return None;
        }
        *n += 1;
        *total += 1;
        Some(PendingGuard { state: state.clone(), ip })
    }
}

impl Drop for PendingGuard {
    fn drop(&mut self) {
        let mut pending =
            self.state.pending.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (total, by_ip) = &mut *pending;
        *total = total.saturating_sub(1);
        if let Some(n) = by_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                by_ip.remove(&self.ip);
            }
        }
    }
}

/// IPs whose guest-token budget is remembered at most (see [`GuestLimiter`]).
pub const MAX_GUEST_BUCKETS: usize = 16_384;

/// The guest-token budgets by IP ([`GUEST_TOKEN_BURST`], then [`GUEST_TOKENS_PER_SEC`]): a
/// [`governor`] limiter keyed by address, with its memory bounded.
///
/// A keyed limiter remembers every address it has seen until told to forget. So when it holds
/// `cap` addresses, the ones whose budget is whole again (idle long enough to be no different
/// from a newcomer) are dropped (`retain_recent`) and the map shrunk; if that does not free at
/// least half (a flood from more than `cap / 2` addresses within a burst's refill time), every
/// budget is forgotten: the flood gets fresh budgets, but memory stays bounded, which matters
/// more. Each sweep frees at least half of the map, so its cost is spread over that many
/// requests.
pub struct GuestLimiter {
    limiter: Mutex<DefaultKeyedRateLimiter<IpAddr>>,
    cap: usize,
}

impl GuestLimiter {
    /// Budgets for at most `cap` addresses.
    #[must_use]
    pub fn new(cap: usize) -> GuestLimiter {
        GuestLimiter { limiter: Mutex::new(Self::fresh()), cap }
    }

    fn fresh() -> DefaultKeyedRateLimiter<IpAddr> {
        RateLimiter::keyed(quota(GUEST_TOKENS_PER_SEC, GUEST_TOKEN_BURST))
    }

    /// Takes one guest token from `ip`'s budget; false when it is spent.
    pub fn take(&self, ip: IpAddr) -> bool {
        let mut limiter = self.limiter.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if limiter.len() >= self.cap {
            limiter.retain_recent();
            limiter.shrink_to_fit();
            if limiter.len() > self.cap / 2 {
                *limiter = Self::fresh();
            }
        }
        limiter.check_key(&ip).is_ok()
    }

    /// Addresses whose budget is remembered now.
    #[must_use]
    pub fn remembered(&self) -> usize {
        self.limiter.lock().unwrap_or_else(std::sync::PoisonError::into_inner).len()
    }
}

impl AppState {
    /// The state of a server with `config`.
    #[must_use]
    pub fn new(
        config: ServerConfig,
        rooms: Rooms,
        metrics: Arc<Metrics>,
        keys: JwtKeys,
    ) -> AppState {
        AppState {
            config,
            rooms,
            metrics,
            keys,
            tracker: TaskTracker::new(),
            shutdown: CancellationToken::new(),
            tls_cert_sha256: None,
            tls_certificate: None,
            webtransport: None,
            cluster: None,
            messaging: crate::messaging::Messaging::default(),
            ips: Mutex::new(HashMap::new()),
            next_client: AtomicU32::new(1),
            guest_tokens: GuestLimiter::new(MAX_GUEST_BUCKETS),
            pending: Mutex::new((0, HashMap::new())),
        }
    }

    /// Takes one guest token from `ip`'s budget ([`GUEST_TOKEN_BURST`], then
    /// [`GUEST_TOKENS_PER_SEC`]); false when it is spent.
    pub fn take_guest_token(&self, ip: IpAddr) -> bool {
        self.guest_tokens.take(ip)
    }

    /// A fresh client id, unique in this process.
    pub fn next_client(&self) -> ClientId {
        ClientId(self.next_client.fetch_add(1, Ordering::Relaxed))
    }
}

/// Holds one of an IP's connection slots; released on drop.
pub struct IpGuard {
    state: Arc<AppState>,
    ip: IpAddr,
}

impl IpGuard {
    /// Takes a slot for `ip`, or `None` at the per-IP limit.
    pub fn acquire(state: &Arc<AppState>, ip: IpAddr) -> Option<IpGuard> {
        let mut ips = state.ips.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = ips.entry(ip).or_insert(0);
        if *n >= state.config.limits.max_connections_per_ip {
            return None;
        }
        *n += 1;
        Some(IpGuard { state: state.clone(), ip })
    }
}

impl Drop for IpGuard {
    fn drop(&mut self) {
        let mut ips = self.state.ips.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = ips.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                ips.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn guest_budgets_are_per_ip() {
        let guests = GuestLimiter::new(MAX_GUEST_BUCKETS);
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let burst = GUEST_TOKEN_BURST as usize;
        assert_eq!((0..burst + 10).filter(|_| guests.take(a)).count(), burst);
        assert!(guests.take(b), "one address's flood spends only its own budget");
    }

    #[test]
    fn guest_budgets_stay_bounded_under_a_flood_of_addresses() {
        let cap = 1_000;
        let guests = GuestLimiter::new(cap);
        for i in 0..10 * cap as u32 {
            assert!(guests.take(IpAddr::from(Ipv4Addr::from(i))), "a new address gets a token");
            assert!(guests.remembered() <= cap, "{} addresses remembered", guests.remembered());
        }
        // A spent budget is kept while the map has room.
        let guests = GuestLimiter::new(cap);
        let a = IpAddr::from([10, 0, 0, 1]);
        while guests.take(a) {}
        for i in 1..(cap / 2) as u32 {
            guests.take(IpAddr::from(Ipv4Addr::from(i)));
        }
        assert!(!guests.take(a));
    }
}
