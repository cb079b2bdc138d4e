//! The connection's life cycle as plain data: phases, the reconnect backoff, which closes are
//! final, and the per-second meters of the HUD. No browser types, so it is tested natively.

use std::collections::VecDeque;

use tickwire_shared::protocol::DisconnectReason;

/// First reconnect delay before jitter: half a second, so a blip costs little.
pub const BACKOFF_BASE_MS: f64 = 500.0;

/// Longest reconnect delay before jitter: 8 s keeps well inside the server's 30 s resume grace
/// even after several failed attempts.
pub const BACKOFF_MAX_MS: f64 = 8_000.0;

/// Attempts in a row without a welcome after which the client gives up ("failed"): with the
/// delays above that is over a minute of trying, past the resume grace.
pub const MAX_ATTEMPTS: u32 = 12;

/// Where the connection is.
#[derive(Clone, Debug, PartialEq)]
pub enum Phase {
    /// The first connection is being made.
    Connecting,
    /// Welcomed; snapshots flow.
    Live,
    /// The connection was lost; the next attempt starts at `retry_at_ms` (the page clock), or
    /// is under way when that is `None`.
    Reconnecting {
        /// When the next attempt starts.
        retry_at_ms: Option<f64>,
    },
    /// Given up, for this reason.
    Failed {
        /// For humans.
        reason: String,
    },
}

impl Phase {
    /// The label `window.tickwire.state().connection` reports.
    #[must_use]
    pub fn label(&self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Live => "live",
            Phase::Reconnecting { .. } => "reconnecting",
            Phase::Failed { .. } => "failed",
        }
    }

    /// What the status line shows at `now_ms`.
    #[must_use]
    pub fn describe(&self, now_ms: f64) -> String {
        match self {
            Phase::Connecting => "connecting…".to_owned(),
            Phase::Live => "live".to_owned(),
            Phase::Reconnecting { retry_at_ms: Some(at) } => {
                format!("reconnecting in {:.0} s", ((at - now_ms) / 1000.0).max(0.0).ceil())
            }
            Phase::Reconnecting { retry_at_ms: None } => "reconnecting…".to_owned(),
            Phase::Failed { reason } => format!("failed: {reason}"),
        }
    }
}

/// The delay before reconnect attempt `attempt` (0 for the first), in milliseconds:
/// exponential from [`BACKOFF_BASE_MS`] up to [`BACKOFF_MAX_MS`], with "equal jitter" (half
/// fixed, half random with `unit` in `0..1`) so that clients dropped together do not come back
/// together.
#[must_use]
pub fn backoff_ms(attempt: u32, unit: f64) -> f64 {
    let exp = (BACKOFF_BASE_MS * 2f64.powi(attempt.min(16) as i32)).min(BACKOFF_MAX_MS);
    exp / 2.0 + exp / 2.0 * unit.clamp(0.0, 1.0)
}

/// Whether a session that ended this way must not be resumed: the player left, was replaced
/// by another connection of theirs (close code 1000), or the client broke the protocol (1002,
/// it would again). `reason` is the server's `Disconnect` message if one arrived; `code` is the
/// WebSocket close code.
#[must_use]
pub fn is_terminal(reason: Option<DisconnectReason>, code: u16) -> bool {
    match reason {
        Some(r) => matches!(
            r,
            DisconnectReason::Left | DisconnectReason::Replaced | DisconnectReason::ProtocolError
        ),
        None => code == 1000 || code == 1002,
    }
}

/// Sums of amounts over the last second (bytes per second, snapshots per second, frames per
/// second).
#[derive(Clone, Debug, Default)]
pub struct RateMeter {
    samples: VecDeque<(f64, f64)>,
    sum: f64,
}

/// The window of a [`RateMeter`], in milliseconds.
pub const RATE_WINDOW_MS: f64 = 1_000.0;

impl RateMeter {
    /// Records `amount` at `now_ms`.
    pub fn add(&mut self, now_ms: f64, amount: f64) {
        self.samples.push_back((now_ms, amount));
        self.sum += amount;
        self.expire(now_ms);
    }

    fn expire(&mut self, now_ms: f64) {
        while let Some(&(t, a)) = self.samples.front() {
            if now_ms - t < RATE_WINDOW_MS {
                break;
            }
            self.samples.pop_front();
            self.sum -= a;
        }
        if self.samples.is_empty() {
            self.sum = 0.0;
        }
    }

    /// The total over the second before `now_ms`.
    pub fn per_second(&mut self, now_ms: f64) -> f64 {
        self.expire(now_ms);
        self.sum
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_caps_and_jitters() {
        assert_eq!(backoff_ms(0, 0.0), 250.0);
        assert_eq!(backoff_ms(0, 1.0), 500.0);
        assert_eq!(backoff_ms(1, 1.0), 1_000.0);
        assert_eq!(backoff_ms(10, 1.0), BACKOFF_MAX_MS);
        assert_eq!(backoff_ms(u32::MAX, 0.5), BACKOFF_MAX_MS * 0.75);
    }

    #[test]
    fn only_leaving_replacement_and_protocol_errors_are_final() {
        assert!(is_terminal(Some(DisconnectReason::Left), 1000));
        assert!(is_terminal(Some(DisconnectReason::Replaced), 1000));
        assert!(is_terminal(Some(DisconnectReason::ProtocolError), 1002));
        assert!(!is_terminal(Some(DisconnectReason::ServerShutdown), 1001));
        assert!(!is_terminal(Some(DisconnectReason::RoomFull), 1013));
        assert!(!is_terminal(None, 1006), "a dropped connection is resumed");
        assert!(is_terminal(None, 1002));
    }

    #[test]
    fn meters_forget_after_a_second() {
        let mut m = RateMeter::default();
        m.add(0.0, 100.0);
        m.add(500.0, 50.0);
        assert_eq!(m.per_second(900.0), 150.0);
        assert_eq!(m.per_second(1_200.0), 50.0);
        assert_eq!(m.per_second(5_000.0), 0.0);
    }

    #[test]
    fn phases_describe_themselves() {
        let p = Phase::Reconnecting { retry_at_ms: Some(2_500.0) };
        assert_eq!(p.label(), "reconnecting");
        assert_eq!(p.describe(1_000.0), "reconnecting in 2 s");
        assert_eq!(Phase::Failed { reason: "x".into() }.describe(0.0), "failed: x");
    }
}
