//! Motion: how far each entity's position moves per tick, estimated by the server and replicated
//! with the entity, so that a delta snapshot sends a position as its error from where the
//! baseline's motion puts it rather than as the whole distance walked.
//!
//! A game declares its position component ([`crate::registry::Registrar::position`]); the
//! registry then adds one hidden component after it, `tickwire.motion` (two int fields: x and y
//! in grid cells per tick, [`MOTION_SCALE`]). No system writes it: the server's room fills it
//! in each captured state ([`estimate`]) from the state before, and both sides advance a delta's
//! baseline by it ([`predicted`]) before the delta is encoded or decoded. The snapshot format
//! itself is unchanged: a delta is simply taken against the predicted baseline, so
//!
//! - an entity that moves as its motion says costs nothing, like an unchanged one;
//! - one that drifts from it by a cell or two costs a few bits, however old the baseline;
//! - a motion is kept while it predicts the position within [`MOTION_TOLERANCE`] cells from
//!   one captured state to the next, so a steady walk sends its motion once, when it starts;
//! - a still entity has no motion (the component is absent), so a still world is sent exactly
//!   as before, and a jump larger than [`MAX_MOTION`] per tick (a respawn, a teleport) is not
//!   taken for motion.
//!
//! Everything here is integer arithmetic, identical on the server, in the bots and in wasm.

use crate::ids::NetId;
use crate::registry::ReplicationRegistry;
use crate::state::ReplicatedState;
use crate::tick::Tick;

/// Motion is counted in 1/`MOTION_SCALE` grid cells per tick. Whole cells: a finer motion
/// predicts no better (a walk's error stays under a cell or two over the few ticks a baseline
/// is old) and costs more bits where it is sent in full (tried with 4 and 16 in
/// `benches/examples/snapshot_sizes.rs`: the same deltas, 6 and 15 more bits per full entity).
pub const MOTION_SCALE: i64 = 1;

/// A motion is kept while it predicts the position within this many grid cells per axis from
/// one captured state to the next; past it the motion is estimated again.
pub const MOTION_TOLERANCE: i64 = 2;

/// The largest motion per axis (in motion units, [`MOTION_SCALE`]): 64 world units a tick
/// (3,840 units/s at 60 Hz). A larger step is a jump, and an entity that jumps has no motion.
pub const MAX_MOTION: i32 = 64 * 64 * MOTION_SCALE as i32;

/// A prediction spans at most this many ticks (half a second at 60 Hz): a baseline older than
/// that (a resume, a client far behind) is taken as it is, since whoever walked then has
/// likely turned since, and a motion is measured only across states at most this far apart.
/// Also what keeps the arithmetic far from overflowing, whatever a peer sends.
pub const MAX_PREDICTED_TICKS: u32 = 32;

/// Where a coordinate `p` moving by `m` (per tick, [`MOTION_SCALE`]) is `ticks` later, rounded
/// to the nearest cell (halves up); `p` itself past [`MAX_PREDICTED_TICKS`]. Wraps like every
/// other field arithmetic, never overflows.
#[inline]
#[must_use]
pub fn advance(p: i32, m: i32, ticks: u32) -> i32 {
    if ticks > MAX_PREDICTED_TICKS {
        return p;
    }
    let travelled = i64::from(m) * i64::from(ticks);
    p.wrapping_add((travelled + MOTION_SCALE / 2).div_euclid(MOTION_SCALE) as i32)
}

/// The motion that takes `from` to `to` in `ticks` (> 0), rounded to the nearest unit (halves
/// up).
fn measured(from: i32, to: i32, ticks: u32) -> i64 {
    let d = (i64::from(to) - i64::from(from)) * MOTION_SCALE;
    let t = i64::from(ticks);
    (2 * d + t).div_euclid(2 * t)
}

/// Where the position and motion fields sit in a row, when the registry has both.
fn offsets(registry: &ReplicationRegistry) -> Option<(u32, usize, u32, usize)> {
    let (p, m) = (registry.position_index()?, registry.motion_index()?);
    Some((1 << p.0, registry.offset(p), 1 << m.0, registry.offset(m)))
}

/// Fills in the motion of every positioned entity of `state` (captured at `tick`, its motion
/// fields zero and absent, as [`ReplicationRegistry::capture`] leaves them) from `previous`,
/// the room's state captured before it, and `before`, the one before that:
///
/// - an entity whose previous motion still predicts its position within [`MOTION_TOLERANCE`]
///   keeps it;
/// - otherwise, if its step from `before` to `previous` predicts its position too (it moves
///   steadily, it just started or turned), its motion becomes its last step;
/// - otherwise it has none: an entity whose course bends every tick (one circling another) is
///   sent plain deltas, which cost less than a motion corrected at every snapshot. So has one
///   not in the states before, and one that jumped (more than [`MAX_MOTION`] per tick).
pub fn estimate(
    registry: &ReplicationRegistry,
    previous: Option<(Tick, &ReplicatedState)>,
    before: Option<(Tick, &ReplicatedState)>,
    tick: Tick,
    state: &mut ReplicatedState,
) {
    let Some((pos_bit, po, motion_bit, mo)) = offsets(registry) else { return };
    let Some((prev_tick, prev)) = previous else { return };
    let stride = registry.stride();
    if state.stride != stride || prev.stride != stride {
        return;
    }
    let ticks = tick.0.wrapping_sub(prev_tick.0);
    if ticks == 0 || ticks > MAX_PREDICTED_TICKS {
        return;
    }
    // The state before `previous`, when it is usable.
    let before = before.filter(|(t, b)| {
        let span = prev_tick.0.wrapping_sub(t.0);
        b.stride == stride && span != 0 && span <= MAX_PREDICTED_TICKS
    });
    let (mut j, mut k) = (0, 0);
    for i in 0..state.ids.len() {
        let id = state.ids[i];
        if state.masks[i] & pos_bit == 0 {
            continue;
        }
        let Some(jj) = find(prev, &mut j, id, pos_bit) else { continue };
        let old = &prev.fields[jj * stride..(jj + 1) * stride];
        let p0 = [old[po], old[po + 1]];
        let row = &mut state.fields[i * stride..(i + 1) * stride];
        let p = [row[po], row[po + 1]];
        let predicts = |m: [i32; 2]| {
            (0..2).all(|a| {
                let predicted = advance(p0[a], m[a], ticks);
                (i64::from(p[a]) - i64::from(predicted)).abs() <= MOTION_TOLERANCE
            })
        };
        let kept = if prev.masks[jj] & motion_bit != 0 { [old[mo], old[mo + 1]] } else { [0, 0] };
        let motion = if predicts(kept) {
            kept
        } else {
            // The step that led to `previous`, if this one continues it.
            let steady = before.and_then(|(before_tick, b)| {
                let kk = find(b, &mut k, id, pos_bit)?;
                let span = prev_tick.0.wrapping_sub(before_tick.0);
                let from = &b.fields[kk * stride..(kk + 1) * stride];
                let step = [measured(from[po], p0[0], span), measured(from[po + 1], p0[1], span)];
                let step = [i32::try_from(step[0]).ok()?, i32::try_from(step[1]).ok()?];
                predicts(step).then_some(())
            });
            let now = [measured(p0[0], p[0], ticks), measured(p0[1], p[1], ticks)];
            match steady {
                Some(()) if now.iter().all(|v| v.abs() <= i64::from(MAX_MOTION)) => {
                    [now[0] as i32, now[1] as i32]
                }
                _ => [0, 0],
            }
        };
        if motion != [0, 0] {
            row[mo] = motion[0];
            row[mo + 1] = motion[1];
            state.masks[i] |= motion_bit;
        }
    }
}

/// The position of `id` in `state` if it is there with a position, walking `cursor` forward
/// (the ids asked for ascend).
fn find(state: &ReplicatedState, cursor: &mut usize, id: NetId, pos_bit: u32) -> Option<usize> {
    while *cursor < state.ids.len() && state.ids[*cursor] < id {
        *cursor += 1;
    }
    let at = *cursor;
    (at < state.ids.len() && state.ids[at] == id && state.masks[at] & pos_bit != 0).then_some(at)
}

/// `baseline` with every entity that has a motion moved on by it for `ticks` ticks: what a
/// delta `ticks` after the baseline is taken against, on both sides. `None` when nothing in it
/// moves (or it does not fit the registry): the baseline itself is the prediction.
#[must_use]
pub fn predicted(
    registry: &ReplicationRegistry,
    baseline: &ReplicatedState,
    ticks: u32,
) -> Option<ReplicatedState> {
    let (pos_bit, po, motion_bit, mo) = offsets(registry)?;
    if baseline.stride != registry.stride() || !baseline.masks.iter().any(|m| m & motion_bit != 0) {
        return None;
    }
    let mut out = baseline.clone();
    let stride = out.stride;
    for (i, &mask) in out.masks.iter().enumerate() {
        if mask & pos_bit != 0 && mask & motion_bit != 0 {
            let row = &mut out.fields[i * stride..(i + 1) * stride];
            row[po] = advance(row[po], row[mo], ticks);
            row[po + 1] = advance(row[po + 1], row[mo + 1], ticks);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests;
