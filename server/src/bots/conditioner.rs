//! The bots' link conditioner: `--conditioner latency=100ms,jitter=20ms,loss=5%` delays (and
//! loses) every message of a bot, both ways, inside the bot's own driver, seeded. An ordered
//! message (a WebSocket frame, a message on a QUIC stream) is never lost: like TCP, a lost one is
//! delivered a retransmission timeout late, and everything behind it waits (head-of-line
//! blocking); nothing overtakes it. A datagram is lost outright, and overtakes nothing but the
//! ordered messages waiting behind a retransmission ([`DelayQueue`]).

use std::collections::VecDeque;
use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use tickwire_shared::rng::Rng as BotRng;

/// Messages held per direction per bot. At 60 inputs or 30 snapshots a second even a 10 s delay
/// holds fewer than this; past it the newest message is dropped (and counted) rather than
/// letting a stalled peer grow memory.
pub const MAX_DELAYED_MESSAGES: usize = 1_024;

/// Longest latency or jitter accepted: beyond a minute nothing interactive is being measured.
pub const MAX_CONDITIONER_DELAY: Duration = Duration::from_secs(60);

/// The shortest retransmission timeout of a lost ordered message (Linux's minimum TCP RTO).
pub const MIN_RETRANSMIT: Duration = Duration::from_millis(200);

/// Delays and loss applied to each bot's traffic, each way. In JSON:
/// `{"latency_ms": …, "jitter_ms": …, "loss_percent": …}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "ConditionerMs", from = "ConditionerMs")]
pub struct ConditionerSpec {
    /// Fixed one-way delay.
    pub latency: Duration,
    /// Extra uniformly random one-way delay, `0..=jitter`.
    pub jitter: Duration,
    /// Messages lost, in parts per ten thousand (`loss=5%` is 500).
    pub loss_per_10k: u16,
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
}

/// [`ConditionerSpec`] as the report writes it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct ConditionerMs {
    latency_ms: f64,
    jitter_ms: f64,
    #[serde(default)]
    loss_percent: f64,
}

impl From<ConditionerSpec> for ConditionerMs {
    fn from(s: ConditionerSpec) -> Self {
        ConditionerMs {
            latency_ms: s.latency.as_secs_f64() * 1e3,
            jitter_ms: s.jitter.as_secs_f64() * 1e3,
            loss_percent: f64::from(s.loss_per_10k) / 100.0,
        }
    }
}

impl From<ConditionerMs> for ConditionerSpec {
    fn from(m: ConditionerMs) -> Self {
        let ms = |v: f64| {
            Duration::from_secs_f64((v / 1e3).clamp(0.0, MAX_CONDITIONER_DELAY.as_secs_f64()))
        };
        let loss = (m.loss_percent * 100.0).round().clamp(0.0, 10_000.0) as u16;
        ConditionerSpec { latency: ms(m.latency_ms), jitter: ms(m.jitter_ms), loss_per_10k: loss }
    }
}

impl fmt::Display for ConditionerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "latency={}ms,jitter={}ms", self.latency.as_millis(), self.jitter.as_millis())?;
        if self.loss_per_10k > 0 {
            write!(f, ",loss={}%", f64::from(self.loss_per_10k) / 100.0)?;
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

/// Parses `5%` or a share like `0.05` into parts per ten thousand (at most 50 %).
fn parse_loss(text: &str) -> Result<u16, String> {
    let text = text.trim();
    let share = match text.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|p| p / 100.0),
        None => text.parse::<f64>(),
    }
    .map_err(|_| format!("{text:?} is not a loss like 5% or 0.05"))?;
    if !share.is_finite() || !(0.0..=0.5).contains(&share) {
        return Err(format!("loss {text:?} must be between 0% and 50%"));
    }
    Ok((share * 10_000.0).round() as u16)
}

/// How a message travels, for the conditioner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// In order and reliably (WebSocket, a QUIC stream): loss delays it and what follows.
    Ordered,
    /// Unreliably (a QUIC datagram): loss drops it.
    Datagram,
}

impl FromStr for ConditionerSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut spec = ConditionerSpec::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                format!("{part:?}: expected key=value (latency=100ms,jitter=20ms)")
            })?;
            match key.trim() {
                "latency" => spec.latency = parse_delay(value)?,
                "jitter" => spec.jitter = parse_delay(value)?,
                "loss" => spec.loss_per_10k = parse_loss(value)?,
                other => {
                    return Err(format!(
                        "unknown conditioner setting {other:?} (latency, jitter, loss)"
                    ));
                }
            }
        }
        Ok(spec)
    }
}

/// One direction of a conditioned link: messages with the instant they are due, in order.
#[derive(Debug)]
pub struct DelayQueue<T> {
    spec: ConditionerSpec,
    rng: BotRng,
    queue: VecDeque<(Instant, T)>,
    last_due: Option<Instant>,
    dropped: u64,
    lost: u64,
    delayed: u64,
}

impl<T> DelayQueue<T> {
    /// A queue applying `spec` (no delay: messages are due at once), jitter drawn from `seed`.
    #[must_use]
    pub fn new(spec: ConditionerSpec, seed: u64) -> DelayQueue<T> {
        DelayQueue {
            spec,
            rng: BotRng::new(seed),
            queue: VecDeque::new(),
            last_due: None,
            dropped: 0,
            lost: 0,
            delayed: 0,
        }
    }

    /// Queues `item`, sent at `now` the `delivery` way. Dropped (and counted) when
    /// [`MAX_DELAYED_MESSAGES`] wait.
    pub fn push(&mut self, now: Instant, item: T, delivery: Delivery) {
        if self.queue.len() >= MAX_DELAYED_MESSAGES {
            self.dropped += 1;
            return;
        }
        let jitter = if self.spec.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.spec.jitter.mul_f32(self.rng.unit())
        };
        let lost = self.spec.loss_per_10k > 0 && self.rng.unit_f64() < self.spec.loss();
        let mut due = now + self.spec.latency + jitter;
        match delivery {
            Delivery::Datagram if lost => {
                self.lost += 1;
                return;
            }
            Delivery::Datagram => {
                // No order to keep: it waits for nothing, and ordered messages behind a
                // retransmission do not hold it.
                let at = self.queue.iter().rposition(|(d, _)| *d <= due).map_or(0, |i| i + 1);
                self.queue.insert(at, (due, item));
                return;
            }
            Delivery::Ordered => {
                if lost {
                    self.delayed += 1;
                    due += self.spec.retransmit();
                }
                if let Some(last) = self.last_due {
                    due = due.max(last);
                }
                self.last_due = Some(due);
            }
        }
        let at = self.queue.iter().rposition(|(d, _)| *d <= due).map_or(0, |i| i + 1);
        self.queue.insert(at, (due, item));
    }

    /// Datagrams the conditioner lost.
    #[must_use]
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Ordered messages the conditioner delayed by a retransmission.
    #[must_use]
    pub fn retransmitted(&self) -> u64 {
        self.delayed
    }

    /// The oldest message if it is due at `now`.
    pub fn pop_due(&mut self, now: Instant) -> Option<T> {
        if self.queue.front().is_some_and(|(due, _)| *due <= now) {
            self.queue.pop_front().map(|(_, item)| item)
        } else {
            None
        }
    }

    /// When the oldest message is due.
    #[must_use]
    pub fn next_due(&self) -> Option<Instant> {
        self.queue.front().map(|(due, _)| *due)
    }

    /// Messages dropped because the queue was full.
    #[must_use]
    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        let spec: ConditionerSpec = "latency=100ms,jitter=20ms".parse().unwrap();
        assert_eq!(spec.latency, Duration::from_millis(100));
        assert_eq!(spec.jitter, Duration::from_millis(20));
        let spec: ConditionerSpec = "latency=0.05s".parse().unwrap();
        assert_eq!(spec.latency, Duration::from_millis(50));
        assert!(spec.jitter.is_zero());
        assert!("latency=fast".parse::<ConditionerSpec>().is_err());
        let spec: ConditionerSpec = "latency=10ms,loss=5%".parse().unwrap();
        assert_eq!(spec.loss_per_10k, 500);
        assert_eq!(spec.to_string(), "latency=10ms,jitter=0ms,loss=5%");
        assert_eq!("loss=0.02".parse::<ConditionerSpec>().unwrap().loss_per_10k, 200);
        assert!("loss=80%".parse::<ConditionerSpec>().is_err());
        assert!("loss=lots".parse::<ConditionerSpec>().is_err());
        assert!("drop=1%".parse::<ConditionerSpec>().is_err());
        assert!("latency=-5ms".parse::<ConditionerSpec>().is_err());
    }

    #[test]
    fn keeps_order_under_jitter() {
        let spec = ConditionerSpec {
            latency: Duration::from_millis(10),
            jitter: Duration::from_millis(50),
            loss_per_10k: 0,
        };
        let mut q = DelayQueue::new(spec, 9);
        let t0 = Instant::now();
        for i in 0..100u32 {
            q.push(t0 + Duration::from_millis(u64::from(i)), i, Delivery::Ordered);
        }
        let mut out = Vec::new();
        let end = t0 + Duration::from_secs(1);
        while let Some(i) = q.pop_due(end) {
            out.push(i);
        }
        assert_eq!(out, (0..100).collect::<Vec<_>>());
        assert!(q.pop_due(end).is_none());
    }
}

#[cfg(test)]
mod loss_tests {
    use super::*;

    #[test]
    fn loss_drops_datagrams_and_delays_ordered_messages_with_what_follows() {
        let spec: ConditionerSpec = "latency=10ms,loss=20%".parse().unwrap();
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(10);
        // Datagrams: about a fifth lost, the rest on time and in order.
        let mut q = DelayQueue::new(spec, 3);
        for i in 0..1_000u32 {
            q.push(t0 + Duration::from_millis(u64::from(i)), i, Delivery::Datagram);
        }
        let mut got = Vec::new();
        while let Some(i) = q.pop_due(end) {
            got.push(i);
        }
        assert_eq!(got.len() as u64 + q.lost(), 1_000);
        assert!((150..250).contains(&q.lost()), "{} lost", q.lost());
        assert!(got.windows(2).all(|w| w[0] < w[1]));
        // Ordered: nothing lost, about a fifth retransmitted, and a retransmitted message holds
        // the ones behind it (they are never due before it).
        let mut q = DelayQueue::new(spec, 3);
        for i in 0..1_000u32 {
            q.push(t0 + Duration::from_millis(u64::from(i)), i, Delivery::Ordered);
        }
        assert_eq!(q.lost(), 0);
        assert!((150..250).contains(&q.retransmitted()), "{}", q.retransmitted());
        let first_due = q.next_due().unwrap();
        assert!(first_due >= t0 + Duration::from_millis(10));
        let mut got = Vec::new();
        while let Some(i) = q.pop_due(end) {
            got.push(i);
        }
        assert_eq!(got, (0..1_000).collect::<Vec<_>>());
        // A datagram overtakes ordered messages waiting behind a retransmission.
        let spec: ConditionerSpec = "latency=10ms,loss=50%".parse().unwrap();
        let mut q = DelayQueue::new(spec, 1);
        let mut t = t0;
        while q.retransmitted() == 0 {
            q.push(t, u32::MAX, Delivery::Ordered);
            t += Duration::from_millis(1);
        }
        let ordered = (t - t0).as_millis();
        loop {
            let before = q.lost();
            q.push(t, 7, Delivery::Datagram);
            if q.lost() == before {
                break;
            }
        }
        let mut got = Vec::new();
        while let Some(i) = q.pop_due(t + Duration::from_millis(11)) {
            got.push(i);
        }
        assert!(got.contains(&7), "the datagram waited: {got:?}");
        assert!((got.len() as u128) < ordered + 1, "the retransmitted message did not hold");
    }
}
