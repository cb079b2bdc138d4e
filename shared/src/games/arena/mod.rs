//! The arena: a top-down 2D arena where players and NPC bots move, aim, dash, shoot
//! projectiles, pick up health, die, respawn and score.
//!
//! [`ArenaGame`] is its [`Game`] plug-in. Everything is deterministic for a given seed and
//! input sequence: the only randomness is the engine's [`crate::game::GameRng`], and every
//! system that allocates ids, draws random numbers or resolves contests walks entities in
//! [`NetId`] order.

mod bot;
mod components;
mod input;
mod layout;
mod movement;
mod npc;
mod predict;
mod systems;

use bevy_ecs::prelude::*;
use bevy_ecs::world::EntityWorldMut;
use glam::Vec2;
use serde::{Deserialize, Serialize};

pub use bot::{ArenaBot, FIGHT_FIRE_RANGE, FIGHT_HOLD_DISTANCE, WANDER_MAX_SECS, WANDER_MIN_SECS};
pub use components::{
    Aim, Dash, Dead, Flight, Health, Kind, LAUNCH_TICK_MODULUS, Launched, Lifetime, Owner, Pickup,
    PickupRespawn, PlayerName, Position, Score, ShotLag, Velocity, Weapon, projectile_position,
};
pub use input::{ArenaInput, Buttons, PlayerInput};
pub use layout::{Arena, Obstacle, STANDARD_HALF_EXTENTS};
pub use movement::{
    DASH_COOLDOWN_SECS, DASH_DURATION_SECS, DASH_SPEED, MoverState, PLAYER_RADIUS, PLAYER_SPEED,
    step_mover, ticks_for,
};
pub use npc::{
    Brain, NPC_DASH_ONE_IN, NPC_FIRE_TOLERANCE, NPC_PREFERRED_RANGE, NPC_SENSE_RANGE,
    NPC_SPEED_SCALE, NPC_TURN_RATE, NPC_WANDER_SCALE, NPC_WANDER_TICKS, npc_think,
};
pub use predict::{ArenaPredicted, ArenaPrediction};
pub use systems::{
    FIRE_COOLDOWN_SECS, MAX_HEALTH, PICKUP_HEAL, PICKUP_RADIUS, PICKUP_RESPAWN_SECS,
    PROJECTILE_DAMAGE, PROJECTILE_LIFETIME_SECS, PROJECTILE_RADIUS, PROJECTILE_SPEED,
    collect_pickups, fire_weapons, move_combatants, move_projectiles, pick_spawn_point,
    resolve_projectiles, respawn_dead, respawn_pickups, sanitize_inputs,
};

use crate::game::{
    Game, GameConfig, InvalidInput, NetIdAllocator, StandingRow, Standings, TickSet,
};
use crate::ids::NetId;
use crate::persist::Persistence;
use crate::registry::{Registrar, RegistryError};

/// Time a dead combatant waits before respawning, in seconds: long enough that a kill matters,
/// short enough not to bore.
pub const RESPAWN_SECS: f32 = 3.0;

/// The arena as a [`Game`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ArenaGame;

/// Something that happened in an arena, delivered reliably to every client.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ArenaEvent {
    /// An entity killed another.
    Killed {
        /// The killer (`None`: the arena).
        killer: Option<NetId>,
        /// The one that died.
        victim: NetId,
    },
    /// An entity came back to life.
    Respawned {
        /// The entity.
        entity: NetId,
    },
}

/// The arena's tick-counted settings, from the room's tick rate ([`GameConfig::ticks`]).
#[derive(Resource, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ArenaRules {
    /// Ticks a dead combatant waits before respawning ([`RESPAWN_SECS`]).
    pub respawn_ticks: u32,
}

impl ArenaRules {
    /// The rules at `config`'s tick rate.
    #[must_use]
    pub fn new(config: &GameConfig) -> ArenaRules {
        ArenaRules { respawn_ticks: config.ticks(RESPAWN_SECS) }
    }
}

/// The phases of the arena's simulation, inside [`TickSet::Simulate`], in this order. Add
/// systems to one of them with `.in_set(ArenaSet::Combat)` and so on.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ArenaSet {
    /// NPCs decide their inputs.
    Ai,
    /// Combatants and projectiles move.
    Movement,
    /// Shots are fired, hits and pickups resolved.
    Combat,
    /// Respawns.
    Lifecycle,
}

impl Game for ArenaGame {
    const NAME: &'static str = "arena";
    const DESCRIPTION: &'static str =
        "top-down shooter: move, aim, shoot and dash; five hits kill, kills score";

    type Input = ArenaInput;
    type Event = ArenaEvent;
    type Prediction = ArenaPrediction;
    type Bot = ArenaBot;

    /// [`Position`] (index 0, the position), [`Kind`], [`Aim`], [`Health`], [`Score`],
    /// [`Dash`], [`Launched`].
    fn replicate(r: &mut impl Registrar) -> Result<(), RegistryError> {
        r.component::<Position>()?;
        r.component::<Kind>()?;
        r.component::<Aim>()?;
        r.component::<Health>()?;
        r.component::<Score>()?;
        r.component::<Dash>()?;
        r.component::<Launched>()?;
        r.position::<Position>()
    }

    /// Every component of the combatants, projectiles and pickups (the map and the rules are
    /// built again from the settings; the combatants' rewind history is the engine's).
    fn persist(p: &mut Persistence) {
        p.component::<Position>()
            .component::<Kind>()
            .component::<Aim>()
            .component::<Health>()
            .component::<Score>()
            .component::<Dash>()
            .component::<Launched>()
            .component::<Velocity>()
            .component::<Flight>()
            .component::<Lifetime>()
            .component::<Owner>()
            .component::<ShotLag>()
            .component::<Dead>()
            .component::<Weapon>()
            .component::<PlayerName>()
            .component::<Pickup>()
            .component::<PickupRespawn>()
            .component::<PlayerInput>()
            .component::<Brain>();
    }

    /// Inserts [`ArenaRules`] and [`Arena::standard`], spawns the pickups and `config.npcs`
    /// NPCs, and adds every rule system in chained [`ArenaSet`]s.
    fn build(world: &mut World, schedule: &mut Schedule, config: &GameConfig) {
        let arena = Arena::standard();
        world.insert_resource(ArenaRules::new(config));
        for spot in 0..arena.pickup_spots().len() {
            let id = world.resource_mut::<NetIdAllocator>().next();
            world.spawn(systems::pickup_bundle(id, &arena, spot));
        }
        world.insert_resource(arena);
        for _ in 0..config.npcs {
            let entity = spawn_combatant(world, Kind::Npc);
            world.entity_mut(entity).insert(Brain::default());
        }

        schedule.configure_sets(
            (ArenaSet::Ai, ArenaSet::Movement, ArenaSet::Combat, ArenaSet::Lifecycle)
                .chain()
                .in_set(TickSet::Simulate),
        );
        schedule.add_systems(sanitize_inputs.in_set(TickSet::Input));
        schedule.add_systems(npc_think.in_set(ArenaSet::Ai));
        schedule
            .add_systems((move_combatants, move_projectiles).chain().in_set(ArenaSet::Movement));
        schedule.add_systems(
            (fire_weapons, resolve_projectiles, collect_pickups).chain().in_set(ArenaSet::Combat),
        );
        schedule.add_systems((respawn_dead, respawn_pickups).chain().in_set(ArenaSet::Lifecycle));
        // Hits are resolved where the shooter saw the combatants (lag compensation).
        crate::rewind::track::<Position, (With<Health>, Without<Velocity>)>(world, schedule);
    }

    /// A combatant at the spawn point farthest from the living, with full health and a zero
    /// score.
    fn spawn_player(world: &mut World, name: &str) -> Entity {
        let entity = spawn_combatant(world, Kind::Player);
        world.entity_mut(entity).insert(PlayerName(name.to_owned()));
        entity
    }

    fn validate_input(input: &ArenaInput) -> Result<(), InvalidInput> {
        if Buttons::ALL.contains(input.buttons) {
            Ok(())
        } else {
            Err(InvalidInput(format!("unknown button bits {:#x}", input.buttons.0)))
        }
    }

    fn apply_input(entity: &mut EntityWorldMut<'_>, input: &ArenaInput) {
        entity.insert(PlayerInput::from_frame(input));
    }

    /// Keep moving and aiming as last told, press nothing.
    fn repeat_input(last: &ArenaInput) -> ArenaInput {
        ArenaInput { buttons: Buttons::default(), ..*last }
    }

    /// A skipped frame's shot or dash is kept.
    fn merge_skipped(skipped: &ArenaInput, next: &mut ArenaInput) {
        next.buttons = next.buttons.with(skipped.buttons);
    }

    /// `kills` and `deaths` of every combatant.
    fn standings(world: &mut World) -> Standings {
        let mut rows: Vec<StandingRow> = world
            .query::<(&NetId, &Kind, &Score)>()
            .iter(world)
            .filter(|(_, kind, _)| kind.is_combatant())
            .map(|(id, kind, s)| StandingRow {
                entity: *id,
                label: if *kind == Kind::Npc { "npc" } else { "player" }.to_owned(),
                values: vec![i64::from(s.kills), i64::from(s.deaths)],
            })
            .collect();
        rows.sort_by_key(|r| r.entity);
        Standings { columns: vec!["kills", "deaths"], rows }
    }
}

/// Spawns a combatant of `kind` at the spawn point farthest from the living, with full health
/// and a zero score.
fn spawn_combatant(world: &mut World, kind: Kind) -> Entity {
    let mut living = world.query_filtered::<&Position, (With<Health>, Without<Dead>)>();
    let occupied: Vec<Vec2> = living.iter(world).map(|p| p.0).collect();
    let at = {
        let arena = world.get_resource_or_insert_with(Arena::standard);
        pick_spawn_point(&arena, &occupied)
    };
    let id = world.get_resource_or_insert_with(NetIdAllocator::default).next();
    world
        .spawn((
            id,
            kind,
            Position(at),
            Aim(0.0),
            Health(MAX_HEALTH),
            Score::default(),
            Dash::default(),
            Weapon::default(),
            PlayerInput::default(),
        ))
        .id()
}

#[cfg(test)]
mod tests;
