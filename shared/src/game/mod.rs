//! TEMPORARY stub of the arena game rules, matching the agreed API so the server compiles while
//! the real rules are written on the `game` branch. Replaced wholesale at merge.

use bevy_ecs::prelude::*;
use glam::Vec2;

use crate::ids::NetId;
use crate::protocol::{Buttons, GameEvent, InputFrame};
use crate::quantize;
use crate::registry::{FieldSpec, Replicate, ReplicationRegistry};
use crate::tick::Tick;

/// Game settings.
#[derive(Clone, Debug)]
pub struct GameConfig {
    /// Ticks per second.
    pub tick_rate: u16,
    /// NPCs per room.
    pub npc_count: usize,
    /// Seed.
    pub seed: u64,
    /// Ticks until respawn.
    pub respawn_ticks: u32,
}

impl Default for GameConfig {
    fn default() -> Self {
        GameConfig { tick_rate: 60, npc_count: 4, seed: 1, respawn_ticks: 180 }
    }
}

/// Position.
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct Position(pub Vec2);

impl Replicate for Position {
    const NAME: &'static str = "position";
    const FIELDS: &'static [FieldSpec] = &[FieldSpec::int("x"), FieldSpec::int("y")];
    fn quantize(&self, out: &mut [i32]) {
        out.copy_from_slice(&quantize::position2(self.0));
    }
    fn dequantize(fields: &[i32]) -> Self {
        Position(quantize::position2_value([fields[0], fields[1]]))
    }
}

/// Input.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq)]
pub struct PlayerInput {
    /// Movement.
    pub movement: Vec2,
    /// Aim.
    pub aim: f32,
    /// Buttons.
    pub buttons: Buttons,
}

impl PlayerInput {
    /// From a frame.
    #[must_use]
    pub fn from_frame(frame: &InputFrame) -> PlayerInput {
        let m = Vec2::new(
            quantize::axis_value(frame.movement[0]),
            quantize::axis_value(frame.movement[1]),
        );
        PlayerInput {
            movement: m.clamp_length_max(1.0),
            aim: quantize::angle_value(frame.aim),
            buttons: frame.buttons,
        }
    }
}

/// Events.
#[derive(Resource, Default)]
pub struct GameEvents(pub Vec<GameEvent>);

/// Clock.
#[derive(Resource)]
pub struct SimClock {
    /// Tick.
    pub tick: Tick,
    /// Dt.
    pub dt: f32,
}

/// Ids.
#[derive(Resource, Default)]
pub struct NetIdAllocator(u32);

impl NetIdAllocator {
    /// Next id.
    pub fn allocate(&mut self) -> NetId {
        self.0 += 1;
        NetId(self.0)
    }
}

/// Registry.
#[must_use]
pub fn registry() -> ReplicationRegistry {
    let mut r = ReplicationRegistry::new();
    r.register::<Position>().expect("fresh");
    r
}

fn movement(mut q: Query<'_, '_, (&mut Position, &PlayerInput)>, clock: Res<'_, SimClock>) {
    for (mut p, i) in &mut q {
        let next = p.0 + i.movement * 220.0 * clock.dt;
        p.0 = quantize::position2_value(quantize::position2(
            next.clamp(Vec2::splat(-600.0), Vec2::splat(600.0)),
        ));
    }
}

fn advance(mut clock: ResMut<'_, SimClock>) {
    clock.tick = clock.tick.next();
}

/// Install.
pub fn install(world: &mut World, schedule: &mut Schedule, config: &GameConfig) {
    world.insert_resource(SimClock { tick: Tick(0), dt: 1.0 / f32::from(config.tick_rate) });
    world.insert_resource(GameEvents::default());
    world.insert_resource(NetIdAllocator::default());
    for i in 0..config.npc_count {
        let id = world.resource_mut::<NetIdAllocator>().allocate();
        world.spawn((id, Position(Vec2::new(i as f32 * 50.0, 100.0))));
    }
    schedule.add_systems((movement, advance).chain());
}

/// Spawn.
pub fn spawn_player(world: &mut World, _name: &str) -> (Entity, NetId) {
    let id = world.resource_mut::<NetIdAllocator>().allocate();
    let e = world.spawn((id, Position(Vec2::ZERO), PlayerInput::default())).id();
    (e, id)
}

/// Despawn.
pub fn despawn_player(world: &mut World, entity: Entity) {
    world.despawn(entity);
}
