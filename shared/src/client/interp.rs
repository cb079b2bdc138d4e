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
//! estimate that a late packet cannot move. The spread above that minimum (its 90th percentile)
//! is the measured jitter.
//!
//! **Render time** is the estimated server tick minus [`InterpolationBuffer::delay_ticks`]. It
//! advances with the caller's clock and is steered toward that target by at most
//! [`MAX_SLEW`] of the elapsed time, so it never goes backwards and never jumps (except forward,
//! after a discontinuity larger than [`SNAP_FORWARD_US`]). It never passes the newest snapshot:
//! when no later snapshot exists the last positions are held and a stall is counted.

use std::collections::VecDeque;

use glam::Vec2;

use crate::ids::NetId;
use crate::tick::Tick;

/// Snapshots kept. 32 is over a second at 30 snapshots/s, more than [`MAX_DELAY_US`] needs, so
/// the two snapshots around render time are always kept.
pub const MAX_SNAPSHOTS: usize = 32;

/// Arrival samples the clock offset and jitter are measured over: about two seconds at
/// 30 snapshots/s, long enough to contain a least-delayed packet, short enough to follow a route
/// change or clock drift within seconds.
pub const OFFSET_WINDOW: usize = 64;

/// The percentile of arrival delay (above the least-delayed packet) taken as the jitter: 90 %,
/// so the occasional very late packet does not double the delay for everyone.
pub const JITTER_PERCENTILE: f64 = 0.9;

/// Base delay in snapshot intervals: with two, one snapshot can be lost (or late by an interval)
/// without a stall. At 30 snapshots/s that is 66.7 ms, the design target (<= 67 ms).
pub const BASE_DELAY_INTERVALS: f64 = 2.0;

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

/// When render time is behind its target by more than this (a long pause of the caller, or
/// the first snapshots after a stall), it jumps forward instead of catching up slowly: 500 ms
/// would take five seconds of 10 % fast motion.
pub const SNAP_FORWARD_US: f64 = 500_000.0;

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

/// Smooths remote entities' positions between snapshots; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct InterpolationBuffer {
    tick_us: f64,
    interval_us: f64,
    /// The tick all stored ticks are relative to (the first pushed, or the one after a reset).
    origin: Option<Tick>,
    newest: Option<Tick>,
    entries: VecDeque<Entry>,
    /// `arrival_us - relative_tick * tick_us` of recent snapshots, oldest first.
    offsets: VecDeque<f64>,
    /// Minimum of `offsets`.
    offset_us: f64,
    /// Jitter over `offsets`, in microseconds.
    jitter_us: f64,
    /// Render time in relative ticks, and the caller's clock when it was computed.
    render: Option<(f64, u64)>,
    /// How far render time was behind the estimated server clock at the last sample, µs.
    render_delay_us: Option<f64>,
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
        InterpolationBuffer {
            tick_us: 1e6 / tick_rate,
            interval_us: 1e6 / snapshot_rate,
            origin: None,
            newest: None,
            entries: VecDeque::with_capacity(MAX_SNAPSHOTS),
            offsets: VecDeque::with_capacity(OFFSET_WINDOW),
            offset_us: 0.0,
            jitter_us: 0.0,
            render: None,
            render_delay_us: None,
            stalled: false,
            stalls: 0,
        }
    }

    /// Forgets everything but the rates and the stall count.
    pub fn clear(&mut self) {
        self.origin = None;
        self.newest = None;
        self.entries.clear();
        self.offsets.clear();
        self.offset_us = 0.0;
        self.jitter_us = 0.0;
        self.render = None;
        self.render_delay_us = None;
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

        let mut positions: Vec<(NetId, Vec2)> = positions.into_iter().collect();
        positions.sort_by_key(|&(id, _)| id);
        positions.dedup_by_key(|&mut (id, _)| id);
        if self.entries.len() >= MAX_SNAPSHOTS {
            self.entries.pop_front();
        }
        self.entries.push_back(Entry { tick: rel, positions });

        if self.offsets.len() >= OFFSET_WINDOW {
            self.offsets.pop_front();
        }
        // u64 microseconds fit f64 exactly up to 2^53 µs (285 years).
        self.offsets.push_back(arrival_us as f64 - rel * self.tick_us);
        self.update_clock();
    }

    fn update_clock(&mut self) {
        let min = self.offsets.iter().copied().fold(f64::INFINITY, f64::min);
        let mut spread: Vec<f64> = self.offsets.iter().map(|o| o - min).collect();
        spread.sort_by(f64::total_cmp);
        let rank = ((spread.len() as f64 - 1.0) * JITTER_PERCENTILE).round() as usize;
        self.offset_us = if min.is_finite() { min } else { 0.0 };
        self.jitter_us = spread.get(rank).copied().unwrap_or(0.0);
    }

    /// The delay between the estimated server tick and render time, in ticks:
    /// [`BASE_DELAY_INTERVALS`] snapshot intervals plus the measured jitter, at least
    /// [`MIN_DELAY_INTERVALS`] interval and at most [`MAX_DELAY_US`] (or one interval, if longer).
    #[must_use]
    pub fn delay_ticks(&self) -> f32 {
        let min = MIN_DELAY_INTERVALS * self.interval_us;
        let max = MAX_DELAY_US.max(min);
        let delay_us = (BASE_DELAY_INTERVALS * self.interval_us + self.jitter_us).clamp(min, max);
        (delay_us / self.tick_us) as f32
    }

    /// The measured jitter of snapshot arrivals, in microseconds.
    #[must_use]
    pub fn jitter_us(&self) -> f64 {
        self.jitter_us
    }

    /// How many times render time caught up with the newest snapshot (each stall counted once,
    /// however long it lasts).
    #[must_use]
    pub fn stalls(&self) -> u64 {
        self.stalls
    }

    /// How far render time was behind the estimated server clock at the last
    /// [`InterpolationBuffer::sample`], in microseconds: the delay remote entities were drawn
    /// with. It is [`InterpolationBuffer::delay_ticks`] once render time has caught up with its
    /// target, and grows while render time is held at the newest snapshot (a stall). `None`
    /// before the first sample of a snapshot.
    #[must_use]
    pub fn render_delay_us(&self) -> Option<f64> {
        self.render_delay_us
    }

    /// The render time of the last [`InterpolationBuffer::sample`], as a tick and a fraction.
    #[must_use]
    pub fn render_tick(&self) -> Option<(Tick, f32)> {
        let (origin, (render, _)) = (self.origin?, self.render?);
        let whole = render.floor();
        Some((origin.plus(whole as i64 as u32), (render - whole) as f32))
    }

    /// Advances render time to `now_us` and returns it, in relative ticks.
    fn advance(&mut self, now_us: u64, newest: f64) -> f64 {
        let delay = f64::from(self.delay_ticks());
        let target = (now_us as f64 - self.offset_us) / self.tick_us - delay;
        let render = match self.render {
            None => target,
            Some((render, then)) => {
                // A clock that went backwards counts as no time passing.
                let dt = now_us.saturating_sub(then) as f64 / self.tick_us;
                let error = target - (render + dt);
                if error * self.tick_us > SNAP_FORWARD_US {
                    target
                } else {
                    render + dt + error.clamp(-MAX_SLEW * dt, MAX_SLEW * dt)
                }
            }
        };
        // Never past the newest snapshot (no extrapolation), never backwards.
        let floor = self.render.map_or(f64::NEG_INFINITY, |(r, _)| r);
        let render = render.min(newest).max(floor);
        self.render = Some((render, now_us));
        self.render_delay_us = Some(now_us as f64 - self.offset_us - render * self.tick_us);
        render
    }

    /// The positions at render time for the caller's clock `now_us`: each entity of the later of
    /// the two snapshots around render time, interpolated from the earlier one (or at its own
    /// position if it was not in the earlier one). Before the first stored snapshot, its
    /// positions; past the newest, the newest positions held (a stall).
    pub fn sample(&mut self, now_us: u64) -> Vec<(NetId, Vec2)> {
        let Some(newest) = self.entries.back().map(|e| e.tick) else {
            return Vec::new();
        };
        let render = self.advance(now_us, newest);
        if render >= newest {
            if !self.stalled {
                self.stalled = true;
                self.stalls += 1;
            }
            return self.entries.back().map(|e| e.positions.clone()).unwrap_or_default();
        }
        self.stalled = false;
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
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn delay_at_30_hz_without_jitter_is_within_target() {
        let mut buf = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        for i in 0..40 {
            push_steady(&mut buf, i, 0);
        }
        let delay_ms = f64::from(buf.delay_ticks()) * 1000.0 / f64::from(TICK_RATE);
        assert!(delay_ms <= 67.0, "delay {delay_ms} ms");
        assert!(delay_ms >= 1000.0 / f64::from(SNAP_RATE) - 1e-3, "delay {delay_ms} ms");
    }

    #[test]
    fn delay_grows_with_jitter_but_is_capped() {
        let mut buf = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        for i in 0..40 {
            push_steady(&mut buf, i, u64::from(i % 3) * 20_000);
        }
        let clean = 4.0;
        assert!(buf.delay_ticks() > clean + 1.0, "delay {}", buf.delay_ticks());
        let mut wild = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        for i in 0..40 {
            push_steady(&mut wild, i, u64::from(i % 2) * 2_000_000);
        }
        let max_ticks = (MAX_DELAY_US / 1e6 * f64::from(TICK_RATE)) as f32;
        assert!((wild.delay_ticks() - max_ticks).abs() < 1e-3, "delay {}", wild.delay_ticks());
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

    #[test]
    fn gap_longer_than_the_buffer_counts_a_stall_and_holds() {
        let mut buf = InterpolationBuffer::new(TICK_RATE, SNAP_RATE);
        for i in 0..10 {
            push_steady(&mut buf, i, 0);
            let _ = buf.sample(5_000_000 + u64::from(i) * INTERVAL);
        }
        assert_eq!(buf.stalls(), 0);
        // Nothing for a second.
        let mut held = Vec::new();
        for k in 1..=30 {
            held = buf.sample(5_000_000 + 9 * INTERVAL + k * INTERVAL);
        }
        assert_eq!(buf.stalls(), 1, "one stall, counted once");
        assert_eq!(held, vec![(NetId(7), pos(1018))], "held at the newest position");
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
        // One tick after the last arrival the server is at relative tick 5; minus the delay of
        // 4 ticks, render time is tick 11: halfway between the first two snapshots.
        let out = buf.sample(1_066_666 + 16_667);
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
}
