//! The room → session queue of one client. Snapshots are latest-wins (a newer one replaces an
//! unsent older one); reliable messages (welcome, chat, events, pongs) queue up to a bound, and a
//! client that lets that bound fill is too slow and is closed. The room thread only ever pushes
//! (never waits), so a slow client cannot stall the tick.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tickwire_shared::protocol::DisconnectReason;
use tokio::sync::Notify;

/// What a session should do next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutItem {
    /// Send these bytes.
    Send(Bytes),
    /// Close with this reason (the `Disconnect` message was queued before it, when possible).
    Close(DisconnectReason, String),
    /// Drop the connection at once, with no message and no close frame (a simulated network
    /// failure, for tests).
    Abort,
}

#[derive(Default)]
struct Inner {
    snapshot: Option<Bytes>,
    reliable: VecDeque<Bytes>,
    close: Option<(DisconnectReason, String)>,
    abort: bool,
}

/// One client's outbound queue, shared by the room (producer) and the session (consumer).
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    max_reliable: usize,
}

/// The reliable queue is full: the client is too slow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxFull;

impl Outbox {
    /// An empty outbox holding at most `max_reliable` reliable messages.
    #[must_use]
    pub fn new(max_reliable: usize) -> Outbox {
        Outbox { inner: Mutex::new(Inner::default()), notify: Notify::new(), max_reliable }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the queue inconsistent: recover it.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Queues a snapshot, replacing an unsent one. Returns whether one was replaced.
    pub fn push_snapshot(&self, bytes: Bytes) -> bool {
        let mut inner = self.lock();
        if inner.close.is_some() {
            return false;
        }
        let replaced = inner.snapshot.replace(bytes).is_some();
        drop(inner);
        self.notify.notify_one();
        replaced
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
            return Some(OutItem::Send(b));
        }
        if let Some(b) = inner.snapshot.take() {
            return Some(OutItem::Send(b));
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
        assert!(!o.push_snapshot(Bytes::from_static(b"s1")));
        assert!(o.push_snapshot(Bytes::from_static(b"s2")));
        o.push_reliable(Bytes::from_static(b"r1")).unwrap();
        o.push_reliable(Bytes::from_static(b"r2")).unwrap();
        assert_eq!(o.push_reliable(Bytes::from_static(b"r3")), Err(OutboxFull));
        assert_eq!(o.try_next(), Some(OutItem::Send(Bytes::from_static(b"r1"))));
        assert_eq!(o.try_next(), Some(OutItem::Send(Bytes::from_static(b"r2"))));
        assert_eq!(o.try_next(), Some(OutItem::Send(Bytes::from_static(b"s2"))));
        assert_eq!(o.try_next(), None);
    }

    #[test]
    fn too_slow_drops_the_backlog_and_close_is_sticky() {
        let o = Outbox::new(4);
        o.push_reliable(Bytes::from_static(b"r1")).unwrap();
        o.close(DisconnectReason::TooSlow, "slow");
        o.close(DisconnectReason::ServerShutdown, "later reasons lose");
        assert!(!o.push_snapshot(Bytes::from_static(b"s")));
        let close = Some(OutItem::Close(DisconnectReason::TooSlow, "slow".into()));
        assert_eq!(o.try_next(), close);
        assert_eq!(o.try_next(), close);
    }
}
