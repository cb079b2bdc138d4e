//! Time sync: the client's input clock, run ahead of the server by just enough that its frames
//! reach the room before their tick.
//!
//! The room schedules each input sequence number at one tick and reports, with every snapshot,
//! how many milliseconds before its tick was due the latest of the client's new frames arrived
//! ([`crate::protocol::SnapshotMessage::input_margin`]; negative is late). A late frame's tick
//! runs with the previous input repeated, which the client did not predict when the input
//! changed; an early frame only waits. So [`InputClock`] keeps the latest arrival of the last
//! four seconds (the lowest recent report: jitter and a lost datagram, whose frames come a tick
//! later with the next one, included; a TCP retransmission's 200 ms hold-up left out as an
//! outlier, [`OUTLIER_US`]) between [`SAFETY_US`] and half a tick more:
//!
//! - below [`SAFETY_US`] (a frame was late, or nearly), the clock **jumps** ahead by whole
//!   ticks: the frames due at once grow by that many, so the next frames leave that much
//!   earlier (being late is what costs a misprediction, so it is corrected at once, and
//!   before it happens when a clock drifts late);
//! - above the band, the clock **runs slow** by [`DILATION`] until the excess is gone (being
//!   early only adds latency, so it is taken out gently, unnoticed); more than
//!   [`PAUSE_ABOVE_TICKS`] above it, it **pauses** for the excess.
//!
//! After a jump or a pause the reports still in flight describe the old timing, so they are
//! ignored until the server has run the first frame sent after the change.
//!
//! Sans-IO: the driver's clock is passed in, in microseconds.

use std::collections::VecDeque;

use crate::tick::seq_after;

/// The least margin wanted for the latest frame of the last four seconds: 4 ms, for the
/// server's own tick timing (a tick runs a little after it is due), a report's millisecond
/// rounding, and what a clock drifting even 1 % loses over the round trip a correction takes
/// to show. The band goes from there to half a tick more: a frame waits at most about half a
/// tick more than the worst jitter seen makes it need (a jump moves a whole tick; running
/// slow then takes the excess back out).
pub const SAFETY_US: i64 = 4_000;

/// Reports kept: 128 snapshots are about four seconds at 30 snapshots/s, long enough to still
/// hold the last lost input datagram on a link that loses one in a hundred (its frames come a
/// tick late with the next one), so the lead keeps covering it.
pub const MARGIN_WINDOW: usize = 128;

/// A report more than this far below the median of the kept ones is an outlier, not jitter:
/// 100 ms is half of TCP's minimum retransmission timeout, whose hold-up of a WebSocket's frames
/// no lead worth having covers (a lead that did would add 200 ms to every input).
pub const OUTLIER_US: i64 = 100_000;

/// No change before this many reports: the first ones may all be one burst.
pub const MIN_REPORTS: usize = 10;

/// How much slower the clock runs above the band: 2 %, a tick every 50 ticks (under a second
/// at 60 Hz), too little to see in the own player's motion, and far more than any real clock
/// drifts.
pub const DILATION: f64 = 0.02;

/// More than this many ticks above the band, the clock pauses for the excess instead of
/// running slow (four ticks would take over three seconds at [`DILATION`]).
pub const PAUSE_ABOVE_TICKS: i64 = 4;

/// The largest single jump or pause, in ticks: more is done over several reports.
pub const MAX_STEP_TICKS: i64 = 8;

/// At most this many ticks of input are due at once after the driver stalled (a hidden tab, a
/// long frame): 8 ticks are 133 ms at 60 Hz; beyond that the time is dropped rather than
/// flooding the server with a burst of stale input.
pub const MAX_CATCH_UP_INPUTS: u32 = 8;

/// What the clock has done.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TimeSyncStats {
    /// Reports received.
    pub reports: u64,
    /// Jumps ahead (frames sent earlier at once).
    pub jumps: u64,
    /// Ticks jumped, in total.
    pub jumped_ticks: u64,
    /// Pauses (frames held back at once).
    pub pauses: u64,
    /// Ticks paused, in total.
    pub paused_ticks: u64,
}

/// The input clock of a client: how many frames are due, steered by the room's reports; see
/// the [module documentation](self).
#[derive(Clone, Debug)]
pub struct InputClock {
    tick_us: u64,
    /// Time not yet turned into frames, microseconds (negative during a pause).
    acc_us: i64,
    last_us: Option<u64>,
    /// Recent reports, oldest first, microseconds, less `bias_us` at the time each came.
    margins: VecDeque<i64>,
    /// How much earlier (microseconds) frames leave now than when the clock started: jumps,
    /// pauses and running fast or slow move it, so old reports are read as if sent with
    /// today's timing.
    bias_us: i64,
    /// Reports are ignored until the server echoes this sequence number.
    hold_until: Option<u32>,
    /// The clock's rate: -1 slow (by [`DILATION`]), 0 normal.
    rate: i8,
    stats: TimeSyncStats,
}

impl InputClock {
    /// A clock for a server stepping `tick_rate` times a second, started at `now_us`.
    #[must_use]
    pub fn new(tick_rate: u16, now_us: u64) -> InputClock {
        InputClock {
            tick_us: 1_000_000 / u64::from(tick_rate.max(1)),
            acc_us: 0,
            last_us: Some(now_us),
            margins: VecDeque::with_capacity(MARGIN_WINDOW),
            bias_us: 0,
            hold_until: None,
            rate: 0,
            stats: TimeSyncStats::default(),
        }
    }

    /// How many frames are due at `now_us` (at most [`MAX_CATCH_UP_INPUTS`] from elapsed time;
    /// the rest of a long stall is dropped), plus any jump.
    pub fn due(&mut self, now_us: u64) -> u32 {
        let Some(last) = self.last_us else { return 0 };
        self.last_us = Some(now_us.max(last));
        let real = now_us.saturating_sub(last);
        let elapsed = (real as f64 * self.speed()) as u64;
        // Running slow sends the coming frames that much later.
        self.bias_us += elapsed as i64 - real as i64;
        let tick = self.tick_us as i64;
        let cap = i64::from(MAX_CATCH_UP_INPUTS) * tick;
        if self.acc_us < cap {
            self.acc_us = (self.acc_us + i64::try_from(elapsed).unwrap_or(i64::MAX)).min(cap);
        }
        if self.acc_us < tick {
            return 0;
        }
        let due = self.acc_us / tick;
        self.acc_us -= due * tick;
        u32::try_from(due).unwrap_or(u32::MAX)
    }

    /// How far into the current tick the clock is, `0.0..1.0` (0 during a pause).
    #[must_use]
    pub fn fraction(&self) -> f32 {
        (self.acc_us.max(0) as f32 / self.tick_us.max(1) as f32).min(1.0)
    }

    /// Microseconds after the last [`InputClock::due`] until the next frame is due (for a
    /// driver that sleeps between frames).
    #[must_use]
    pub fn next_due_in_us(&self) -> u64 {
        let left = u64::try_from(self.tick_us as i64 - self.acc_us).unwrap_or(0);
        (left as f64 / self.speed()).ceil() as u64
    }

    /// Clock time per real time.
    fn speed(&self) -> f64 {
        1.0 + f64::from(self.rate) * DILATION
    }

    /// Takes a snapshot's report: `margin` ([`crate::client::Client::input_margin`]), the
    /// server's `echo` of the input slot it ran last, and the sequence number the client's
    /// next frame gets. Jumps, pauses or slows the clock as the module documentation says.
    pub fn on_report(&mut self, margin: Option<i16>, echo: Option<u32>, next_seq: u32) {
        if let Some(hold) = self.hold_until {
            if echo.is_none_or(|e| seq_after(hold, e)) {
                return;
            }
            self.hold_until = None;
        }
        let Some(margin) = margin else { return };
        self.stats.reports += 1;
        if self.margins.len() >= MARGIN_WINDOW {
            self.margins.pop_front();
        }
        self.margins.push_back(i64::from(margin) * 1_000 - self.bias_us);
        let Some(low) = self.low_margin_us() else { return };
        let tick = self.tick_us.max(1) as i64;
        let high = SAFETY_US + tick / 2;
        let step = if low < SAFETY_US {
            ((SAFETY_US - low) + tick - 1) / tick
        } else if low > high + PAUSE_ABOVE_TICKS * tick {
            -((low - high) / tick)
        } else {
            self.rate = if low > high { -1 } else { 0 };
            return;
        };
        let step = step.clamp(-MAX_STEP_TICKS, MAX_STEP_TICKS);
        self.rate = 0;
        self.acc_us += step * tick;
        self.bias_us += step * tick;
        // The next frame is the first with the new timing (sent early, or held back); once its
        // slot is echoed, its report has come.
        self.hold_until = Some(next_seq);
        let ticks = step.unsigned_abs();
        if step > 0 {
            self.stats.jumps += 1;
            self.stats.jumped_ticks += ticks;
        } else {
            self.stats.pauses += 1;
            self.stats.paused_ticks += ticks;
        }
    }

    /// The lowest kept report that is not an outlier (more than [`OUTLIER_US`] below their
    /// median), in microseconds as if sent with the clock's timing now, once there are
    /// [`MIN_REPORTS`].
    #[must_use]
    pub fn low_margin_us(&self) -> Option<i64> {
        if self.margins.len() < MIN_REPORTS {
            return None;
        }
        let mut sorted: Vec<i64> = self.margins.iter().copied().collect();
        sorted.sort_unstable();
        let median = sorted[sorted.len() / 2];
        let low = sorted.into_iter().find(|&m| m >= median - OUTLIER_US)?;
        Some(low + self.bias_us)
    }

    /// Takes over `old`'s counters (a clock restarted for a new session).
    pub fn carry_stats(&mut self, old: &InputClock) {
        self.stats = old.stats;
    }

    /// What the clock has done.
    #[must_use]
    pub fn stats(&self) -> TimeSyncStats {
        self.stats
    }
}

#[cfg(test)]
mod tests;
