//! Tag: one runner is "it" and passes it on by touching another. The game of the tutorial in
//! `docs/EXTENDING.md`; in a real tree this file is `shared/src/games/tag/mod.rs`. Every path
//! is absolute (`tickwire_shared::…`), so the same text compiles inside `tickwire-shared` and in
//! the test that checks the tutorial (`tests/tests/extending.rs`).

use bevy_ecs::prelude::*;
use bevy_ecs::world::EntityWorldMut;
use glam::Vec2;
use serde::{Deserialize, Serialize};
use tickwire_shared::client::Client;
use tickwire_shared::game::{
    BotPolicy, Game, GameConfig, GameEvents, NetIdAllocator, Prediction, SimClock, StandingRow,
    Standings, TickSet,
};
use tickwire_shared::ids::NetId;
use tickwire_shared::persist::Persistence;
use tickwire_shared::quantize;
use tickwire_shared::registry::{Registrar, RegistryError, Replicate, ReplicationRegistry};
use tickwire_shared::snapshot::EntityView;

// ANCHOR: components
/// Where a runner is: two integer fields on the 1/64 grid.
#[derive(Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Position(#[quantize(position)] pub Vec2);

/// Whether this runner is "it": sent as one integer field, 0 or 1.
#[derive(
    Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize,
)]
pub struct It(pub bool);
// ANCHOR_END: components

// ANCHOR: input
/// One tick of a runner's input: a direction, each axis in -127..=127.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagInput {
    /// The direction to run in.
    pub run: [i8; 2],
}

/// What happened: a runner passed "it" on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TagEvent {
    /// `from` touched `to`, who is "it" now.
    Tagged {
        /// The old "it".
        from: NetId,
        /// The new one.
        to: NetId,
    },
}
// ANCHOR_END: input

/// Running speed, units per second.
pub const SPEED: f32 = 200.0;

/// Touching distance, units.
pub const REACH: f32 = 24.0;

/// Half the field's size: runners stay inside.
pub const HALF: Vec2 = Vec2::new(400.0, 300.0);

// ANCHOR: step
/// One tick of a runner's movement: the server's system and the client's prediction both
/// call it, so a replay lands where the server put the runner. It ends on the grid.
#[must_use]
pub fn step(at: Vec2, input: &TagInput, dt: f32) -> Vec2 {
    let dir = Vec2::new(quantize::axis_value(input.run[0]), quantize::axis_value(input.run[1]));
    let next = (at + dir.clamp_length_max(1.0) * SPEED * dt).clamp(-HALF, HALF);
    quantize::position2_value(quantize::position2(next))
}
// ANCHOR_END: step

/// The runner's current input (the engine hands it over each tick; bots write it too).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Running(pub TagInput);

// ANCHOR: systems
/// The phases of a tick of tag, inside the engine's `TickSet::Simulate`.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TagSet {
    /// Runners move.
    Move,
    /// "It" passes on.
    Tag,
}

/// Moves every runner by its input.
pub fn run(clock: Res<'_, SimClock>, mut runners: Query<'_, '_, (&Running, &mut Position)>) {
    for (running, mut at) in &mut runners {
        at.0 = step(at.0, &running.0, clock.dt);
    }
}

/// "It" tags the nearest runner within reach (lowest id on a tie).
pub fn tag(
    mut events: ResMut<'_, GameEvents<TagEvent>>,
    mut runners: Query<'_, '_, (&NetId, &Position, &mut It)>,
) {
    let mut all: Vec<(NetId, Vec2, bool)> =
        runners.iter().map(|(id, at, it)| (*id, at.0, it.0)).collect();
    all.sort_by_key(|r| r.0);
    let Some(&(from, at, _)) = all.iter().find(|r| r.2) else { return };
    let touched = all
        .iter()
        .filter(|r| r.0 != from && r.1.distance(at) < REACH)
        .min_by(|a, b| a.1.distance(at).total_cmp(&b.1.distance(at)));
    let Some(&(to, _, _)) = touched else { return };
    for (id, _, mut it) in &mut runners {
        it.0 = *id == to;
    }
    events.0.push(TagEvent::Tagged { from, to });
}
// ANCHOR_END: systems

// ANCHOR: game
/// Tag as a [`Game`].
pub struct TagGame;

impl Game for TagGame {
    const NAME: &'static str = "tag";
    const DESCRIPTION: &'static str = "one runner is it and passes it on by touching another";

    type Input = TagInput;
    type Event = TagEvent;
    type Prediction = TagPrediction;
    type Bot = TagBot;

    fn replicate(r: &mut impl Registrar) -> Result<(), RegistryError> {
        r.component::<Position>()?;
        r.component::<It>()?;
        r.position::<Position>()
    }

    fn build(world: &mut World, schedule: &mut Schedule, config: &GameConfig) {
        for i in 0..config.npcs {
            let id = world.resource_mut::<NetIdAllocator>().next();
            let at = Vec2::new(-300.0 + 100.0 * i as f32, 0.0);
            world.spawn((id, Position(at), It(i == 0), Running::default()));
        }
        schedule.configure_sets((TagSet::Move, TagSet::Tag).chain().in_set(TickSet::Simulate));
        schedule.add_systems(run.in_set(TagSet::Move));
        schedule.add_systems(tag.in_set(TagSet::Tag));
    }

    fn spawn_player(world: &mut World, _name: &str) -> Entity {
        let id = world.resource_mut::<NetIdAllocator>().next();
        let nobody_is_it = world.query::<&It>().iter(world).all(|it| !it.0);
        world.spawn((id, Position(Vec2::ZERO), It(nobody_is_it), Running::default())).id()
    }

    fn apply_input(entity: &mut EntityWorldMut<'_>, input: &TagInput) {
        entity.insert(Running(*input));
    }

    fn standings(world: &mut World) -> Standings {
        let mut rows: Vec<StandingRow> = world
            .query::<(&NetId, &It)>()
            .iter(world)
            .map(|(id, it)| StandingRow {
                entity: *id,
                label: "runner".into(),
                values: vec![i64::from(it.0)],
            })
            .collect();
        rows.sort_by_key(|r| r.entity);
        Standings { columns: vec!["it"], rows }
    }

    fn persist(p: &mut Persistence) {
        p.component::<Position>().component::<It>().component::<Running>();
    }
}
// ANCHOR_END: game

// ANCHOR: prediction
/// What a tag client predicts: its own position, with [`step`].
pub struct TagPrediction {
    dt: f32,
}

impl Prediction for TagPrediction {
    type Input = TagInput;
    type State = Vec2;

    fn new(tick_rate: u16) -> TagPrediction {
        TagPrediction { dt: 1.0 / f32::from(tick_rate.max(1)) }
    }

    fn read(&self, registry: &ReplicationRegistry, entity: EntityView<'_>) -> Option<Vec2> {
        registry.get::<Position>(entity).map(|p| p.0)
    }

    fn step(&self, state: &mut Vec2, input: &TagInput) {
        *state = step(*state, input, self.dt);
    }

    fn position(state: &Vec2) -> Vec2 {
        *state
    }
}
// ANCHOR_END: prediction

// ANCHOR: bot
/// A headless tag player: "it" chases the nearest runner, the others flee from "it".
pub struct TagBot;

impl BotPolicy<TagGame> for TagBot {
    const BEHAVIORS: &'static [&'static str] = &["play"];

    fn new(behavior: &str, _seed: u64) -> Option<TagBot> {
        (behavior == "play").then_some(TagBot)
    }

    fn think(&mut self, client: &Client<TagGame>, _tick_rate: u16) -> TagInput {
        let (Some((_, state)), Some(own)) = (client.latest(), client.own_entity()) else {
            return TagInput::default();
        };
        let r = client.registry();
        let me = state.get(own).and_then(|e| Some((r.get::<Position>(e)?.0, r.get::<It>(e)?.0)));
        let Some((at, i_am_it)) = me else { return TagInput::default() };
        let others = state.iter().filter(|e| e.id != own);
        let target = if i_am_it {
            others
                .filter_map(|e| r.get::<Position>(e))
                .map(|p| p.0)
                .min_by(|a, b| a.distance(at).total_cmp(&b.distance(at)))
        } else {
            others.filter(|e| r.get::<It>(*e).is_some_and(|it| it.0)).find_map(|e| {
                // Run directly away: aim at the mirror image of "it".
                r.get::<Position>(e).map(|p| at * 2.0 - p.0)
            })
        };
        let dir = target.map_or(Vec2::ZERO, |t| (t - at).normalize_or_zero());
        TagInput { run: [quantize::axis(dir.x), quantize::axis(dir.y)] }
    }
}
// ANCHOR_END: bot
