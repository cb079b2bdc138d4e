//! NPC bots: ordinary combatant entities whose [`PlayerInput`] is written by [`npc_think`]
//! instead of a network session, so they move, dash and shoot through exactly the same rules
//! as players.
//!
//! Each NPC wanders until a living opponent (player or NPC) is within [`NPC_SENSE_RANGE`] and
//! in sight, then turns toward it at a limited rate, closes to [`NPC_PREFERRED_RANGE`], strafes,
//! and fires once its aim is within [`NPC_FIRE_TOLERANCE`]. All randomness comes from
//! [`GameRng`], consumed in [`NetId`] order.

use bevy_ecs::prelude::*;
use glam::Vec2;
use serde::{Deserialize, Serialize};

use super::components::{Aim, Dead, Health, Position};
use super::input::{Buttons, PlayerInput};
use super::layout::Arena;
use super::movement::PLAYER_RADIUS;
use crate::game::{GameRng, SimClock};
use crate::ids::NetId;
use crate::tick::Tick;

/// How far an NPC notices opponents, in units: about a third of the arena's width, so a lone
/// player can hide and bots do not all pile onto one target.
pub const NPC_SENSE_RANGE: f32 = 450.0;

/// The distance an NPC tries to fight at, in units: close enough to hit often, far enough
/// that a player can dodge its shots.
pub const NPC_PREFERRED_RANGE: f32 = 220.0;

/// How fast an NPC turns its aim, in radians per tick (about 170°/s at 60 Hz): slower than a
/// mouse, so a strafing player can outturn it.
pub const NPC_TURN_RATE: f32 = 0.05;

/// An NPC fires when its aim is within this angle of its target, in radians (about 8.6°).
pub const NPC_FIRE_TOLERANCE: f32 = 0.15;

/// Fraction of full speed an NPC moves at: a little slower than a player, so a player can
/// always disengage.
pub const NPC_SPEED_SCALE: f32 = 0.8;

/// Fraction of full speed while wandering without a target.
pub const NPC_WANDER_SCALE: f32 = 0.5;

/// Shortest and longest time between wander direction changes, in ticks (1-3 s at 60 Hz).
pub const NPC_WANDER_TICKS: (u32, u32) = (60, 180);

/// While fighting, an NPC dashes with probability 1 in this many per tick (about once every
/// four seconds at 60 Hz), so bots are not trivially predictable.
pub const NPC_DASH_ONE_IN: u32 = 240;

/// An NPC's private state (server only).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Brain {
    /// The direction it wanders in when it has no target (unit length).
    pub wander: Vec2,
    /// When it picks a new wander direction and strafe side.
    pub rethink_at: Tick,
    /// Which way it strafes around a target: `1.0` counter-clockwise, `-1.0` clockwise.
    pub strafe: f32,
}

/// The signed smallest angle from `from` to `to`, in `[-π, π]`.
fn angle_delta(from: f32, to: f32) -> f32 {
    let d = (to - from).rem_euclid(std::f32::consts::TAU);
    if d > std::f32::consts::PI { d - std::f32::consts::TAU } else { d }
}

/// Writes every living NPC's [`PlayerInput`] for this tick (`GameSet::Ai`).
pub fn npc_think(
    clock: Res<'_, SimClock>,
    arena: Res<'_, Arena>,
    mut rng: ResMut<'_, GameRng>,
    mut npcs: Query<'_, '_, (&NetId, &Position, &Aim, &mut Brain, &mut PlayerInput), Without<Dead>>,
    targets: Query<'_, '_, (&NetId, &Position, &Health), Without<Dead>>,
) {
    let mut targets: Vec<(NetId, Vec2)> =
        targets.iter().filter(|t| t.2.0 > 0.0).map(|t| (*t.0, t.1.0)).collect();
    targets.sort_unstable_by_key(|t| t.0);
    let mut npcs: Vec<_> = npcs.iter_mut().collect();
    npcs.sort_by_key(|n| *n.0);

    for (&id, position, aim, mut brain, mut input) in npcs {
        let here = position.0;
        let ahead = here + brain.wander * (PLAYER_RADIUS * 3.0);
        if clock.tick.diff(brain.rethink_at) >= 0 || !arena.is_free(ahead, PLAYER_RADIUS) {
            let turn = rng.next_f32() * std::f32::consts::TAU;
            brain.wander = Vec2::from_angle(turn);
            brain.strafe = if rng.one_in(2) { 1.0 } else { -1.0 };
            let wait = rng.range_u32(NPC_WANDER_TICKS.0, NPC_WANDER_TICKS.1);
            brain.rethink_at = clock.tick.plus(wait);
        }

        // The nearest opponent in range and in sight; ties go to the lower id.
        let mut target: Option<(f32, Vec2)> = None;
        for &(other, at) in &targets {
            let d2 = at.distance_squared(here);
            if other != id
                && d2 < NPC_SENSE_RANGE * NPC_SENSE_RANGE
                && target.is_none_or(|(best, _)| d2 < best)
                && arena.line_of_sight(here, at)
            {
                target = Some((d2, at));
            }
        }

        let mut next = PlayerInput { aim: aim.0, ..PlayerInput::default() };
        match target {
            Some((d2, at)) => {
                let to = at - here;
                let want = to.y.atan2(to.x);
                let delta = angle_delta(aim.0, want);
                next.aim = aim.0 + delta.clamp(-NPC_TURN_RATE, NPC_TURN_RATE);
                let dir = to.normalize_or_zero();
                let dist = d2.sqrt();
                next.movement = if dist > NPC_PREFERRED_RANGE {
                    dir * NPC_SPEED_SCALE
                } else {
                    dir.perp() * (brain.strafe * NPC_SPEED_SCALE)
                };
                if delta.abs() < NPC_FIRE_TOLERANCE {
                    next.buttons = next.buttons.with(Buttons::FIRE);
                }
                if rng.one_in(NPC_DASH_ONE_IN) {
                    next.buttons = next.buttons.with(Buttons::DASH);
                }
            }
            None => {
                next.movement = brain.wander * NPC_WANDER_SCALE;
                let want = brain.wander.y.atan2(brain.wander.x);
                let delta = angle_delta(aim.0, want);
                next.aim = aim.0 + delta.clamp(-NPC_TURN_RATE, NPC_TURN_RATE);
            }
        }
        *input = next.sanitized();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    #[test]
    fn angle_delta_takes_the_short_way() {
        assert!((angle_delta(0.1, -0.1) + 0.2).abs() < 1e-6);
        assert!((angle_delta(PI - 0.1, -PI + 0.1) - 0.2).abs() < 1e-5);
        assert!((angle_delta(-PI + 0.1, PI - 0.1) + 0.2).abs() < 1e-5);
    }
}
