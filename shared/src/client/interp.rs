//! Entity interpolation: remote entities are drawn a little in the past, between two snapshots
//! that both arrived, so they move smoothly even though snapshots come at a lower rate than
//! frames and arrive with jitter.
//!
//! The buffer is game-agnostic: it stores `(NetId, Vec2)` positions per snapshot tick and knows
//! nothing of components.
//!
//! **Clock.** The server's tick is not sent continuously, so it is estimated from the snapshots'
//! `(tick, arrival time)` pairs: each pair gives an offset `arrival_us - tick * tick_us`, and the
//! *minimum* over the last [`OFFSET_WINDOW`] pairs is the least-delayed packet's, a stable
//! estimate that a late packet cannot move. How far a snapshot's offset is above that minimum is
//! its lateness.
//!
//! **Delay (a jitter buffer).** Render time must stay behind the newest snapshot that arrived. If
//! render time is `d` behind the estimated server clock, the next snapshot, one interval after the
//! newest, comes in time when `d >= interval + its lateness`. So the delay is
//! [`BASE_DELAY_INTERVALS`] interval, plus the lateness most snapshots stay under
//! ([`JITTER_PERCENTILE`] of the window), plus one more interval while snapshots are being lost
//! ([`LOSS_EXTRA_INTERVALS`], [`LOSS_MEMORY_US`]: the one after a lost one comes two intervals
//! after the newest), plus [`SAFETY_MARGIN_US`]. A snapshot later than the percentile and most of
//! the margin cover (one that stalled or nearly did) is a spike: for [`SPIKE_MEMORY_US`] the delay
//! covers it too, up to [`SPIKE_MAX_INTERVALS`] (the percentile alone would let a hiccup every few
//! seconds stall every time). The delay grows at once when that sum does and shrinks slowly
//! ([`DELAY_DECAY_US`]), within [`MIN_DELAY_INTERVALS`] and [`MAX_DELAY_US`]. What it does not
//! chase: the snapshots queued in a burst behind a late one ([`BURST_INTERVALS`]), and lateness so
//! long that even [`MAX_DELAY_US`] would not hide it (a TCP retransmission of a lost snapshot):
//! those stall rather than delay everything.
//!
//! **Render time** is the estimated server tick minus [`InterpolationBuffer::delay_ticks`]. It
//! advances with the caller's clock and is steered toward that target by at most
//! [`MAX_SLEW`] of the elapsed time (up to [`MAX_CATCH_UP`] when it is more than an interval
//! behind, after a stall), so it never goes backwards and never jumps (except forward, after a
//! discontinuity larger than [`SNAP_FORWARD_US`]).
//!
//! **Extrapolation, then a stall.** When render time passes the newest snapshot (the next one is
//! lost or late), entities move on along their last velocity, from the newest snapshot and the
//! one before it (an entity not in the one before is held at its newest position), for at most
//! [`MAX_EXTRAPOLATION_INTERVALS`] past the newest snapshot: an extrapolation, counted once per
//! episode ([`InterpolationBuffer::extrapolations`], [`InterpolationBuffer::extrapolated_us`]).
//! When the next snapshot arrives, render time is before it (or at it), so entities are
//! interpolated from real data again: an extrapolation error lasts until then. Only render time
//! that reaches the limit is held there, with the positions of the limit, and a stall is counted
//! ([`InterpolationBuffer::stalls`]). Render time still never goes backwards.

use std::collections::VecDeque;

use glam::Vec2;

use crate::ids::NetId;
use crate::tick::Tick;

/// Snapshots kept. 32 is over a second at 30 snapshots/s, more than [`MAX_DELAY_US`] needs, so
/// the two snapshots around render time are always kept.
pub const MAX_SNAPSHOTS: usize = 32;

/// Arrival samples the clock offset and the lateness are measured over: about two
/// seconds at 30 snapshots/s, long enough to contain a least-delayed packet and enough lateness
/// samples for a 95th percentile, short enough to follow a route change or clock drift within
/// seconds.
pub const OFFSET_WINDOW: usize = 64;

/// The percentile of lateness (above the least-delayed packet) the delay covers: 95 %, the
/// 61st of 64 samples. That follows jitter, which every snapshot has, however large (up to
/// [`MAX_DELAY_US`]). The three latest in two seconds are left to the spike rule
/// ([`SPIKE_MEMORY_US`]), which chases a rare late snapshot only when it (nearly) stalled, and
/// only up to [`SPIKE_MAX_INTERVALS`]: with the maximum, one 200 ms delay would hold the delay
/// at 240 ms for everyone while it is in the window.
pub const JITTER_PERCENTILE: f64 = 0.95;

/// Base delay in snapshot intervals: the next snapshot is due one interval after the newest, so
/// with no lateness at all, one interval is what keeps render time behind the newest snapshot.
pub const BASE_DELAY_INTERVALS: f64 = 1.0;

/// Added to the delay for what the window's statistics do not see: a snapshot a little later
/// than the measured percentile, the least-delayed packet leaving the window (the clock estimate
/// moves back by the difference), and timer and scheduling noise of a millisecond or two on
/// either side. 8 ms, a quarter of a 30 Hz interval, keeps a clean link's delay within 1.5
/// intervals with a few milliseconds of measured lateness to spare.
pub const SAFETY_MARGIN_US: f64 = 8_000.0;

/// Snapshots arriving less than this many intervals after the previous one arrived together (a
/// burst: those queued behind a retransmitted one, or bunched by jitter longer than an
/// interval). Only the first of a burst counts as a lateness sample: the later ones are as late
/// as the first was, less their tick distance, and do not need a longer delay than it did. It
/// keeps one retransmission from filling the window with late samples.
pub const BURST_INTERVALS: f64 = 0.25;

/// A tick gap from the previous snapshot longer than this many intervals means at least one
/// snapshot is missing (lost, or skipped by the server for a slow client). Half an interval of
/// slack tolerates snapshot rates that do not divide the tick rate.
pub const LOSS_GAP_INTERVALS: f64 = 1.5;

/// Added to the delay while snapshots are being lost ([`LOSS_MEMORY_US`]): one interval, so
/// render time bridges one lost snapshot without a stall. Longer gaps (two lost in a row, rare
/// with random loss; an outage) are not chased.
pub const LOSS_EXTRA_INTERVALS: f64 = 1.0;

/// Snapshots are being lost while one went missing within this time: ten seconds. Loss is a
/// rate, and a rate needs a longer memory than the lateness window: at 2 % loss a snapshot goes
/// missing every 1.7 s on average, and ten seconds without one (a 0.25 % chance at that rate)
/// says the loss has stopped. A single missing snapshot costs one interval of delay for ten
/// seconds.
pub const LOSS_MEMORY_US: u64 = 10_000_000;

/// A snapshot is a spike when it was later than the jitter percentile covers by more than half the
/// [`SAFETY_MARGIN_US`] (without the spike rule, a near-stall or a stall); for this long after the
/// last one the delay covers the largest: ten seconds, so hiccups that recur every few seconds (a
/// busy machine, a garbage collector, a radio scan) stall once, not every time, and one that does
/// not recur costs its lateness for ten seconds.
pub const SPIKE_MEMORY_US: u64 = 10_000_000;

/// Spikes later than this many intervals are not chased: two (67 ms at 30 Hz). Longer ones (a
/// TCP retransmission, an outage) would hold a delay long enough to be felt for ten seconds;
/// a stall is the lesser harm.
pub const SPIKE_MAX_INTERVALS: f64 = 2.0;

/// When the delay needed falls, the delay follows with this time constant (its excess over what
/// is needed shrinks to 37 % in two seconds): jitter comes in bursts, so the delay stays ready
/// for a few seconds after the last one, then gives the latency back. It is on top of the
/// window, which remembers lateness for its own two seconds.
pub const DELAY_DECAY_US: f64 = 2_000_000.0;

/// The delay never drops below one snapshot interval: less, and render time would pass the
/// newest snapshot between arrivals even on a perfect network.
pub const MIN_DELAY_INTERVALS: f64 = 1.0;

/// The delay never exceeds 250 ms (unless one snapshot interval is longer): past that, remote
/// players lag too far behind to be worth smoothing; stalls are better than more lag.
pub const MAX_DELAY_US: f64 = 250_000.0;

/// Render time runs at most this much faster or slower than the caller's clock while it is
/// steered toward its target (±10 %): smooth enough to be invisible, fast enough to absorb a
/// change of a snapshot interval within a second or so.
pub const MAX_SLEW: f64 = 0.1;

/// Render time more than one snapshot interval behind its target (after a stall: it was held
/// while the clock ran on) runs up to this much faster than the caller's clock (+100 %, twice
/// as fast) until it is within an interval again. The stall already broke smoothness, and a
/// quarter second of quick motion after a 240 ms stall beats the 2.4 s that [`MAX_SLEW`] would
/// take, drawing everyone that much later all the while.
pub const MAX_CATCH_UP: f64 = 1.0;

/// When render time is behind its target by more than this (a long pause of the caller, or
/// the first snapshots after a stall), it jumps forward instead of catching up slowly: 500 ms
/// would take five seconds of 10 % fast motion.
pub const SNAP_FORWARD_US: f64 = 500_000.0;

/// Render time may pass the newest snapshot by at most this many snapshot intervals, entities
/// moving on along their last velocity, before it is held and a stall counted: one. The
/// snapshot after a single lost one is due one interval after the missing one, so one interval
/// bridges a loss the delay does not cover yet (the first one, before [`LOSS_EXTRA_INTERVALS`]
/// applies) and, on top of that extra interval, two lost in a row. A guess is wrong by as much
/// as the entity's velocity changed during it (one that stopped or turned is drawn moving on,
/// then put right when the next snapshot arrives): within one interval, by at most one
/// interval of motion, the distance between two snapshots that interpolation already draws
/// across. Longer, and the correction would be a jump larger than that; a stall is the lesser
/// harm.
pub const MAX_EXTRAPOLATION_INTERVALS: f64 = 1.0;

/// An entity is extrapolated only if its speed between the two newest snapshots is at most this
/// many times its speed between the two before: a walker that keeps walking, speeds up or slows
/// down is; a respawn or a teleport (a step many times the last), or a start from rest, is held
/// at its newest position instead of sent on along a jump.
pub const MAX_EXTRAPOLATED_SPEEDUP: f32 = 2.0;

/// A snapshot tick more than this many ticks away from the newest one (either way) restarts the
/// buffer: it is a new session or a broken clock, not a late packet. Ten minutes at 60 Hz.
pub const RESET_TICKS: i32 = 36_000;

/// One snapshot's positions.
#[derive(Clone, Debug)]
struct Entry {
    /// Ticks after [`InterpolationBuffer::origin`].
    tick: f64,
    /// Sorted by id, no duplicates.
    positions: Vec<(NetId, Vec2)>,
}

/// How one snapshot arrived.
#[derive(Clone, Copy, Debug)]
struct Arrival {
    /// `arrival_us - relative_tick * tick_us`.
    offset_us: f64,
    /// Whether it arrived in a burst with the previous one ([`BURST_INTERVALS`]).
    burst: bool,
}

/// Smooths remote entities' positions between snapshots; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct InterpolationBuffer {
    tick_us: f64,
    interval_us: f64,
    /// The tick all stored ticks are relative to (the first pushed, or the one after a reset).
    origin: Option<Tick>,
    newest: Option<Tick>,
    entries: VecDeque<Entry>,
    /// Recent snapshots' arrivals, oldest first.
    arrivals: VecDeque<Arrival>,
    /// When the newest snapshot arrived (the caller's clock).
    last_arrival_us: Option<u64>,
    /// Minimum offset of `arrivals`.
    offset_us: f64,
    /// Lateness at [`JITTER_PERCENTILE`] over `arrivals`, in microseconds.
    jitter_us: f64,
    /// When the last snapshot that followed a missing one arrived (the caller's clock).
    last_gap_us: Option<u64>,
    /// Whether snapshots are being lost ([`LOSS_MEMORY_US`]).
    lossy: bool,
    /// The largest spike's lateness within [`SPIKE_MEMORY_US`] (0 without one), and when the
    /// last spike arrived.
    spike: (f64, Option<u64>),
    /// The delay render time aims at, in microseconds.
    delay_us: f64,
    /// Render time in relative ticks, and the caller's clock when it was computed.
    render: Option<(f64, u64)>,
    /// How far render time was behind the estimated server clock at the last sample, µs.
    render_delay_us: Option<f64>,
    /// Whether render time was past the newest snapshot at the last sample.
    extrapolating: bool,
    extrapolations: u64,
    /// Render time spent past the newest snapshot, within the limit, in microseconds.
    extrapolated_us: f64,
    /// Whether render time was held at the extrapolation limit at the last sample.
    stalled: bool,
    stalls: u64,
}

impl InterpolationBuffer {
    /// A buffer for a server stepping `tick_rate` times a second and sending `snapshot_rate`
    /// snapshots a second (both from the welcome; zero is taken as one).
    #[must_use]
    pub fn new(tick_rate: u16, snapshot_rate: u16) -> Self {
        let tick_rate = f64::from(tick_rate.max(1));
        let snapshot_rate = f64::from(snapshot_rate.max(1));
        let mut buf = InterpolationBuffer {
            tick_us: 1e6 / tick_rate,
            interval_us: 1e6 / snapshot_rate,
            origin: None,
            newest: None,
            entries: VecDeque::with_capacity(MAX_SNAPSHOTS),
            arrivals: VecDeque::with_capacity(OFFSET_WINDOW),
            last_arrival_us: None,
            offset_us: 0.0,
            jitter_us: 0.0,
            last_gap_us: None,
            lossy: false,
            spike: (0.0, None),
            delay_us: 0.0,
            render: None,
            render_delay_us: None,
            extrapolating: false,
            extrapolations: 0,
            extrapolated_us: 0.0,
            stalled: false,
            stalls: 0,
        };
        buf.delay_us = buf.needed_delay_us();
        buf
    }

    /// Forgets everything but the rates and the stall and extrapolation counts.
    pub fn clear(&mut self) {
        self.origin = None;
        self.newest = None;
        self.entries.clear();
        self.arrivals.clear();
        self.last_arrival_us = None;
        self.offset_us = 0.0;
        self.jitter_us = 0.0;
        self.last_gap_us = None;
        self.lossy = false;
        self.spike = (0.0, None);
        self.delay_us = self.needed_delay_us();
        self.render = None;
        self.render_delay_us = None;
        self.extrapolating = false;
        self.stalled = false;
    }

    /// Adds the positions of the snapshot of `tick`, which arrived at `arrival_us` (the caller's
    /// clock). A tick not after the newest one is ignored (late or duplicate); duplicate ids keep
    /// their first position.
    pub fn push(
        &mut self,
        tick: Tick,
        arrival_us: u64,
        positions: impl IntoIterator<Item = (NetId, Vec2)>,
    ) {
        if let Some(newest) = self.newest {
            let ahead = tick.diff(newest);
            if ahead <= -RESET_TICKS || ahead > RESET_TICKS {
                self.clear();
            } else if ahead <= 0 {
                return;
            }
        }
        let origin = *self.origin.get_or_insert(tick);
        self.newest = Some(tick);
        let rel = f64::from(tick.diff(origin));
        let gap_us =
            self.entries.back().map_or(self.interval_us, |e| (rel - e.tick) * self.tick_us);
        // u64 microseconds fit f64 exactly up to 2^53 µs (285 years).
        let since_last_us = self.last_arrival_us.map(|t| arrival_us as f64 - t as f64);
        let arrival = Arrival {
            offset_us: arrival_us as f64 - rel * self.tick_us,
            burst: since_last_us.is_some_and(|dt| dt < BURST_INTERVALS * self.interval_us),
        };
        self.last_arrival_us = Some(arrival_us);
        if gap_us > LOSS_GAP_INTERVALS * self.interval_us {
            self.last_gap_us = Some(arrival_us);
        }
        self.lossy =
            self.last_gap_us.is_some_and(|t| arrival_us.saturating_sub(t) < LOSS_MEMORY_US);

        let mut positions: Vec<(NetId, Vec2)> = positions.into_iter().collect();
        positions.sort_by_key(|&(id, _)| id);
        positions.dedup_by_key(|&mut (id, _)| id);
        if self.entries.len() >= MAX_SNAPSHOTS {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry { tick: rel, positions });

        if self.arrivals.len() >= OFFSET_WINDOW {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(arrival);
        self.update_clock();
        self.update_spike(arrival, arrival_us);
        self.update_delay(since_last_us.unwrap_or(0.0));
    }

    /// Records `arrival` as a spike if it was later than the jitter covers (see
    /// [`SPIKE_MEMORY_US`]), and forgets the spike once that long has passed.
    fn update_spike(&mut self, arrival: Arrival, arrival_us: u64) {
        let (height, last) = self.spike;
        let fresh = last.is_some_and(|t| arrival_us.saturating_sub(t) < SPIKE_MEMORY_US);
        // Later than the percentile covers, by more than half the margin: without the spike
        // rule it would have (nearly) stalled.
        let late = arrival.offset_us - self.offset_us;
        let spiked = !arrival.burst
            && late > self.jitter_us + SAFETY_MARGIN_US / 2.0
            && late <= SPIKE_MAX_INTERVALS * self.interval_us;
        self.spike = match (spiked, fresh) {
            (true, true) => (height.max(late), Some(arrival_us)),
            (true, false) => (late, Some(arrival_us)),
            (false, true) => (height, last),
            (false, false) => (0.0, None),
        };
    }

    fn update_clock(&mut self) {
        let min = self.arrivals.iter().map(|a| a.offset_us).fold(f64::INFINITY, f64::min);
        self.offset_us = if min.is_finite() { min } else { 0.0 };
        // Lateness even the longest delay would not hide is not chased (see the module docs).
        let hideable = MAX_DELAY_US - BASE_DELAY_INTERVALS * self.interval_us - SAFETY_MARGIN_US;
        let mut lateness: Vec<f64> = self
            .arrivals
            .iter()
            .filter(|a| !a.burst)
            .map(|a| a.offset_us - self.offset_us)
            .filter(|&late| late <= hideable)
            .collect();
        lateness.sort_by(f64::total_cmp);
        let rank = ((lateness.len() as f64 - 1.0) * JITTER_PERCENTILE).round() as usize;
        self.jitter_us = lateness.get(rank).copied().unwrap_or(0.0);
    }

    /// The delay the current measurements call for, in microseconds, within its bounds.
    fn needed_delay_us(&self) -> f64 {
        let loss = if self.lossy { LOSS_EXTRA_INTERVALS } else { 0.0 };
        let late = self.jitter_us.max(self.spike.0);
        let delay = (BASE_DELAY_INTERVALS + loss) * self.interval_us + late + SAFETY_MARGIN_US;
        let min = MIN_DELAY_INTERVALS * self.interval_us;
        delay.clamp(min, MAX_DELAY_US.max(min))
    }

    /// Moves the delay to the target at once if that is longer, else lets it decay toward the
    /// target over the `elapsed_us` since the previous snapshot ([`DELAY_DECAY_US`]).
    fn update_delay(&mut self, elapsed_us: f64) {
        let target = self.needed_delay_us();
        self.delay_us = if target >= self.delay_us || !self.delay_us.is_finite() {
            target
        } else {
            let keep = (-elapsed_us.max(0.0) / DELAY_DECAY_US).exp();
            target + (self.delay_us - target) * keep
        };
    }

    /// The delay between the estimated server tick and render time, in ticks (see the
    /// [module documentation](self)): [`BASE_DELAY_INTERVALS`] snapshot interval, plus the
    /// measured jitter (or a recent spike, if later), plus [`LOSS_EXTRA_INTERVALS`] while
    /// snapshots are being lost, plus
    /// [`SAFETY_MARGIN_US`]; grown at once, shrunk over [`DELAY_DECAY_US`]; at least
    /// [`MIN_DELAY_INTERVALS`] interval and at most [`MAX_DELAY_US`] (or one interval, if
    /// longer).
    #[must_use]
    pub fn delay_ticks(&self) -> f32 {
        (self.delay_us / self.tick_us) as f32
    }

    /// [`InterpolationBuffer::delay_ticks`] in microseconds.
    #[must_use]
    pub fn delay_us(&self) -> f64 {
        self.delay_us
    }

    /// The measured jitter of snapshot arrivals ([`JITTER_PERCENTILE`] of their lateness), in
    /// microseconds.
    #[must_use]
    pub fn jitter_us(&self) -> f64 {
        self.jitter_us
    }

    /// How many times render time reached [`MAX_EXTRAPOLATION_INTERVALS`] past the newest
    /// snapshot and was held there (each stall counted once, however long it lasts). A stall is
    /// what is left after extrapolation: render time that passes the newest snapshot by less
    /// than the limit is an extrapolation ([`InterpolationBuffer::extrapolations`]), not a stall.
    /// Every stall was an extrapolation first (unless the limit is zero).
    #[must_use]
    pub fn stalls(&self) -> u64 {
        self.stalls
    }

    /// How many times render time passed the newest snapshot, entities moving on along their
    /// last velocity (each episode counted once, however long it lasts, and also when it ends
    /// in a stall).
    #[must_use]
    pub fn extrapolations(&self) -> u64 {
        self.extrapolations
    }

    /// The total render time drawn past the newest snapshot (extrapolated, up to the limit), in
    /// microseconds. Render time runs at about the caller's clock, so this is about how long
    /// entities were drawn from guesses; time held at the limit (a stall) is not included.
    #[must_use]
    pub fn extrapolated_us(&self) -> f64 {
        self.extrapolated_us
    }

    /// How far render time was behind the estimated server clock at the last
    /// [`InterpolationBuffer::sample`], in microseconds: the delay remote entities were drawn
    /// with. It is [`InterpolationBuffer::delay_ticks`] once render time has caught up with its
    /// target, also while render time runs past the newest snapshot (extrapolating: it is the
    /// moment that was drawn), and grows while render time is held at the extrapolation limit
    /// (a stall). `None` before the first sample of a snapshot.
    #[must_use]
    pub fn render_delay_us(&self) -> Option<f64> {
        self.render_delay_us
    }

    /// The render time of the last [`InterpolationBuffer::sample`], as a tick and a fraction:
    /// the moment of the world that was drawn. While extrapolating it is past the newest
    /// snapshot, by at most [`MAX_EXTRAPOLATION_INTERVALS`].
    #[must_use]
    pub fn render_tick(&self) -> Option<(Tick, f32)> {
        let (origin, (render, _)) = (self.origin?, self.render?);
        let whole = render.floor();
        Some((origin.plus(whole as i64 as u32), (render - whole) as f32))
    }

    /// Advances render time to `now_us` and returns it, in relative ticks, at most `limit`.
    fn advance(&mut self, now_us: u64, limit: f64) -> f64 {
        let delay = f64::from(self.delay_ticks());
        let target = (now_us as f64 - self.offset_us) / self.tick_us - delay;
        let render = match self.render {
            None => target,
            Some((render, then)) => {
                // A clock that went backwards counts as no time passing.
                let dt = now_us.saturating_sub(then) as f64 / self.tick_us;
                let error = target - (render + dt);
                let error_us = error * self.tick_us;
                let faster = if error_us > self.interval_us { MAX_CATCH_UP } else { MAX_SLEW };
                if error_us > SNAP_FORWARD_US {
                    target
                } else {
                    render + dt + error.clamp(-MAX_SLEW * dt, faster * dt)
                }
            }
        };
        // Never past the extrapolation limit, never backwards.
        let floor = self.render.map_or(f64::NEG_INFINITY, |(r, _)| r);
        let render = render.min(limit).max(floor);
        self.render = Some((render, now_us));
        self.render_delay_us = Some(now_us as f64 - self.offset_us - render * self.tick_us);
        render
    }

    /// The positions at render time for the caller's clock `now_us`: each entity of the later of
    /// the two snapshots around render time, interpolated from the earlier one (or at its own
    /// position if it was not in the earlier one). Before the first stored snapshot, its
    /// positions. Past the newest, each entity of the newest snapshot moved on along its velocity
    /// from the snapshot before (or held, if it was not in that one), up to
    /// [`MAX_EXTRAPOLATION_INTERVALS`] past the newest; render time is held there (a stall).
    pub fn sample(&mut self, now_us: u64) -> Vec<(NetId, Vec2)> {
        let Some(newest) = self.entries.back().map(|e| e.tick) else {
            return Vec::new();
        };
        let limit_ticks = MAX_EXTRAPOLATION_INTERVALS * self.interval_us / self.tick_us;
        let limit = newest + limit_ticks;
        let before = self.render.map(|(r, _)| r);
        let render = self.advance(now_us, limit);
        if render >= limit {
            if !self.stalled {
                self.stalled = true;
                self.stalls += 1;
            }
        } else {
            self.stalled = false;
        }
        if render > newest {
            if !self.extrapolating {
                self.extrapolating = true;
                self.extrapolations += 1;
            }
            // The part of this step past the newest snapshot, up to the limit.
            let from = before.map_or(newest, |b| b.max(newest));
            self.extrapolated_us += (render.min(limit) - from).max(0.0) * self.tick_us;
            return self.extrapolate(render);
        }
        self.extrapolating = false;
        if render >= newest {
            return self.entries.back().map(|e| e.positions.clone()).unwrap_or_default();
        }
        // The first entry after render time; entries are ascending and the newest is after it.
        let later_idx = self.entries.iter().position(|e| e.tick > render).unwrap_or(0);
        let Some(later) = self.entries.get(later_idx) else {
            return Vec::new();
        };
        let Some(earlier) = later_idx.checked_sub(1).and_then(|i| self.entries.get(i)) else {
            return later.positions.clone();
        };
        let span = later.tick - earlier.tick;
        let t = if span > 0.0 { ((render - earlier.tick) / span).clamp(0.0, 1.0) } else { 1.0 };
        let t = t as f32;
        later
            .positions
            .iter()
            .map(|&(id, to)| {
                let from = earlier
                    .positions
                    .binary_search_by_key(&id, |&(i, _)| i)
                    .map_or(to, |i| earlier.positions[i].1);
                (id, from.lerp(to, t))
            })
            .collect()
    }

    /// The positions at `render`, past the newest snapshot: each entity of the newest snapshot
    /// moved on along its velocity between the snapshot before and the newest, or held at its
    /// newest position when that velocity is not a motion to go on with: the entity was not in
    /// the two snapshots before (it just appeared, or there are none), or its last step was more
    /// than [`MAX_EXTRAPOLATED_SPEEDUP`] times as fast as the one before (a respawn, a teleport,
    /// a start from rest: going on with a jump would draw it far from anywhere it could be).
    fn extrapolate(&self, render: f64) -> Vec<(NetId, Vec2)> {
        let mut newest_first = self.entries.iter().rev();
        let Some(newest) = newest_first.next() else {
            return Vec::new();
        };
        let (Some(previous), Some(before)) = (newest_first.next(), newest_first.next()) else {
            return newest.positions.clone();
        };
        let find = |entry: &Entry, id: NetId| {
            entry
                .positions
                .binary_search_by_key(&id, |&(i, _)| i)
                .ok()
                .map(|i| entry.positions[i].1)
        };
        let span = (newest.tick - previous.tick) as f32;
        let span_before = (previous.tick - before.tick) as f32;
        // How many ticks past the newest snapshot.
        let ahead = (render - newest.tick) as f32;
        newest
            .positions
            .iter()
            .map(|&(id, to)| {
                let (Some(from), Some(earlier)) = (find(previous, id), find(before, id)) else {
                    return (id, to);
                };
                let velocity = (to - from) / span;
                let velocity_before = (from - earlier) / span_before;
                if velocity.length() > MAX_EXTRAPOLATED_SPEEDUP * velocity_before.length() {
                    return (id, to);
                }
                (id, to + velocity * ahead)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::conditioner::{ConditionerSpec, DelayQueue, Delivery};

    const TICK_RATE: u16 = 60;
    const SNAP_RATE: u16 = 30;
    /// Microseconds per snapshot at 30 Hz.
    const INTERVAL: u64 = 33_333;

    fn pos(tick: u32) -> Vec2 {
        Vec2::new(tick as f32, 2.0 * tick as f32)
    }

    /// Pushes snapshot `i` (tick `2 i`) arriving at `base + i * INTERVAL + jitter`.
    fn push_steady(buf: &mut InterpolationBuffer, i: u32, jitter: u64) {
        let tick = Tick(1000 + 2 * i);
        buf.push(tick, 5_000_000 + u64::from(i) * INTERVAL + jitter, [(NetId(7), pos(tick.0))]);
    }

    fn delay_ms(buf: &InterpolationBuffer) -> f64 {
        f64::from(buf.delay_ticks()) * 1000.0 / f64::from(TICK_RATE)
    }

    #[test]
    fn delay_at_30_hz_without_jitter_is_within_target() {
        let mut buf = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        for i in 0..40 {
            push_steady(&mut buf, i, 0);
        }
        let interval_ms = 1000.0 / f64::from(SNAP_RATE);
        assert!(delay_ms(&buf) <= 1.5 * interval_ms, "delay {} ms", delay_ms(&buf));
        assert!(delay_ms(&buf) >= interval_ms - 1e-3, "delay {} ms", delay_ms(&buf));
    }

    #[test]
    fn delay_grows_with_jitter_but_is_capped() {
        let mut clean = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        let mut buf = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        for i in 0..40 {
            push_steady(&mut clean, i, 0);
            push_steady(&mut buf, i, u64::from(i % 3) * 20_000);
        }
        assert!(buf.delay_ticks() > clean.delay_ticks() + 1.0, "delay {}", buf.delay_ticks());
        // Every other snapshot 2 s late: no delay within the cap hides that, so it is not
        // chased.
        let mut wild = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        for i in 0..40 {
            push_steady(&mut wild, i, u64::from(i % 2) * 2_000_000);
        }
        assert!((wild.delay_ticks() - clean.delay_ticks()).abs() < 1e-3, "{}", wild.delay_ticks());
        // Every other snapshot 200 ms late and every third one lost: capped.
        let mut capped = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        for i in (0..60).filter(|i| i % 3 != 1) {
            push_steady(&mut capped, i, u64::from(i % 2) * 200_000);
        }
        let max_ticks = (MAX_DELAY_US / 1e6 * f64::from(TICK_RATE)) as f32;
        assert!((capped.delay_ticks() - max_ticks).abs() < 1e-3, "delay {}", capped.delay_ticks());
    }

    #[test]
    fn steady_snapshots_interpolate_between_neighbours_monotonically() {
        let mut buf = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        let mut last_x = f32::NEG_INFINITY;
        let mut between = 0;
        // Frames at 120 Hz, snapshots at 30 Hz.
        for frame in 0..480u64 {
            let now = 5_000_000 + frame * 8_333;
            while let Some(i) = (0..=frame as u32 / 4).find(|&i| {
                let arrival = 5_000_000 + u64::from(i) * INTERVAL;
                arrival <= now && buf.newest.is_none_or(|n| Tick(1000 + 2 * i).is_after(n))
            }) {
                push_steady(&mut buf, i, 0);
            }
            let out = buf.sample(now);
            assert_eq!(out.len(), 1);
            let (id, p) = out[0];
            assert_eq!(id, NetId(7));
            // On the line the entity moves along.
            assert!((p.y - 2.0 * p.x).abs() < 1e-3, "{p}");
            assert!(p.x >= last_x, "went back from {last_x} to {}", p.x);
            if frame > 20 {
                // Strictly between two snapshot positions (ticks are 2 apart) at some frames.
                if p.x.fract() != 0.0 || (p.x as u32) % 2 == 1 {
                    between += 1;
                }
                let newest = buf.newest.map(|t| t.0 as f32).unwrap_or_default();
                assert!(p.x < newest, "render time reached the newest snapshot {}", p.x);
                assert!(p.x > newest - 8.0, "render time lags too far: {} vs {newest}", p.x);
            }
            last_x = p.x;
        }
        assert!(between > 100, "only {between} frames were interpolated");
        assert_eq!(buf.stalls(), 0);
    }

    #[test]
    fn jittered_arrivals_keep_render_time_monotonic() {
        let mut buf = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        // Deterministic pseudo-random jitter of up to 40 ms, arrivals possibly out of order.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut arrivals: Vec<(u64, u32)> = (0..200u32)
            .map(|i| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                (5_000_000 + u64::from(i) * INTERVAL + seed % 40_000, i)
            })
            .collect();
        arrivals.sort_unstable();
        let mut next = 0;
        let mut last_render = f64::NEG_INFINITY;
        let mut last_x = f32::NEG_INFINITY;
        for frame in 0..800u64 {
            let now = 5_000_000 + frame * 8_333;
            while next < arrivals.len() && arrivals[next].0 <= now {
                let (at, i) = arrivals[next];
                let tick = Tick(1000 + 2 * i);
                buf.push(tick, at, [(NetId(7), pos(tick.0))]);
                next += 1;
            }
            let out = buf.sample(now);
            let Some((render, _)) = buf.render else {
                assert!(out.is_empty(), "positions before any snapshot");
                continue;
            };
            assert!(render >= last_render, "render time went back {last_render} -> {render}");
            let x = out[0].1.x;
            assert!(x >= last_x, "position went back {last_x} -> {x}");
            last_render = render;
            last_x = x;
        }
        assert!(buf.jitter_us() > 10_000.0, "jitter {}", buf.jitter_us());
        // The delay absorbs the measured jitter: render time rarely catches up with the data.
        assert!(buf.stalls() <= 2, "{} stalls", buf.stalls());
        let delay_ms = f64::from(buf.delay_ticks()) * 1000.0 / f64::from(TICK_RATE);
        assert!(delay_ms > 80.0 && delay_ms < 120.0, "delay {delay_ms} ms");
    }

    /// The render time of `buf`'s last sample, in absolute ticks.
    fn render_at(buf: &InterpolationBuffer) -> f64 {
        let (tick, frac) = buf.render_tick().unwrap();
        f64::from(tick.0) + f64::from(frac)
    }

    #[test]
    fn a_lost_snapshot_is_extrapolated_along_the_velocity_then_interpolated_again() {
        let mut buf = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        for i in 0..20 {
            push_steady(&mut buf, i, 0);
            let _ = buf.sample(5_000_000 + u64::from(i) * INTERVAL);
        }
        // Snapshot 20 (tick 1040) is lost; snapshot 21 (tick 1042) arrives on time. With the
        // clean link's delay (an interval and the margin, 41 ms) render time passes tick 1038
        // 41 ms after snapshot 19 arrived, 25 ms before snapshot 21 does.
        let arrival_21 = 5_000_000 + 21 * INTERVAL;
        let mut now = 5_000_000 + 19 * INTERVAL;
        let mut last_render = f64::NEG_INFINITY;
        let mut past_newest = 0;
        while now < arrival_21 {
            let out = buf.sample(now);
            let render = render_at(&buf);
            assert!(render >= last_render, "render time went back {last_render} -> {render}");
            assert!(render < 1040.0, "render time {render} reached the limit");
            if render > 1038.0 {
                past_newest += 1;
                // Moving on at a tick per tick in x, two in y, exactly where it would be.
                let (id, p) = out[0];
                assert_eq!(id, NetId(7));
                assert!((f64::from(p.x) - render).abs() < 1e-3, "{p} at {render}");
                assert!((f64::from(p.y) - 2.0 * render).abs() < 2e-3, "{p} at {render}");
                // Drawn as far behind the server as aimed at.
                let drawn = buf.render_delay_us().unwrap();
                assert!((drawn - buf.delay_us()).abs() < 1.0, "{drawn} vs {}", buf.delay_us());
            }
            last_render = render;
            now += 2_000;
        }
        assert!(past_newest > 2, "{past_newest} samples past the newest snapshot");
        assert_eq!(buf.stalls(), 0);
        assert_eq!(buf.extrapolations(), 1);
        // Render time past the newest snapshot, all of it extrapolated.
        let extrapolated = buf.extrapolated_us();
        let expected = (last_render - 1038.0) * 1e6 / f64::from(TICK_RATE);
        assert!((extrapolated - expected).abs() < 1.0, "{extrapolated} vs {expected} µs");
        // Snapshot 21 says the entity stopped at tick 1038's position: from now on it is drawn
        // from that, not from the guess, and render time goes on from where it was.
        buf.push(Tick(1042), arrival_21, [(NetId(7), pos(1038))]);
        let out = buf.sample(arrival_21);
        let render = render_at(&buf);
        assert!(render >= last_render && render < 1042.0, "{last_render} -> {render}");
        assert_eq!(out.len(), 1);
        assert!(out[0].1.distance(pos(1038)) < 1e-3, "interpolated: {}", out[0].1);
        assert_eq!(buf.extrapolations(), 1);
        assert_eq!(buf.stalls(), 0);
        assert_eq!(buf.extrapolated_us(), extrapolated);
    }

    #[test]
    fn an_entity_only_in_the_newest_snapshot_is_held_while_extrapolating() {
        let mut buf = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        for i in 0..19 {
            push_steady(&mut buf, i, 0);
            let _ = buf.sample(5_000_000 + u64::from(i) * INTERVAL);
        }
        // Entity 8 appears in snapshot 19 (tick 1038); snapshot 20 is lost.
        buf.push(
            Tick(1038),
            5_000_000 + 19 * INTERVAL,
            [(NetId(7), pos(1038)), (NetId(8), Vec2::new(5.0, 6.0))],
        );
        let out = buf.sample(5_000_000 + 19 * INTERVAL + 55_000);
        let render = render_at(&buf);
        assert!(render > 1038.5 && render < 1040.0, "render time {render}");
        assert_eq!(buf.extrapolations(), 1);
        assert_eq!(out.len(), 2);
        assert!((f64::from(out[0].1.x) - render).abs() < 1e-3, "entity 7 moves on: {}", out[0].1);
        assert_eq!(out[1], (NetId(8), Vec2::new(5.0, 6.0)), "entity 8 is held");
    }

    #[test]
    fn a_jump_is_held_not_extrapolated() {
        let mut buf = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        for i in 0..19 {
            push_steady(&mut buf, i, 0);
            let _ = buf.sample(5_000_000 + u64::from(i) * INTERVAL);
        }
        // In snapshot 19 (tick 1038) entity 7 respawns 500 units away; snapshot 20 is lost.
        buf.push(Tick(1038), 5_000_000 + 19 * INTERVAL, [(NetId(7), Vec2::new(-500.0, 0.0))]);
        let out = buf.sample(5_000_000 + 19 * INTERVAL + 55_000);
        let render = render_at(&buf);
        assert!(render > 1038.5 && render < 1040.0, "render time {render}");
        assert_eq!(buf.extrapolations(), 1);
        assert_eq!(out, vec![(NetId(7), Vec2::new(-500.0, 0.0))], "held where it respawned");
    }

    #[test]
    fn a_walker_that_slows_down_is_extrapolated_at_its_new_speed() {
        let mut buf = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        for i in 0..19 {
            push_steady(&mut buf, i, 0);
            let _ = buf.sample(5_000_000 + u64::from(i) * INTERVAL);
        }
        // Half speed from tick 1036 to 1038 (one unit in x, two in y); snapshot 20 is lost.
        let slowed = pos(1036) + Vec2::new(1.0, 2.0);
        buf.push(Tick(1038), 5_000_000 + 19 * INTERVAL, [(NetId(7), slowed)]);
        let out = buf.sample(5_000_000 + 19 * INTERVAL + 55_000);
        let ahead = (render_at(&buf) - 1038.0) as f32;
        assert!(ahead > 0.5, "{ahead} ticks past the newest snapshot");
        let expected = slowed + Vec2::new(0.5, 1.0) * ahead;
        assert!(out[0].1.distance(expected) < 1e-3, "{} vs {expected}", out[0].1);
    }

    #[test]
    fn gap_longer_than_the_extrapolation_limit_counts_a_stall_and_holds() {
        let mut buf = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        for i in 0..10 {
            push_steady(&mut buf, i, 0);
            let _ = buf.sample(5_000_000 + u64::from(i) * INTERVAL);
        }
        assert_eq!(buf.stalls(), 0);
        // Nothing for a second. Render time passes the newest snapshot (tick 1018) and moves on
        // for one interval (two ticks), then it is held there.
        let mut held = Vec::new();
        let mut extrapolated = 0;
        for k in 1..=250 {
            held = buf.sample(5_000_000 + 9 * INTERVAL + k * 4_000);
            let render = render_at(&buf);
            assert!(render <= 1020.0, "render time {render} past the limit");
            if render > 1018.0 && render < 1020.0 {
                extrapolated += 1;
                assert_eq!(buf.stalls(), 0, "extrapolating at {render}");
            }
        }
        assert!(extrapolated > 3, "{extrapolated} samples extrapolated");
        assert_eq!(buf.stalls(), 1, "one stall, counted once");
        assert_eq!(buf.extrapolations(), 1, "one extrapolation, counted once");
        assert_eq!(render_at(&buf), 1020.0, "held at the limit");
        assert_eq!(held, vec![(NetId(7), pos(1020))], "held where the extrapolation stopped");
        let limit_us = MAX_EXTRAPOLATION_INTERVALS * f64::from(INTERVAL as u32);
        assert!((buf.extrapolated_us() - limit_us).abs() < 10.0, "{}", buf.extrapolated_us());
        // Snapshots resume: the stall ends.
        for i in 40..50 {
            push_steady(&mut buf, i, 0);
            let _ = buf.sample(5_000_000 + u64::from(i) * INTERVAL + 5_000);
        }
        let out = buf.sample(5_000_000 + 49 * INTERVAL + 10_000);
        assert!(out[0].1.x < 1098.0, "interpolating again: {}", out[0].1.x);
        assert_eq!(buf.stalls(), 1);
    }

    #[test]
    fn entity_missing_from_later_snapshot_is_dropped_new_one_appears() {
        let mut buf = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        buf.push(Tick(10), 1_000_000, [(NetId(1), Vec2::ZERO), (NetId(2), Vec2::ONE)]);
        buf.push(Tick(12), 1_033_333, [(NetId(2), Vec2::splat(3.0)), (NetId(3), Vec2::X)]);
        buf.push(Tick(14), 1_066_666, [(NetId(2), Vec2::splat(5.0)), (NetId(3), Vec2::X)]);
        // At the last arrival the server is at relative tick 4; minus the delay of about 2.5
        // ticks (one interval and the safety margin), render time is about tick 11.5: between
        // the first two snapshots.
        let out = buf.sample(1_066_666);
        let ids: Vec<NetId> = out.iter().map(|&(id, _)| id).collect();
        assert_eq!(ids, vec![NetId(2), NetId(3)]);
        let p2 = out[0].1;
        assert!(p2.x > 1.0 && p2.x < 3.0, "{p2}");
        assert_eq!(out[1].1, Vec2::X);
    }

    #[test]
    fn empty_and_hostile_inputs_do_not_panic() {
        let mut buf = InterpolationBuffer::new(0, 0);
        assert!(buf.sample(0).is_empty());
        buf.push(Tick(u32::MAX), u64::MAX, []);
        buf.push(Tick(0), 0, [(NetId(1), Vec2::NAN)]);
        buf.push(Tick(1 << 31), 3, [(NetId(1), Vec2::INFINITY)]);
        let _ = buf.sample(u64::MAX);
        let _ = buf.sample(0);
        assert!(buf.delay_ticks().is_finite());
    }

    /// Microseconds between the bots' samples of the buffer (their 60 fps render loop).
    const FRAME_US: u64 = 16_000;

    /// The client's clock at the start of a [`Sim`].
    const EPOCH_US: u64 = 5_000_000;

    /// Snapshot `i` (tick `1000 + 2 i`) sent at `i / SNAP_RATE` seconds through a conditioned
    /// link, the buffer sampled every [`FRAME_US`], all in virtual time.
    struct Sim {
        buf: InterpolationBuffer,
        /// Every link used so far; snapshots go through the last one, the others deliver what
        /// is still in flight.
        links: Vec<DelayQueue<u32>>,
        delivery: Delivery,
        /// Every this many snapshots one is sent this much later (a hiccup of the sender or the
        /// network); `None` for never.
        hiccup: Option<(u32, u64)>,
        next_snapshot: u32,
        next_frame_us: u64,
        /// The snapshots pushed into the buffer, in arrival order.
        delivered: Vec<u32>,
    }

    impl Sim {
        fn new(link: &str, delivery: Delivery, seed: u64) -> Sim {
            let mut sim = Sim {
                buf: InterpolationBuffer::new(TICK_RATE, SNAP_RATE),
                links: Vec::new(),
                delivery,
                hiccup: None,
                next_snapshot: 0,
                next_frame_us: 0,
                delivered: Vec::new(),
            };
            sim.set_link(link, seed);
            sim
        }

        /// Later snapshots travel through `link` (`latency=…,jitter=…`, empty for none).
        fn set_link(&mut self, link: &str, seed: u64) {
            let spec: ConditionerSpec = link.parse().unwrap();
            self.links.push(DelayQueue::new(spec, seed));
        }

        /// Runs until `until_us` after the start; returns the delays of every sample.
        fn run_until(&mut self, until_us: u64) -> Delays {
            let mut delays = Delays::default();
            loop {
                let send_us = u64::from(self.next_snapshot) * 1_000_000 / u64::from(SNAP_RATE);
                let due_us = self.links.iter().filter_map(DelayQueue::next_due).min();
                // Rounded up, so the message is due at that microsecond.
                let due_us = due_us.map_or(u64::MAX, |d| d.as_nanos().div_ceil(1_000) as u64);
                let now_us = send_us.min(self.next_frame_us).min(due_us);
                if now_us > until_us {
                    return delays;
                }
                let now = Duration::from_micros(now_us);
                if now_us == send_us {
                    let i = self.next_snapshot;
                    let late = match self.hiccup {
                        Some((every, us)) if i > 0 && i.is_multiple_of(every) => us,
                        _ => 0,
                    };
                    let link = self.links.last_mut().unwrap();
                    link.push(now + Duration::from_micros(late), i, self.delivery);
                    self.next_snapshot += 1;
                }
                for link in &mut self.links {
                    while let Some(i) = link.pop_due(now) {
                        let tick = Tick(1000 + 2 * i);
                        self.buf.push(tick, EPOCH_US + now_us, [(NetId(7), pos(tick.0))]);
                        self.delivered.push(i);
                    }
                }
                if now_us == self.next_frame_us {
                    let _ = self.buf.sample(EPOCH_US + now_us);
                    if let Some(us) = self.buf.render_delay_us() {
                        delays.drawn.push(us / 1e3);
                        delays.target.push(delay_ms(&self.buf));
                    }
                    self.next_frame_us += FRAME_US;
                }
            }
        }
    }

    /// What a [`Sim`] measured at each sample, in milliseconds.
    #[derive(Default)]
    struct Delays {
        /// How far behind the estimated server clock entities were drawn
        /// ([`InterpolationBuffer::render_delay_us`]).
        drawn: Vec<f64>,
        /// The delay aimed at ([`InterpolationBuffer::delay_ticks`]).
        target: Vec<f64>,
    }

    /// The `q` quantile (nearest rank) of `values`.
    fn quantile(values: &[f64], q: f64) -> f64 {
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    const SECOND: u64 = 1_000_000;
    const INTERVAL_MS: f64 = 1000.0 / SNAP_RATE as f64;

    #[test]
    fn clean_link_delay_stays_within_one_and_a_half_intervals_without_stalls() {
        for link in ["", "latency=100ms"] {
            let mut sim = Sim::new(link, Delivery::Ordered, 1);
            let _warm_up = sim.run_until(2 * SECOND);
            let delays = sim.run_until(62 * SECOND);
            assert!(delays.drawn.len() > 3_700, "{link}: {} samples", delays.drawn.len());
            for (what, values) in [("drawn", &delays.drawn), ("target", &delays.target)] {
                let max = quantile(values, 1.0);
                assert!(max <= 1.5 * INTERVAL_MS, "{link}: {what} delay up to {max} ms");
            }
            assert_eq!(sim.buf.stalls(), 0, "{link}");
        }
    }

    #[test]
    fn twenty_ms_of_jitter_never_stalls_and_the_delay_stays_within_two_and_a_half_intervals() {
        for delivery in [Delivery::Ordered, Delivery::Datagram] {
            for seed in 1..=3 {
                let mut sim = Sim::new("latency=100ms,jitter=20ms", delivery, seed);
                let _warm_up = sim.run_until(3 * SECOND);
                let stalls = sim.buf.stalls();
                let delays = sim.run_until(63 * SECOND);
                let case = format!("{delivery:?}, seed {seed}");
                assert_eq!(sim.buf.stalls(), stalls, "{case}: stalls after the warm-up");
                let max = quantile(&delays.drawn, 1.0);
                assert!(max <= 2.5 * INTERVAL_MS, "{case}: delay up to {max} ms");
                // It grew by about the jitter: more than a clean link's.
                let p50 = quantile(&delays.drawn, 0.5);
                assert!(p50 > 1.5 * INTERVAL_MS, "{case}: median delay {p50} ms");
            }
        }
    }

    #[test]
    fn the_delay_shrinks_back_slowly_after_the_jitter_stops() {
        let mut sim = Sim::new("latency=100ms,jitter=20ms", Delivery::Ordered, 4);
        let _warm_up = sim.run_until(3 * SECOND);
        let jittery = sim.run_until(20 * SECOND);
        let stalls = sim.buf.stalls();
        sim.set_link("latency=100ms", 5);
        let window = sim.run_until(22 * SECOND);
        let decay = sim.run_until(23 * SECOND);
        let then = sim.run_until(30 * SECOND);
        let later = sim.run_until(40 * SECOND);
        assert_eq!(sim.buf.stalls(), stalls, "no stall while shrinking");
        let before = quantile(&jittery.target, 0.5);
        // Not at once: while the lateness is in the window the delay stays what it was, and for
        // a while after that it is still longer than a clean link's.
        let after = quantile(&window.target, 0.0);
        assert!(after > before - 2.0, "{before} ms, then {after} ms");
        let decaying = quantile(&decay.target, 0.0);
        assert!(decaying > 1.5 * INTERVAL_MS, "{decaying} ms");
        // Within ten seconds, back to a clean link's.
        let shortest = quantile(&then.drawn, 0.0);
        assert!(shortest <= 1.5 * INTERVAL_MS, "{shortest} ms");
        let longest = quantile(&later.drawn, 1.0);
        assert!(longest <= 1.5 * INTERVAL_MS, "{longest} ms");
    }

    #[test]
    fn lost_datagrams_add_an_interval_and_stall_only_when_two_are_lost_in_a_row() {
        let mut sim = Sim::new("latency=100ms,jitter=20ms,loss=2%", Delivery::Datagram, 6);
        let _warm_up = sim.run_until(5 * SECOND);
        let stalls = sim.buf.stalls();
        let lost = sim.links[0].stats().lost;
        let delays = sim.run_until(65 * SECOND);
        let lost = sim.links[0].stats().lost - lost;
        assert!(lost > 20, "{lost} lost");
        let stalls = sim.buf.stalls() - stalls;
        assert!(stalls <= 1, "{stalls} stalls for {lost} lost snapshots");
        let (p50, max) = (quantile(&delays.drawn, 0.5), quantile(&delays.drawn, 1.0));
        assert!(p50 > 2.0 * INTERVAL_MS && max <= 3.0 * INTERVAL_MS, "delay {p50} / {max} ms");
    }

    #[test]
    fn two_percent_datagram_loss_is_extrapolated_over_without_a_stall() {
        // The bots' lossy link, from the first snapshot: the first loss comes before the loss
        // rule has seen a gap, and two in a row happen. Three in a row (a gap of four
        // intervals, about once in 70 minutes at 30 Hz) may stall.
        let (mut two_in_a_row, mut extrapolations) = (0, 0);
        for seed in 1..=8 {
            let mut sim = Sim::new("latency=100ms,jitter=20ms,loss=2%", Delivery::Datagram, seed);
            let _ = sim.run_until(60 * SECOND);
            let lost = sim.links[0].stats().lost;
            assert!(lost > 20, "seed {seed}: {lost} lost");
            // Jitter is shorter than an interval: snapshots arrive in order.
            let gaps: Vec<u32> = sim.delivered.windows(2).map(|w| w[1] - w[0]).collect();
            assert!(gaps.iter().all(|&g| g >= 1), "seed {seed}: out of order");
            two_in_a_row += gaps.iter().filter(|&&g| g == 3).count();
            let three_or_more = gaps.iter().filter(|&&g| g >= 4).count() as u64;
            let stalls = sim.buf.stalls();
            assert!(stalls <= three_or_more, "seed {seed}: {stalls} stalls for {lost} lost");
            extrapolations += sim.buf.extrapolations();
        }
        assert!(two_in_a_row >= 1, "never two lost in a row");
        // Some losses the delay covered; the others were extrapolated over.
        assert!(extrapolations >= 4, "{extrapolations} extrapolations");
    }

    #[test]
    fn a_retransmitted_snapshot_stalls_instead_of_delaying_everyone() {
        // Over TCP a lost snapshot comes a retransmission (240 ms) late, and the ones behind it
        // with it: longer than any delay within the cap could hide.
        let mut sim = Sim::new("latency=100ms,jitter=20ms,loss=2%", Delivery::Ordered, 7);
        let _warm_up = sim.run_until(3 * SECOND);
        let stalls = sim.buf.stalls();
        let delays = sim.run_until(63 * SECOND);
        let retransmitted = sim.links[0].stats().retransmitted;
        assert!(retransmitted > 20, "{retransmitted} retransmitted");
        let stalls = sim.buf.stalls() - stalls;
        assert!(stalls * 2 > retransmitted, "{stalls} stalls, {retransmitted} retransmitted");
        // The delay aimed at stays what 20 ms of jitter needs. Entities are drawn later only
        // during a stall and while render time catches up after it.
        let target = quantile(&delays.target, 1.0);
        assert!(target <= 2.5 * INTERVAL_MS, "delay up to {target} ms");
        let p50 = quantile(&delays.drawn, 0.5);
        assert!(p50 <= 2.5 * INTERVAL_MS, "median delay {p50} ms");
    }

    #[test]
    fn recurring_hiccups_are_extrapolated_once_then_the_delay_covers_them() {
        // On a clean link, one snapshot in 150 (every 5 s) comes 40 ms late, and the next one
        // with it (TCP keeps the order). The first one is within the clean link's delay and an
        // interval of extrapolation; the spike rule then covers the others.
        let mut sim = Sim::new("latency=100ms", Delivery::Ordered, 8);
        sim.hiccup = Some((150, 40_000));
        let quiet = sim.run_until(4 * SECOND);
        let quiet = quantile(&quiet.target, 1.0);
        assert!(quiet <= 1.5 * INTERVAL_MS, "{quiet} ms before the first hiccup");
        let delays = sim.run_until(64 * SECOND);
        assert_eq!(sim.buf.stalls(), 0, "no hiccup stalls");
        assert_eq!(sim.buf.extrapolations(), 1, "only the first hiccup is extrapolated");
        let covering = quantile(&delays.target, 0.5);
        assert!(
            (INTERVAL_MS + 40.0..=2.5 * INTERVAL_MS).contains(&covering),
            "median delay {covering} ms"
        );
        // Once they stop, the delay goes back to a clean link's.
        sim.hiccup = None;
        let _ = sim.run_until(80 * SECOND);
        let after = quantile(&sim.run_until(85 * SECOND).target, 1.0);
        assert!(after <= 1.5 * INTERVAL_MS, "{after} ms after the hiccups stopped");
        // A hiccup of three intervals is not chased: each one is extrapolated, then stalls.
        let mut long = Sim::new("latency=100ms", Delivery::Ordered, 9);
        long.hiccup = Some((150, 100_000));
        let delays = long.run_until(64 * SECOND);
        assert!(long.buf.stalls() >= 11, "{} stalls", long.buf.stalls());
        assert_eq!(long.buf.extrapolations(), long.buf.stalls());
        let longest = quantile(&delays.target, 1.0);
        assert!(longest <= 1.5 * INTERVAL_MS, "delay up to {longest} ms");
    }
}
