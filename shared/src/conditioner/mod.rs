//! The link conditioner, sans-IO: `latency=100ms,jitter=20ms,loss=2%,duplicate=1%,reorder=1%`
//! applied to one direction of a link by a [`DelayQueue`], seeded by [`crate::rng::Rng`], with
//! time passed in (a [`Duration`] since any epoch the driver picks). The bots (over real
//! sockets, with tokio's clock) and the in-process test harness (with the step count) are its
//! drivers.
//!
//! How a message travels decides what the impairments do ([`Delivery`]):
//! - **Ordered** (a WebSocket frame, a message on a QUIC stream) is never lost, duplicated or
//!   reordered: like TCP, a lost one is delivered a retransmission timeout late, and everything
//!   behind it waits (head-of-line blocking); duplicates and reordering are hidden by TCP.
//! - **Datagram** (a QUIC datagram) is lost outright; a duplicate is a second copy with its own
//!   jitter; a reordered one is held back a further one-way delay ([`ConditionerSpec::reorder_hold`])
//!   so a later one overtakes it. Datagrams overtake the ordered messages waiting behind a
//!   retransmission, and with jitter one another.

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// Messages held per direction. At 60 inputs or 30 snapshots a second even a 10 s delay holds
/// fewer than this; past it the newest message is dropped (and counted) rather than letting a
/// stalled peer grow memory.
pub const MAX_DELAYED_MESSAGES: usize = 1_024;

/// Longest latency or jitter accepted: beyond a minute nothing interactive is being measured.
pub const MAX_CONDITIONER_DELAY: Duration = Duration::from_secs(60);

/// The shortest retransmission timeout of a lost ordered message (Linux's minimum TCP RTO).
pub const MIN_RETRANSMIT: Duration = Duration::from_millis(200);

/// The shortest extra hold of a reordered datagram: three 60 Hz frames and more than a 30 Hz
/// snapshot period, so the next message overtakes it even on a link with no latency.
pub const MIN_REORDER_HOLD: Duration = Duration::from_millis(50);

/// The highest loss, duplicate or reorder rate accepted, in parts per ten thousand (50 %):
/// past it the link is not a bad network but a broken one.
pub const MAX_RATE_PER_10K: u16 = 5_000;

/// Delays, loss, duplication and reordering applied to a link, each way. In JSON:
/// `{"latency_ms": …, "jitter_ms": …, "loss_percent": …, "duplicate_percent": …,
/// "reorder_percent": …}` (the last three default to 0).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "ConditionerMs", from = "ConditionerMs")]
pub struct ConditionerSpec {
    /// Fixed one-way delay.
    pub latency: Duration,
    /// Extra uniformly random one-way delay, `0..=jitter`.
    pub jitter: Duration,
    /// Messages lost, in parts per ten thousand (`loss=5%` is 500).
    pub loss_per_10k: u16,
    /// Datagrams delivered twice, in parts per ten thousand.
    pub duplicate_per_10k: u16,
    /// Datagrams held back so a later one overtakes them, in parts per ten thousand.
    pub reorder_per_10k: u16,
}

impl ConditionerSpec {
    /// The share of messages lost, `0..=1`.
    #[must_use]
    pub fn loss(&self) -> f64 {
        f64::from(self.loss_per_10k) / 10_000.0
    }

    /// How late a lost ordered message arrives: a retransmission timeout, at least
    /// [`MIN_RETRANSMIT`], else twice the worst one-way delay (a round trip).
    #[must_use]
    pub fn retransmit(&self) -> Duration {
        MIN_RETRANSMIT.max((self.latency + self.jitter) * 2)
    }

    /// How much longer a reordered datagram is held: a further worst one-way delay, at least
    /// [`MIN_REORDER_HOLD`].
    #[must_use]
    pub fn reorder_hold(&self) -> Duration {
        MIN_REORDER_HOLD.max(self.latency + self.jitter)
    }
}

/// [`ConditionerSpec`] as reports write it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct ConditionerMs {
    latency_ms: f64,
    jitter_ms: f64,
    #[serde(default)]
    loss_percent: f64,
    #[serde(default)]
    duplicate_percent: f64,
    #[serde(default)]
    reorder_percent: f64,
}

impl From<ConditionerSpec> for ConditionerMs {
    fn from(s: ConditionerSpec) -> Self {
        ConditionerMs {
            latency_ms: s.latency.as_secs_f64() * 1e3,
            jitter_ms: s.jitter.as_secs_f64() * 1e3,
            loss_percent: f64::from(s.loss_per_10k) / 100.0,
            duplicate_percent: f64::from(s.duplicate_per_10k) / 100.0,
            reorder_percent: f64::from(s.reorder_per_10k) / 100.0,
        }
    }
}

impl From<ConditionerMs> for ConditionerSpec {
    fn from(m: ConditionerMs) -> Self {
        let ms = |v: f64| {
            Duration::from_secs_f64((v / 1e3).clamp(0.0, MAX_CONDITIONER_DELAY.as_secs_f64()))
        };
        let rate =
            |percent: f64| (percent * 100.0).round().clamp(0.0, f64::from(MAX_RATE_PER_10K)) as u16;
        ConditionerSpec {
            latency: ms(m.latency_ms),
            jitter: ms(m.jitter_ms),
            loss_per_10k: rate(m.loss_percent),
            duplicate_per_10k: rate(m.duplicate_percent),
            reorder_per_10k: rate(m.reorder_percent),
        }
    }
}

impl fmt::Display for ConditionerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "latency={}ms,jitter={}ms", self.latency.as_millis(), self.jitter.as_millis())?;
        for (key, per_10k) in [
            ("loss", self.loss_per_10k),
            ("duplicate", self.duplicate_per_10k),
            ("reorder", self.reorder_per_10k),
        ] {
            if per_10k > 0 {
                write!(f, ",{key}={}%", f64::from(per_10k) / 100.0)?;
            }
        }
        Ok(())
    }
}

/// Parses `100ms`, `0.1s`, `1500us` or a bare number of milliseconds.
fn parse_delay(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        (text, 1e-3)
    };
    let value: f64 =
        number.trim().parse().map_err(|_| format!("{text:?} is not a duration like 100ms"))?;
    let secs = value * scale;
    if !secs.is_finite() || secs < 0.0 || secs > MAX_CONDITIONER_DELAY.as_secs_f64() {
        return Err(format!("{text:?} must be between 0 and {}s", MAX_CONDITIONER_DELAY.as_secs()));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// Parses the `key` rate `5%` or a share like `0.05` into parts per ten thousand (at most
/// [`MAX_RATE_PER_10K`]).
fn parse_rate(key: &str, text: &str) -> Result<u16, String> {
    let text = text.trim();
    let share = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    }
    .map_err(|_| format!("{key} {text:?} is not a rate like 5% or 0.05"))?;
    let max = f64::from(MAX_RATE_PER_10K) / 10_000.0;
    if !share.is_finite() || !(0.0..=max).contains(&share) {
        return Err(format!("{key} {text:?} must be between 0% and {}%", max * 100.0));
    }
    Ok((share * 10_000.0).round() as u16)
}

impl FromStr for ConditionerSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = ConditionerSpec::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                format!("{part:?}: expected key=value (latency=100ms,jitter=20ms,loss=2%)")
            })?;
            match key.trim() {
                "latency" => spec.latency = parse_delay(value)?,
                "jitter" => spec.jitter = parse_delay(value)?,
                "loss" => spec.loss_per_10k = parse_rate("loss", value)?,
                "duplicate" => spec.duplicate_per_10k = parse_rate("duplicate", value)?,
                "reorder" => spec.reorder_per_10k = parse_rate("reorder", value)?,
                other => {
                    return Err(format!(
                        "unknown conditioner setting {other:?} \
                         (latency, jitter, loss, duplicate, reorder)"
                    ));
                }
            }
        }
        Ok(spec)
    }
}

/// How a message travels, for the conditioner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// In order and reliably (WebSocket, a QUIC stream): loss delays it and what follows;
    /// duplication and reordering do not happen.
    Ordered,
    /// Unreliably (a QUIC datagram): loss drops it, duplication delivers it twice, reordering
    /// holds it back.
    Datagram,
}

/// What a [`DelayQueue`] did to the messages pushed into it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionerStats {
    /// Datagrams lost.
    pub lost: u64,
    /// Ordered messages delayed by a retransmission (the ordered path's "loss").
    pub retransmitted: u64,
    /// Datagrams delivered twice.
    pub duplicated: u64,
    /// Datagrams held back so later ones overtake them.
    pub reordered: u64,
    /// Messages (or duplicate copies) dropped because [`MAX_DELAYED_MESSAGES`] waited.
    pub dropped: u64,
}

impl std::ops::AddAssign for ConditionerStats {
    fn add_assign(&mut self, o: ConditionerStats) {
        self.lost += o.lost;
        self.retransmitted += o.retransmitted;
        self.duplicated += o.duplicated;
        self.reordered += o.reordered;
        self.dropped += o.dropped;
    }
}

/// One direction of a conditioned link: messages with the time they are due, in due order.
/// Push with [`DelayQueue::push`], then call [`DelayQueue::pop_due`] until it returns `None`
/// and wake again at [`DelayQueue::next_due`].
#[derive(Debug)]
pub struct DelayQueue<T> {
    spec: ConditionerSpec,
    rng: Rng,
    queue: VecDeque<(Duration, T)>,
    last_ordered_due: Option<Duration>,
    stats: ConditionerStats,
}

impl<T: Clone> DelayQueue<T> {
    /// A queue applying `spec` (no delay: messages are due at once), its decisions drawn from
    /// `seed`: the same seed and pushes give the same deliveries.
    #[must_use]
    pub fn new(spec: ConditionerSpec, seed: u64) -> DelayQueue<T> {
        DelayQueue {
            spec,
            rng: Rng::new(seed),
            queue: VecDeque::new(),
            last_ordered_due: None,
            stats: ConditionerStats::default(),
        }
    }

    /// The spec it applies.
    #[must_use]
    pub fn spec(&self) -> ConditionerSpec {
        self.spec
    }

    /// Draws `0..=jitter`.
    fn jitter(&mut self) -> Duration {
        if self.spec.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.spec.jitter.mul_f64(self.rng.unit_f64())
        }
    }

    /// Whether an event of rate `per_10k` happens (no draw at rate 0).
    fn happens(&mut self, per_10k: u16) -> bool {
        per_10k > 0 && self.rng.unit_f64() * 10_000.0 < f64::from(per_10k)
    }

    /// Inserts `item` due at `due`, after every message due no later.
    fn insert(&mut self, due: Duration, item: T) {
        let at = self.queue.iter().rposition(|(d, _)| *d <= due).map_or(0, |i| i + 1);
        self.queue.insert(at, (due, item));
    }

    /// Queues `item`, sent at `now` the `delivery` way. Dropped (and counted) when
    /// [`MAX_DELAYED_MESSAGES`] wait.
    pub fn push(&mut self, now: Duration, item: T, delivery: Delivery) {
        if self.queue.len() >= MAX_DELAYED_MESSAGES {
            self.stats.dropped += 1;
            return;
        }
        let mut due = now + self.spec.latency + self.jitter();
        let lost = self.happens(self.spec.loss_per_10k);
        match delivery {
            Delivery::Ordered => {
                if lost {
                    self.stats.retransmitted += 1;
                    due += self.spec.retransmit();
                }
                // Nothing overtakes an ordered message, not even one sent before it with less
                // jitter.
                if let Some(last) = self.last_ordered_due {
                    due = due.max(last);
                }
                self.last_ordered_due = Some(due);
                self.insert(due, item);
            }
            Delivery::Datagram => {
                if lost {
                    self.stats.lost += 1;
                    return;
                }
                if self.happens(self.spec.reorder_per_10k) {
                    self.stats.reordered += 1;
                    due += self.spec.reorder_hold();
                }
                if self.happens(self.spec.duplicate_per_10k) {
                    if self.queue.len() + 1 >= MAX_DELAYED_MESSAGES {
                        self.stats.dropped += 1;
                    } else {
                        self.stats.duplicated += 1;
                        let copy_due = now + self.spec.latency + self.jitter();
                        self.insert(copy_due, item.clone());
                    }
                }
                self.insert(due, item);
            }
        }
    }

    /// The oldest message if it is due at `now`.
    pub fn pop_due(&mut self, now: Duration) -> Option<T> {
        if self.queue.front().is_some_and(|(due, _)| *due <= now) {
            self.queue.pop_front().map(|(_, item)| item)
        } else {
            None
        }
    }

    /// When the oldest message is due.
    #[must_use]
    pub fn next_due(&self) -> Option<Duration> {
        self.queue.front().map(|(due, _)| *due)
    }

    /// Messages waiting.
    #[must_use]
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no message waits.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// What it did so far.
    #[must_use]
    pub fn stats(&self) -> ConditionerStats {
        self.stats
    }
}

#[cfg(test)]
mod tests;
