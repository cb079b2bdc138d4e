//! What every connection of a server shares: the configuration, the rooms, the metrics, the
//! JWT keys, the task tracker and shutdown signal, and the per-IP connection slots.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tickwire_shared::ClientId;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::JwtKeys;
use crate::config::{GUEST_TOKEN_BURST, GUEST_TOKENS_PER_SEC, ServerConfig};
use crate::limiter::TokenBucket;
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
    ips: Mutex<HashMap<IpAddr, usize>>,
    next_client: AtomicU32,
    guest_buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
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

/// IPs whose guest-token budget is remembered at most; past it, the full buckets (IPs idle
/// long enough to have their whole burst back) are forgotten, and if none is, every bucket is:
/// memory stays bounded under a flood from many addresses.
pub const MAX_GUEST_BUCKETS: usize = 16_384;

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
            ips: Mutex::new(HashMap::new()),
            next_client: AtomicU32::new(1),
            guest_buckets: Mutex::new(HashMap::new()),
            pending: Mutex::new((0, HashMap::new())),
        }
    }

    /// Takes one guest token from `ip`'s budget ([`GUEST_TOKEN_BURST`], then
    /// [`GUEST_TOKENS_PER_SEC`]); false when it is spent.
    pub fn take_guest_token(&self, ip: IpAddr) -> bool {
        let now = Instant::now();
        let mut buckets =
            self.guest_buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() >= MAX_GUEST_BUCKETS && !buckets.contains_key(&ip) {
            buckets.retain(|_, b| !b.is_full(now));
            if buckets.len() >= MAX_GUEST_BUCKETS {
                buckets.clear();
            }
        }
        buckets
            .entry(ip)
            .or_insert_with(|| TokenBucket::new(GUEST_TOKENS_PER_SEC, GUEST_TOKEN_BURST, now))
            .take(1.0, now)
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
