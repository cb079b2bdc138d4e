//! The arena game rules: a top-down 2D arena where players and NPC bots move, aim, dash, shoot
//! projectiles, pick up health, die, respawn and score.
//!
//! The server calls [`install`] once per room, [`spawn_player`] / [`despawn_player`] as players
//! come and go, writes each player's [`PlayerInput`] before every schedule run, and drains
//! [`GameEvents`] after it. The client calls [`registry`] (for the snapshot layout) and
//! [`step_mover`] (prediction) with [`Arena::standard`].
//!
//! Everything is deterministic for a given [`GameConfig::seed`] and input sequence: the only
//! randomness is [`GameRng`], and every system that allocates ids, draws random numbers or
//! resolves contests walks entities in [`NetId`] order.

mod arena;
mod components;
mod movement;
mod npc;
mod systems;

use bevy_ecs::prelude::*;
use glam::Vec2;

pub use arena::{Arena, Obstacle, STANDARD_HALF_EXTENTS};
pub use components::{
    Aim, Dash, Dead, Flight, Health, Kind, LAUNCH_TICK_MODULUS, Launched, Lifetime, Owner, Pickup,
    PickupRespawn, PlayerName, Position, Score, Velocity, Weapon, projectile_position,
};
pub use movement::{
    DASH_COOLDOWN_SECS, DASH_DURATION_SECS, DASH_SPEED, MoverState, PLAYER_RADIUS, PLAYER_SPEED,
    PlayerInput, step_mover, ticks_for,
};
pub use npc::{
    Brain, NPC_DASH_ONE_IN, NPC_FIRE_TOLERANCE, NPC_PREFERRED_RANGE, NPC_SENSE_RANGE,
    NPC_SPEED_SCALE, NPC_TURN_RATE, NPC_WANDER_SCALE, NPC_WANDER_TICKS, npc_think,
};
pub use systems::{
    FIRE_COOLDOWN_SECS, GameEvents, GameRng, MAX_HEALTH, NetIdAllocator, PICKUP_HEAL,
    PICKUP_RADIUS, PICKUP_RESPAWN_SECS, PROJECTILE_DAMAGE, PROJECTILE_LIFETIME_SECS,
    PROJECTILE_RADIUS, PROJECTILE_SPEED, SimClock, advance_clock, collect_pickups, fire_weapons,
    move_combatants, move_projectiles, pick_spawn_point, resolve_projectiles, respawn_dead,
    respawn_pickups, sanitize_inputs,
};

use crate::ids::NetId;
use crate::registry::ReplicationRegistry;
use crate::tick::Tick;

/// Default simulation rate in ticks per second: 60 Hz keeps a tick (16.7 ms) under a frame
/// of a 60 Hz display, so prediction steps line up with what is drawn.
pub const DEFAULT_TICK_RATE: u16 = 60;

/// Default number of NPC bots per room: enough that a lone player always has opponents, few
/// enough that the eight spawn points are not crowded once a few players join.
pub const DEFAULT_NPC_COUNT: usize = 4;

/// Default time a dead combatant waits before respawning, in seconds: long enough that a kill
/// matters, short enough not to bore.
pub const DEFAULT_RESPAWN_SECS: u32 = 3;

/// A room's game settings.
#[derive(Clone, Debug, PartialEq, Eq, Resource)]
pub struct GameConfig {
    /// Simulation ticks per second (`SimClock::dt` is its inverse).
    pub tick_rate: u16,
    /// NPC bots spawned by [`install`].
    pub npc_count: usize,
    /// Seed of the room's [`GameRng`]: same seed and inputs, same game.
    pub seed: u64,
    /// Ticks a dead combatant waits before respawning.
    pub respawn_ticks: u32,
}

impl Default for GameConfig {
    fn default() -> Self {
        GameConfig {
            tick_rate: DEFAULT_TICK_RATE,
            npc_count: DEFAULT_NPC_COUNT,
            seed: 1,
            respawn_ticks: DEFAULT_RESPAWN_SECS * u32::from(DEFAULT_TICK_RATE),
        }
    }
}

/// The phases of one simulation tick, run in this order. Add game systems to one of them with
/// `.in_set(GameSet::Combat)` and so on.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum GameSet {
    /// Player inputs are checked (the server writes them before the run).
    Input,
    /// NPCs decide their inputs.
    Ai,
    /// Combatants and projectiles move.
    Movement,
    /// Shots are fired, hits and pickups resolved.
    Combat,
    /// Respawns, then the clock advances (last).
    Lifecycle,
}

/// The replicated components, always registered in this order: [`Position`] (index 0),
/// [`Kind`], [`Aim`], [`Health`], [`Score`], [`Dash`].
///
/// # Panics
///
/// Never: the registrations are fixed and within the registry's limits (checked by tests).
#[must_use]
pub fn registry() -> ReplicationRegistry {
    let mut r = ReplicationRegistry::new();
    r.register::<Position>().expect("Position registers");
    r.register::<Kind>().expect("Kind registers");
    r.register::<Aim>().expect("Aim registers");
    r.register::<Health>().expect("Health registers");
    r.register::<Score>().expect("Score registers");
    r.register::<Dash>().expect("Dash registers");
    r.register::<Launched>().expect("Launched registers");
    r
}

/// Sets a room up: inserts the resources ([`GameConfig`], [`Arena::standard`], [`SimClock`],
/// [`NetIdAllocator`], [`GameEvents`], [`GameRng`]), spawns the pickups and
/// `config.npc_count` NPCs, and adds every rule system to `schedule` in chained [`GameSet`]s.
pub fn install(world: &mut World, schedule: &mut Schedule, config: &GameConfig) {
    let arena = Arena::standard();
    let tick_rate = config.tick_rate.max(1);
    world.insert_resource(config.clone());
    world.insert_resource(SimClock { tick: Tick(0), dt: 1.0 / f32::from(tick_rate) });
    world.insert_resource(NetIdAllocator::default());
    world.insert_resource(GameEvents::default());
    world.insert_resource(GameRng::new(config.seed));

    for spot in 0..arena.pickup_spots().len() {
        let id = world.resource_mut::<NetIdAllocator>().next();
        world.spawn(systems::pickup_bundle(id, &arena, spot));
    }
    world.insert_resource(arena);
    for _ in 0..config.npc_count {
        let (entity, _) = spawn_combatant(world, Kind::Npc);
        world.entity_mut(entity).insert(Brain::default());
    }

    schedule.configure_sets(
        (GameSet::Input, GameSet::Ai, GameSet::Movement, GameSet::Combat, GameSet::Lifecycle)
            .chain(),
    );
    schedule.add_systems(sanitize_inputs.in_set(GameSet::Input));
    schedule.add_systems(npc_think.in_set(GameSet::Ai));
    schedule.add_systems((move_combatants, move_projectiles).chain().in_set(GameSet::Movement));
    schedule.add_systems(
        (fire_weapons, resolve_projectiles, collect_pickups).chain().in_set(GameSet::Combat),
    );
    schedule.add_systems(
        (respawn_dead, respawn_pickups, advance_clock).chain().in_set(GameSet::Lifecycle),
    );
}

/// Spawns a combatant of `kind` at the spawn point farthest from the living, with full health
/// and a zero score.
fn spawn_combatant(world: &mut World, kind: Kind) -> (Entity, NetId) {
    let mut living = world.query_filtered::<&Position, (With<Health>, Without<Dead>)>();
    let occupied: Vec<Vec2> = living.iter(world).map(|p| p.0).collect();
    let at = {
        let arena = world.get_resource_or_insert_with(Arena::standard);
        pick_spawn_point(&arena, &occupied)
    };
    let id = world.get_resource_or_insert_with(NetIdAllocator::default).next();
    let entity = world
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
        .id();
    (entity, id)
}

/// Spawns a human player named `name` at a free spawn point with full health, a zero score
/// and no input yet. Call after [`install`] (it falls back to a fresh arena and id allocator
/// otherwise).
pub fn spawn_player(world: &mut World, name: &str) -> (Entity, NetId) {
    let (entity, id) = spawn_combatant(world, Kind::Player);
    world.entity_mut(entity).insert(PlayerName(name.to_owned()));
    (entity, id)
}

/// Removes a player's entity (the server announces `GameEvent::Left` itself). Its projectiles
/// fly on and still credit its [`NetId`].
pub fn despawn_player(world: &mut World, entity: Entity) {
    world.despawn(entity);
}

/// A 64-bit FNV-1a hash of the replicated state (ids, presence masks and quantized fields of
/// every replicated entity in id order): equal hashes mean equal states, for match checks.
#[must_use]
pub fn state_hash(world: &mut World) -> u64 {
    let state = registry().capture(world);
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for e in state.iter() {
        eat(&e.id.0.to_le_bytes());
        eat(&e.mask.to_le_bytes());
        for f in e.fields {
            eat(&f.to_le_bytes());
        }
    }
    h
}

#[cfg(test)]
mod tests;
