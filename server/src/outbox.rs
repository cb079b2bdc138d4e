//! The room → session queue of one client. Snapshots are latest-wins (a newer one replaces an
//! unsent older one); reliable messages (welcome, chat, events, pongs) queue up to a bound, and a
//! client that lets that bound fill is too slow and is closed. The room thread only ever pushes
//! (never waits), so a slow client cannot stall the tick.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use tickwire_shared::protocol::DisconnectReason;
use tokio::sync::Notify;

/// What a session should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutItem {
    /// Send these bytes (a reliable message).
    Send(Bytes),
    /// Send this snapshot.
    Snapshot {
        /// The encoded message.
        bytes: Bytes,
        /// When each input whose effect it is the first to carry reached the server (at most
        /// [`MAX_TRACKED_ARRIVALS`]), for the input-to-snapshot latency metric.
        input_arrivals: Vec<Instant>,
    },
    /// Close with this reason (the `Disconnect` message was queued before it, when possible).
    Close(DisconnectReason, String),
    /// Drop the connection at once, with no message and no close frame (a simulated network
    /// failure, for tests).
    Abort,
}

#[derive(Default)]
struct Inner {
    snapshot: Option<(Bytes, Vec<Instant>)>,
    /// Snapshots replaced in a row, unsent: how far the client has fallen behind.
    behind: u32,
    reliable: VecDeque<Bytes>,
    close: Option<(DisconnectReason, String)>,
    abort: bool,
}

/// Input arrival times kept per queued snapshot; beyond it (a client not reading while its
/// snapshots are replaced) the newest are not measured, so the list stays bounded.
pub const MAX_TRACKED_ARRIVALS: usize = 16;

/// Reliable-queue slots kept once the queue drains; a larger queue is released.
const IDLE_RELIABLE_CAPACITY: usize = 8;

/// One client's outbound queue, shared by the room (producer) and the session (consumer).
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    max_reliable: usize,
    /// What the session's link carried (the live inspector reads it through the room).
    pub stats: LinkStats,
}

/// What a session's link carried, for the live inspector: the session writes it, its room
/// reads it.
#[derive(Debug)]
pub struct LinkStats {
    /// Payload bytes received.
    pub bytes_in: AtomicU64,
    /// Payload bytes sent.
    pub bytes_out: AtomicU64,
    born: Instant,
    /// When the heartbeat probe awaiting its answer went out (µs since `born`; 0: none).
    ping_sent_us: AtomicU64,
    /// The newest heartbeat round trip, µs (0: none measured yet).
    pub rtt_us: AtomicU64,
    /// The transport's name (`websocket`, `webtransport`; empty: an in-process driver's).
    pub transport: &'static str,
}

impl LinkStats {
    fn new() -> LinkStats {
        LinkStats {
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            born: Instant::now(),
            ping_sent_us: AtomicU64::new(0),
            rtt_us: AtomicU64::new(0),
            transport: "",
        }
    }

    fn now_us(&self) -> u64 {
        u64::try_from(self.born.elapsed().as_micros()).unwrap_or(u64::MAX).max(1)
    }

    /// The session sent a heartbeat probe (a WebSocket ping).
    pub fn ping_sent(&self) {
        self.ping_sent_us.store(self.now_us(), Ordering::Relaxed);
    }

    /// The peer answered something at the transport level (a pong): the round trip since the
    /// probe, if one was waiting.
    pub fn alive(&self) {
        let sent = self.ping_sent_us.swap(0, Ordering::Relaxed);
        if sent != 0 {
            self.rtt_us.store(self.now_us().saturating_sub(sent), Ordering::Relaxed);
        }
    }
}

/// The reliable queue is full: the client is too slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxFull;

impl Outbox {
    /// An empty outbox holding at most `max_reliable` reliable messages.
    #[must_use]
    pub fn new(max_reliable: usize) -> Outbox {
        Outbox {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            max_reliable,
            stats: LinkStats::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the queue inconsistent: recover it.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a snapshot, replacing an unsent one. Returns whether one was replaced.
    ///
    /// `input_arrivals` are when the inputs first reflected in this snapshot arrived; a replaced
    /// snapshot's arrivals carry over (its inputs are reflected here too), up to
    /// [`MAX_TRACKED_ARRIVALS`].
    pub fn push_snapshot(&self, bytes: Bytes, mut input_arrivals: Vec<Instant>) -> bool {
        let mut inner = self.lock();
        if inner.close.is_some() {
            return false;
        }
        let replaced = match inner.snapshot.take() {
            Some((_, mut earlier)) => {
                earlier.append(&mut input_arrivals);
                input_arrivals = earlier;
                inner.behind += 1;
                true
            }
            None => false,
        };
        input_arrivals.truncate(MAX_TRACKED_ARRIVALS);
        inner.snapshot = Some((bytes, input_arrivals));
        drop(inner);
        self.notify.notify_one();
        replaced
    }

    /// Snapshots replaced in a row before the session could send one: how far behind the
    /// client is.
    #[must_use]
    pub fn snapshots_behind(&self) -> u32 {
        self.lock().behind
    }

    /// Queues a reliable message.
    pub fn push_reliable(&self, bytes: Bytes) -> Result<(), OutboxFull> {
        let mut inner = self.lock();
        if inner.close.is_some() {
            return Ok(());
        }
        if inner.reliable.len() >= self.max_reliable {
            return Err(OutboxFull);
        }
        inner.reliable.push_back(bytes);
        drop(inner);
        self.notify.notify_one();
        Ok(())
    }

    /// Asks the session to close; the first reason wins. Reliable messages already queued are
    /// still sent first, except for [`DisconnectReason::TooSlow`], where they are what overflowed.
    pub fn close(&self, reason: DisconnectReason, message: impl Into<String>) {
        let mut inner = self.lock();
        if inner.close.is_some() {
            return;
        }
        if reason == DisconnectReason::TooSlow {
            inner.reliable.clear();
        }
        inner.snapshot = None;
        inner.close = Some((reason, message.into()));
        drop(inner);
        self.notify.notify_one();
    }

    /// Asks the session to drop the connection without a word, as a network failure would.
    pub fn abort(&self) {
        let mut inner = self.lock();
        inner.abort = true;
        drop(inner);
        self.notify.notify_one();
    }

    /// Whether a close was requested.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.lock().close.is_some()
    }

    /// The next item without waiting: reliable messages first, then the snapshot, then a close.
    #[must_use]
    pub fn try_next(&self) -> Option<OutItem> {
        let mut inner = self.lock();
        if inner.abort {
            return Some(OutItem::Abort);
        }
        if let Some(b) = inner.reliable.pop_front() {
            // A burst (a room's worth of join events) grows the queue; an idle session should
            // not keep that room.
            if inner.reliable.is_empty() && inner.reliable.capacity() > IDLE_RELIABLE_CAPACITY {
                inner.reliable = VecDeque::new();
            }
            return Some(OutItem::Send(b));
        }
        if let Some((bytes, input_arrivals)) = inner.snapshot.take() {
            inner.behind = 0;
            return Some(OutItem::Snapshot { bytes, input_arrivals });
        }
        inner.close.as_ref().map(|(r, m)| OutItem::Close(*r, m.clone()))
    }

    /// Waits for the next item.
    pub async fn next(&self) -> OutItem {
        loop {
            if let Some(item) = self.try_next() {
                return item;
            }
            self.notify.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_latest_wins_and_reliable_comes_first() {
        let o = Outbox::new(2);
        let t0 = Instant::now();
        let t1 = t0 + std::time::Duration::from_millis(5);
        assert!(!o.push_snapshot(Bytes::from_static(b"s1"), vec![t0]));
        assert!(o.push_snapshot(Bytes::from_static(b"s2"), vec![t1]));
        o.push_reliable(Bytes::from_static(b"r1")).unwrap();
        o.push_reliable(Bytes::from_static(b"r2")).unwrap();
        assert_eq!(o.push_reliable(Bytes::from_static(b"r3")), Err(OutboxFull));
        assert_eq!(o.try_next(), Some(OutItem::Send(Bytes::from_static(b"r1"))));
        assert_eq!(o.try_next(), Some(OutItem::Send(Bytes::from_static(b"r2"))));
        // The replaced snapshot's input arrivals carry over to its replacement.
        let s2 =
            OutItem::Snapshot { bytes: Bytes::from_static(b"s2"), input_arrivals: vec![t0, t1] };
        assert_eq!(o.try_next(), Some(s2));
        assert!(!o.push_snapshot(Bytes::from_static(b"s3"), Vec::new()));
        let s3 = OutItem::Snapshot { bytes: Bytes::from_static(b"s3"), input_arrivals: vec![] };
        assert_eq!(o.try_next(), Some(s3));
        // A client that never reads: the carried list stays bounded.
        for _ in 0..100 {
            o.push_snapshot(Bytes::from_static(b"s"), vec![t0; 3]);
        }
        let Some(OutItem::Snapshot { input_arrivals, .. }) = o.try_next() else { panic!() };
        assert_eq!(input_arrivals.len(), MAX_TRACKED_ARRIVALS);
        assert_eq!(o.try_next(), None);
    }

    #[test]
    fn too_slow_drops_the_backlog_and_close_is_sticky() {
        let o = Outbox::new(4);
        o.push_reliable(Bytes::from_static(b"r1")).unwrap();
        o.close(DisconnectReason::TooSlow, "slow");
        o.close(DisconnectReason::ServerShutdown, "later reasons lose");
        assert!(!o.push_snapshot(Bytes::from_static(b"s"), Vec::new()));
        let close = Some(OutItem::Close(DisconnectReason::TooSlow, "slow".into()));
        assert_eq!(o.try_next(), close);
        assert_eq!(o.try_next(), close);
    }
}
