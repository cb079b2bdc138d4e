//! The bots' link conditioner: `--conditioner latency=100ms,jitter=20ms` delays every message of
//! a bot, both ways, inside the bot's own driver. A WebSocket is ordered, so jitter delays a
//! message and everything behind it but nothing overtakes ([`DelayQueue`]).

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

/// Delays applied to each bot's traffic, each way. In JSON: `{"latency_ms": …, "jitter_ms": …}`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "ConditionerMs", from = "ConditionerMs")]
pub struct ConditionerSpec {
    /// Fixed one-way delay.
    pub latency: Duration,
    /// Extra uniformly random one-way delay, `0..=jitter`.
    pub jitter: Duration,
}

/// [`ConditionerSpec`] as the report writes it.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct ConditionerMs {
    latency_ms: f64,
    jitter_ms: f64,
}

impl From<ConditionerSpec> for ConditionerMs {
    fn from(s: ConditionerSpec) -> Self {
        ConditionerMs {
            latency_ms: s.latency.as_secs_f64() * 1e3,
            jitter_ms: s.jitter.as_secs_f64() * 1e3,
        }
    }
}

impl From<ConditionerMs> for ConditionerSpec {
    fn from(m: ConditionerMs) -> Self {
        let ms = |v: f64| {
            Duration::from_secs_f64((v / 1e3).clamp(0.0, MAX_CONDITIONER_DELAY.as_secs_f64()))
        };
        ConditionerSpec { latency: ms(m.latency_ms), jitter: ms(m.jitter_ms) }
    }
}

impl fmt::Display for ConditionerSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "latency={}ms,jitter={}ms", self.latency.as_millis(), self.jitter.as_millis())
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
                other => {
                    return Err(format!("unknown conditioner setting {other:?} (latency, jitter)"));
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
        }
    }

    /// Queues `item`, sent at `now`. Dropped (and counted) when [`MAX_DELAYED_MESSAGES`] wait.
    pub fn push(&mut self, now: Instant, item: T) {
        if self.queue.len() >= MAX_DELAYED_MESSAGES {
            self.dropped += 1;
            return;
        }
        let jitter = if self.spec.jitter.is_zero() {
            Duration::ZERO
        } else {
            self.spec.jitter.mul_f32(self.rng.unit())
        };
        let mut due = now + self.spec.latency + jitter;
        if let Some(last) = self.last_due {
            due = due.max(last);
        }
        self.last_due = Some(due);
        self.queue.push_back((due, item));
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
        assert!("loss=0.1".parse::<ConditionerSpec>().is_err());
        assert!("latency=-5ms".parse::<ConditionerSpec>().is_err());
    }

    #[test]
    fn keeps_order_under_jitter() {
        let spec = ConditionerSpec {
            latency: Duration::from_millis(10),
            jitter: Duration::from_millis(50),
        };
        let mut q = DelayQueue::new(spec, 9);
        let t0 = Instant::now();
        for i in 0..100u32 {
            q.push(t0 + Duration::from_millis(u64::from(i)), i);
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
