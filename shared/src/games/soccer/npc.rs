//! NPC players: ordinary player entities whose [`SoccerControl`] is written by [`npc_think`]
//! from [`super::ai::plan`] instead of a network session, so they run, sprint and kick through
//! exactly the same rules as people.
//!
//! Each NPC aims at a point across the goal mouth ([`Brain::aim_y`]) drawn from the room's
//! [`GameRng`] when it spawns and after each of its kicks, in [`NetId`] order: the seed decides
//! where the shots go.

use bevy_ecs::prelude::*;
use serde::{Deserialize, Serialize};

use super::ai::{self, AIM_MARGIN, Situation, chasers};
use super::components::{Ball, Facing, FormationSlot, KickState, Position, Role, Stamina, Team};
use super::input::SoccerControl;
use super::pitch::{GOAL_HALF_WIDTH, formation_spot};
use super::{Play, Referee};
use crate::game::GameRng;
use crate::ids::NetId;

/// Fraction of full speed NPCs run at: a touch slower than people, so a player can win a
/// race to the ball, and a sprint still tells.
pub const NPC_PACE: f32 = 0.9;

/// Each tick, an NPC stuck at the ball hits it forwards with probability 1 in this many
/// ([`Situation::hurry`]): about once in two-thirds of a second at 60 Hz, which breaks two
/// chasers pinning the ball between them without making shots random.
pub const HURRY_ONE_IN: u32 = 40;

/// An NPC's private state (server only).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Brain {
    /// Where across the goal mouth it aims its shots.
    pub aim_y: f32,
    /// Whether it has picked a new aim since its last kick.
    pub reaimed: bool,
}

impl Brain {
    /// A brain aiming at a random point of the mouth.
    pub fn new(rng: &mut GameRng) -> Brain {
        Brain { aim_y: random_aim(rng), reaimed: true }
    }
}

/// A random aim across the mouth, inside the posts by [`AIM_MARGIN`].
fn random_aim(rng: &mut GameRng) -> f32 {
    let max = GOAL_HALF_WIDTH - AIM_MARGIN;
    (rng.next_f32() * 2.0 - 1.0) * max
}

/// What [`npc_think`] reads and writes on an NPC.
type NpcItem<'a> = (
    &'a NetId,
    &'a Team,
    &'a Position,
    &'a Facing,
    &'a Stamina,
    &'a FormationSlot,
    &'a KickState,
    &'a mut Brain,
    &'a mut SoccerControl,
);

/// Writes every NPC's [`SoccerControl`] for this tick (`SoccerSet::Ai`). While play is stopped
/// after a goal, everyone walks back to their spot.
pub fn npc_think(
    referee: Res<'_, Referee>,
    mut rng: ResMut<'_, GameRng>,
    players: Query<'_, '_, (&NetId, &Team, &Position, &Role)>,
    ball: Query<'_, '_, &Position, With<Ball>>,
    mut npcs: Query<'_, '_, NpcItem<'_>>,
) {
    let ball = ball.single().ok().map(|p| p.0);
    let live = referee.play == Play::Live;
    let mut everyone: Vec<_> = players
        .iter()
        .filter(|p| p.3.is_player())
        .map(|(&id, &team, p, _)| (id, team, p.0))
        .collect();
    everyone.sort_unstable_by_key(|p| p.0);
    let chase = match ball {
        Some(ball) if live => chasers(&everyone, ball),
        _ => [None, None],
    };
    let mut npcs: Vec<_> = npcs.iter_mut().collect();
    npcs.sort_by_key(|n| *n.0);
    for (&id, &team, position, facing, stamina, slot, kick, mut brain, mut control) in npcs {
        // A new aim after each kick it took (its cooldown runs from the kick).
        if kick.cooldown > 0 && !brain.reaimed {
            brain.aim_y = random_aim(&mut rng);
            brain.reaimed = true;
        } else if kick.cooldown == 0 {
            brain.reaimed = false;
        }
        let situation = Situation {
            me: position.0,
            facing: facing.0,
            stamina: stamina.0,
            team,
            ball: if live { ball } else { None },
            chaser: chase[team as usize] == Some(id),
            spot: formation_spot(team, usize::from(slot.0), false),
            aim_y: brain.aim_y,
            hurry: rng.one_in(HURRY_ONE_IN),
        };
        let plan = ai::plan(&situation);
        *control = SoccerControl { run: plan.run * NPC_PACE, kick: plan.kick, sprint: plan.sprint };
    }
}
