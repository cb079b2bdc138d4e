//! Soccer: a top-down 2D team ball game. Two teams, Red (defends the left goal, attacks right)
//! and Blue, run, sprint, dribble and kick one ball on a 1000 × 600 pitch with walls; a ball
//! over a goal line between the posts scores, then play restarts from the centre.
//!
//! [`SoccerGame`] is its [`Game`] plug-in. Everything is deterministic for a given seed and
//! input sequence: the only randomness is the engine's [`crate::game::GameRng`] (where NPCs
//! aim), and every system that resolves contests walks entities in [`NetId`] order.
//!
//! - Input: [`SoccerInput`] (run direction, kick power, sprint).
//! - Replicated: [`Position`] (the position), [`Role`], [`Team`], [`Facing`], [`Stamina`],
//!   [`Goals`], and [`MatchScore`] on a match entity with no position (every client gets it).
//! - Prediction: the own player's position, facing and stamina ([`step_player`]); the ball is
//!   interpolated.
//! - NPCs and bots play with [`ai::plan`].

pub mod ai;
mod ball;
mod bot;
mod components;
mod input;
mod movement;
mod npc;
mod pitch;
mod predict;
mod systems;

use bevy_ecs::prelude::*;
use bevy_ecs::world::EntityWorldMut;
use glam::Vec2;
use serde::{Deserialize, Serialize};

pub use ball::{
    BALL_FRICTION_PER_SEC, BALL_RADIUS, BALL_STOP_SPEED, BallBody, BallStep, Body, KICK_BEHIND_COS,
    KICK_REACH, MAX_BALL_SPEED, MAX_KICK_SPEED, MIN_KICK_SPEED, PLAYER_RESTITUTION,
    WALL_RESTITUTION, can_kick, confine, goal_at, kick_speed, step_ball,
};
pub use bot::SoccerBot;
pub use components::{
    Ball, Facing, FormationSlot, Goals, KickState, MatchEntity, MatchScore, Position, Role,
    Stamina, Team, Toucher, Velocity,
};
pub use input::{SoccerControl, SoccerInput};
pub use movement::{
    MAX_STAMINA, PLAYER_RADIUS, PlayerState, RUN_SPEED, SPRINT_DRAIN_PER_SEC, SPRINT_SPEED,
    STAMINA_REGEN_PER_SEC, heading, snap_angle, step_player,
};
pub use npc::{Brain, NPC_PACE, npc_think};
pub use pitch::{
    CENTRE_CIRCLE_RADIUS, CORNER_CUT, GOAL_DEPTH, GOAL_HALF_WIDTH, HALF_LENGTH, HALF_WIDTH,
    PITCH_HALF_EXTENTS, formation_spot, on_pitch,
};
pub use predict::SoccerPrediction;
pub use systems::{kick_ball, move_ball, move_players, referee};

use crate::game::{Game, GameConfig, GameRng, NetIdAllocator, StandingRow, Standings, TickSet};
use crate::ids::NetId;
use crate::persist::Persistence;
use crate::registry::{Registrar, RegistryError};
use crate::tick::Tick;

/// Time between two kicks of one player, in seconds: a kick and its follow-through; short
/// enough that a rebound can be hit again, long enough that holding the key is no machine gun.
pub const KICK_COOLDOWN_SECS: f32 = 0.3;

/// How long a kick asked for with the ball just out of reach waits for it, in seconds: about
/// a network round trip, so a kick pressed as the ball arrives is not lost.
pub const KICK_BUFFER_SECS: f32 = 0.15;

/// The pause after a goal before the kick-off, in seconds: time to see it and cheer.
pub const KICKOFF_DELAY_SECS: f32 = 2.0;

/// Soccer as a [`Game`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SoccerGame;

/// Something that happened in a match, delivered reliably to every client.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum SoccerEvent {
    /// A goal for `team`.
    Goal {
        /// The team that scored (an own goal is the other team's).
        team: Team,
        /// The player credited (`None`: an own goal).
        scorer: Option<NetId>,
    },
    /// Play restarted from the centre spot, everyone on their formation spots.
    Kickoff,
}

/// Soccer's tick-counted settings, from the room's tick rate ([`GameConfig::ticks`]).
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoccerRules {
    /// Ticks between two kicks of one player ([`KICK_COOLDOWN_SECS`]).
    pub kick_cooldown_ticks: u16,
    /// Ticks a kick waits for the ball ([`KICK_BUFFER_SECS`]).
    pub kick_buffer_ticks: u16,
    /// Ticks from a goal to the kick-off ([`KICKOFF_DELAY_SECS`]).
    pub kickoff_delay_ticks: u32,
}

impl SoccerRules {
    /// The rules at `config`'s tick rate.
    #[must_use]
    pub fn new(config: &GameConfig) -> SoccerRules {
        let ticks16 = |secs| u16::try_from(config.ticks(secs)).unwrap_or(u16::MAX);
        SoccerRules {
            kick_cooldown_ticks: ticks16(KICK_COOLDOWN_SECS),
            kick_buffer_ticks: ticks16(KICK_BUFFER_SECS),
            kickoff_delay_ticks: config.ticks(KICKOFF_DELAY_SECS),
        }
    }
}

/// Whether the ball is in play.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Play {
    /// It is.
    Live,
    /// A goal was scored; the kick-off is at `kickoff_at`.
    Stopped {
        /// The tick of the kick-off.
        kickoff_at: Tick,
    },
}

/// The referee's state (server only).
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referee {
    /// Whether the ball is in play.
    pub play: Play,
    /// The side kicking off next (the one that conceded; Red at the start).
    pub kickoff_team: Team,
    /// A goal the ball's system saw this tick, for the referee to award.
    pub pending_goal: Option<Team>,
}

impl Default for Referee {
    fn default() -> Self {
        Referee { play: Play::Live, kickoff_team: Team::Red, pending_goal: None }
    }
}

/// The phases of soccer's simulation, inside [`TickSet::Simulate`], in this order. Add systems
/// to one of them with `.in_set(SoccerSet::Ball)` and so on.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SoccerSet {
    /// NPCs decide their inputs.
    Ai,
    /// Players move.
    Movement,
    /// Kicks are taken and the ball rolls.
    Ball,
    /// Goals are awarded and play restarts.
    Rules,
}

impl Game for SoccerGame {
    const NAME: &'static str = "soccer";
    const DESCRIPTION: &'static str =
        "top-down team soccer: run, sprint, dribble and kick; Red against Blue, goals score";

    type Input = SoccerInput;
    type Event = SoccerEvent;
    type Prediction = SoccerPrediction;
    type Bot = SoccerBot;

    /// [`Position`] (index 0, the position), [`Role`], [`Team`], [`Facing`], [`Stamina`],
    /// [`Goals`], [`MatchScore`].
    fn replicate(r: &mut impl Registrar) -> Result<(), RegistryError> {
        r.component::<Position>()?;
        r.component::<Role>()?;
        r.component::<Team>()?;
        r.component::<Facing>()?;
        r.component::<Stamina>()?;
        r.component::<Goals>()?;
        r.component::<MatchScore>()?;
        r.position::<Position>()
    }

    /// Every component of the players, the ball and the match entity, and the [`Referee`].
    fn persist(p: &mut Persistence) {
        p.component::<Position>()
            .component::<Role>()
            .component::<Team>()
            .component::<Facing>()
            .component::<Stamina>()
            .component::<Goals>()
            .component::<MatchScore>()
            .component::<Velocity>()
            .component::<SoccerControl>()
            .component::<KickState>()
            .component::<FormationSlot>()
            .component::<Ball>()
            .component::<MatchEntity>()
            .component::<Brain>()
            .resource::<Referee>();
    }

    /// Inserts [`SoccerRules`] and the [`Referee`], spawns the match entity, the ball and
    /// `config.npcs` NPCs (alternately Red and Blue), lines everyone up for Red's kick-off, and
    /// adds the rule systems in chained [`SoccerSet`]s.
    fn build(world: &mut World, schedule: &mut Schedule, config: &GameConfig) {
        world.insert_resource(SoccerRules::new(config));
        world.insert_resource(Referee::default());
        let id = world.resource_mut::<NetIdAllocator>().next();
        world.spawn((id, MatchEntity, MatchScore::default()));
        let id = world.resource_mut::<NetIdAllocator>().next();
        world.spawn((id, Role::Ball, Position(Vec2::ZERO), Velocity::default(), Ball::default()));
        for i in 0..config.npcs {
            let team = if i % 2 == 0 { Team::Red } else { Team::Blue };
            let entity = spawn_footballer(world, Role::Npc, team);
            let brain = Brain::new(&mut world.resource_mut::<GameRng>());
            world.entity_mut(entity).insert(brain);
        }
        // The first kick-off is Red's: its striker starts at the ball.
        let mut strikers = world.query::<(&Team, &FormationSlot, &mut Position)>();
        for (&team, slot, mut position) in strikers.iter_mut(world) {
            if team == Team::Red && slot.0 == 0 {
                position.0 = formation_spot(team, 0, true);
            }
        }

        schedule.configure_sets(
            (SoccerSet::Ai, SoccerSet::Movement, SoccerSet::Ball, SoccerSet::Rules)
                .chain()
                .in_set(TickSet::Simulate),
        );
        schedule.add_systems(npc_think.in_set(SoccerSet::Ai));
        schedule.add_systems(move_players.in_set(SoccerSet::Movement));
        schedule.add_systems((kick_ball, move_ball).chain().in_set(SoccerSet::Ball));
        schedule.add_systems(referee.in_set(SoccerSet::Rules));
    }

    /// A player on the team with fewer members (ties to Red), on its first free formation
    /// spot, facing the goal it attacks, with full stamina and no goals.
    fn spawn_player(world: &mut World, _name: &str) -> Entity {
        let mut teams = world.query::<(&Team, &Role)>();
        let (mut red, mut blue) = (0usize, 0usize);
        for (team, role) in teams.iter(world) {
            if role.is_player() {
                match team {
                    Team::Red => red += 1,
                    Team::Blue => blue += 1,
                }
            }
        }
        let team = if blue < red { Team::Blue } else { Team::Red };
        spawn_footballer(world, Role::Player, team)
    }

    /// Whatever the types allow is a valid input: every run vector is clamped, every kick
    /// power is a power, sprint is a bool.
    fn validate_input(_input: &SoccerInput) -> Result<(), crate::game::InvalidInput> {
        Ok(())
    }

    fn apply_input(entity: &mut EntityWorldMut<'_>, input: &SoccerInput) {
        entity.insert(SoccerControl::from_frame(input));
    }

    /// Keep running (and sprinting) as last told; a kick is not repeated.
    fn repeat_input(last: &SoccerInput) -> SoccerInput {
        SoccerInput { kick: 0, ..*last }
    }

    /// A skipped frame's kick is kept (the stronger of the two when both kick).
    fn merge_skipped(skipped: &SoccerInput, next: &mut SoccerInput) {
        next.kick = next.kick.max(skipped.kick);
    }

    /// `goals` of every player and NPC, labelled with its team (`red`, `blue`).
    fn standings(world: &mut World) -> Standings {
        let mut rows: Vec<StandingRow> = world
            .query::<(&NetId, &Role, &Team, &Goals)>()
            .iter(world)
            .filter(|(_, role, _, _)| role.is_player())
            .map(|(id, _, team, goals)| StandingRow {
                entity: *id,
                label: team.name().to_lowercase(),
                values: vec![i64::from(goals.0)],
            })
            .collect();
        rows.sort_by_key(|r| r.entity);
        Standings { columns: vec!["goals"], rows }
    }
}

/// Spawns a player of `role` on `team`, on the team's first free formation slot.
fn spawn_footballer(world: &mut World, role: Role, team: Team) -> Entity {
    let mut slots = world.query::<(&Team, &FormationSlot)>();
    let mut taken: Vec<u16> =
        slots.iter(world).filter(|(t, _)| **t == team).map(|(_, s)| s.0).collect();
    taken.sort_unstable();
    let slot = (0u16..).find(|s| taken.binary_search(s).is_err()).unwrap_or(0);
    let id = world.get_resource_or_insert_with(NetIdAllocator::default).next();
    world
        .spawn((
            id,
            role,
            team,
            Position(formation_spot(team, usize::from(slot), false)),
            Facing(snap_angle(team.forward_angle())),
            Stamina(MAX_STAMINA),
            Goals(0),
            Velocity::default(),
            SoccerControl::default(),
            KickState::default(),
            FormationSlot(slot),
        ))
        .id()
}

#[cfg(test)]
mod tests;
