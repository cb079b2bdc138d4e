//! The game plug-in interface: everything a game declares so that the engine (the room core,
//! the sans-IO client, prediction, the bots, the match runner and the browser shell) can run it
//! without naming it.
//!
//! A game is a type implementing [`Game`]. It says:
//!
//! - its **input** ([`Game::Input`]): one tick of a player's intent, serde-encoded and already
//!   quantized (small integers), so what the client predicts with is exactly what the server
//!   applies. The engine numbers frames, sends the last few redundantly, applies each once, in
//!   order, and echoes the last applied one; the game only says how a frame reaches its world
//!   ([`Game::apply_input`]);
//! - its reliable **events** ([`Game::Event`]), pushed by its systems into [`GameEvents`];
//! - its **replicated components** ([`Game::replicate`], in a fixed order);
//! - its **systems** and their order ([`Game::build`]), inside the engine's [`TickSet`]s:
//!   `Input` → `Simulate` → `Replicate`;
//! - how players **spawn and despawn** ([`Game::spawn_player`], [`Game::despawn_player`]);
//! - what the client **predicts** ([`Game::Prediction`]) and how **bots** play
//!   ([`Game::Bot`]).
//!
//! The engine provides the shared resources every game gets: [`GameConfig`], [`SimClock`],
//! [`NetIdAllocator`], [`GameRng`] and [`GameEvents`]. After the game's systems, the engine
//! re-quantizes the replicated components of every player-controlled entity ([`Controlled`]),
//! so the server simulates on exactly the values the client predicts from, and advances the
//! clock.

use std::fmt::Debug;

use bevy_ecs::prelude::*;
use bevy_ecs::world::EntityWorldMut;
use glam::Vec2;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::client::Client;
use crate::ids::NetId;
use crate::persist::Persistence;
use crate::registry::{Registrar, RegistryError, Replicate, ReplicationRegistry};
use crate::rng::Rng;
use crate::snapshot::EntityView;
use crate::tick::Tick;

/// Default simulation rate in ticks per second: 60 Hz keeps a tick (16.7 ms) under a frame of a
/// 60 Hz display, so prediction steps line up with what is drawn.
pub const DEFAULT_TICK_RATE: u16 = 60;

/// Default number of server-driven bots (NPCs) a game puts in each room: enough that a lone
/// player always has company, few enough not to crowd the first human players.
pub const DEFAULT_NPC_COUNT: usize = 4;

/// A game: see the [module documentation](self).
pub trait Game: Sized + Send + Sync + 'static {
    /// The stable name: `tickwire serve --game NAME`, `?game=NAME`, `Welcome::game`.
    const NAME: &'static str;
    /// One line for `tickwire games`.
    const DESCRIPTION: &'static str;

    /// One tick of one player's input, quantized (it is what travels and what is predicted).
    /// `Default` is "no input".
    type Input: Copy + Default + PartialEq + Debug + Serialize + DeserializeOwned + Send + Sync;
    /// A reliable game event (a kill, a goal), broadcast to every client of the room.
    type Event: Clone + PartialEq + Debug + Serialize + DeserializeOwned + Send + Sync;
    /// What the client predicts of its own player.
    type Prediction: Prediction<Input = Self::Input>;
    /// How a headless bot plays (`tickwire bots`).
    type Bot: BotPolicy<Self>;

    /// Registers the replicated components, in a fixed order (server and clients call it
    /// alike). One of them may be registered as the position
    /// ([`ReplicationRegistry::register_position`]): interest management and interpolation use
    /// it.
    ///
    /// # Errors
    ///
    /// When the registry refuses a component (too many, a duplicate).
    fn replicate(registry: &mut impl Registrar) -> Result<(), crate::registry::RegistryError>;

    /// Sets a room up: the game's resources and first entities (its NPCs: `config.npcs`), and
    /// its systems in the engine's [`TickSet`]s. The engine's resources are already there.
    fn build(world: &mut World, schedule: &mut Schedule, config: &GameConfig);

    /// Spawns a human player named `name` and returns its entity, which must carry a
    /// [`NetId`] (from [`NetIdAllocator`]).
    fn spawn_player(world: &mut World, name: &str) -> Entity;

    /// Removes a player's entity when it leaves for good.
    fn despawn_player(world: &mut World, entity: Entity) {
        world.despawn(entity);
    }

    /// Checks a decoded input for what its type cannot express (unknown button bits, …).
    ///
    /// # Errors
    ///
    /// When the frame must be refused; the session is closed as a protocol error.
    fn validate_input(input: &Self::Input) -> Result<(), InvalidInput> {
        let _ = input;
        Ok(())
    }

    /// Hands one tick's input to the player's entity (before the schedule runs).
    fn apply_input(entity: &mut EntityWorldMut<'_>, input: &Self::Input);

    /// The input of a tick for which no frame arrived in time: by default the last one again
    /// (keep moving); games clear one-shot actions here.
    fn repeat_input(last: &Self::Input) -> Self::Input {
        *last
    }

    /// When a frame reaches the room after its tick (the last input was repeated in its
    /// place), the engine folds its one-shot actions into the next input it applies with this,
    /// so a late shot still fires (a tick late) instead of being lost.
    fn merge_skipped(skipped: &Self::Input, next: &mut Self::Input) {
        let _ = (skipped, next);
    }

    /// Per-entity standings for reports (`tickwire match`): column names and one row per
    /// competitor, in id order.
    fn standings(world: &mut World) -> Standings;

    /// Lists what makes up a match of this game beyond the engine's own ([`crate::persist`]):
    /// every component its entities carry and every resource its rules change. A room is
    /// saved and restored exactly from them (a rolling restart moves it to another instance,
    /// `--dev` reloads it). By default nothing: a room of a game that carries components of
    /// its own then cannot be saved, and a restart ends its matches.
    fn persist(persistence: &mut Persistence) {
        let _ = persistence;
    }
}

/// What the client predicts of its own player: a state read from the newest snapshot, stepped
/// by each input with the game's own rules (the same functions the server runs).
pub trait Prediction: Sized + Send + 'static {
    /// The game's input.
    type Input: Copy;
    /// The predicted part of the own player.
    type State: Copy + PartialEq + Debug + Send;

    /// A predictor for a server stepping `tick_rate` times a second.
    fn new(tick_rate: u16) -> Self;

    /// The own player's state in a snapshot (`None` when it lacks what prediction needs).
    fn read(&self, registry: &ReplicationRegistry, entity: EntityView<'_>) -> Option<Self::State>;

    /// Advances the state by one tick of input, exactly as the server does.
    fn step(&self, state: &mut Self::State, input: &Self::Input);

    /// Where the state puts the player (what is drawn and what corrections are measured on).
    fn position(state: &Self::State) -> Vec2;

    /// Whether inputs move the player now (a dead player's do not).
    fn is_active(state: &Self::State) -> bool {
        let _ = state;
        true
    }

    /// Whether going from the predicted `old` to the server's `new` is a jump the rules made (a
    /// respawn, a kick-off), not a misprediction: it is not counted as a correction, and a
    /// renderer may snap instead of smoothing. By default: the player came back to life.
    fn is_teleport(old: &Self::State, new: &Self::State) -> bool {
        !Self::is_active(old) && Self::is_active(new)
    }

    /// Whether going from the predicted `old` to the server's `new` shows something only the
    /// server applies (a death, a knockback, a push by another body): a correction the client
    /// could not have predicted, reported apart from mispredictions. By default: the player
    /// stopped being active (it died).
    fn is_server_effect(old: &Self::State, new: &Self::State) -> bool {
        Self::is_active(old) && !Self::is_active(new)
    }
}

/// How a headless bot plays: it sees what a browser player sees (its client's newest snapshot)
/// and returns its next input.
pub trait BotPolicy<G: Game>: Sized + Send + 'static {
    /// The behaviours `tickwire bots --behavior` accepts; the first is the default.
    const BEHAVIORS: &'static [&'static str];

    /// A bot of `behavior` (one of [`BotPolicy::BEHAVIORS`]) whose randomness comes from
    /// `seed`; `None` for an unknown behaviour.
    fn new(behavior: &str, seed: u64) -> Option<Self>;

    /// The input for the next tick at `tick_rate`, from what `client` last decoded.
    fn think(&mut self, client: &Client<G>, tick_rate: u16) -> G::Input;
}

/// A [`Prediction`] for games (or tests) that predict nothing: the client shows its own player
/// as the snapshots have it.
#[derive(Debug)]
pub struct NoPrediction<I>(std::marker::PhantomData<fn() -> I>);

impl<I: Copy + 'static> Prediction for NoPrediction<I> {
    type Input = I;
    type State = ();

    fn new(_tick_rate: u16) -> Self {
        NoPrediction(std::marker::PhantomData)
    }

    fn read(&self, _registry: &ReplicationRegistry, _entity: EntityView<'_>) -> Option<()> {
        None
    }

    fn step(&self, _state: &mut (), _input: &I) {}

    fn position(_state: &()) -> Vec2 {
        Vec2::ZERO
    }
}

/// A [`BotPolicy`] that sends no input ([`Game::Input`]'s `Default`) every tick: measures pure
/// replication load, and serves games that have no bot of their own yet.
#[derive(Clone, Copy, Debug, Default)]
pub struct IdleBot;

impl<G: Game> BotPolicy<G> for IdleBot {
    const BEHAVIORS: &'static [&'static str] = &["idle"];

    fn new(behavior: &str, _seed: u64) -> Option<IdleBot> {
        (behavior == "idle").then_some(IdleBot)
    }

    fn think(&mut self, _client: &Client<G>, _tick_rate: u16) -> G::Input {
        G::Input::default()
    }
}

/// A decoded input frame the game refuses.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("invalid input: {0}")]
pub struct InvalidInput(pub String);

/// Standings for a report: `columns` name the values of each row.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Standings {
    /// Column names (`kills`, `deaths`, `goals`, …).
    pub columns: Vec<&'static str>,
    /// One row per competitor, in id order.
    pub rows: Vec<StandingRow>,
}

/// One competitor's line of [`Standings`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StandingRow {
    /// Its entity.
    pub entity: NetId,
    /// What it is (`npc`, `player`, a team, …).
    pub label: String,
    /// One value per column.
    pub values: Vec<i64>,
}

/// A room's game settings, the same for every game.
#[derive(Clone, Debug, PartialEq, Eq, Resource)]
pub struct GameConfig {
    /// Simulation ticks per second ([`SimClock::dt`] is its inverse). Games count durations
    /// in ticks with [`GameConfig::ticks`], so every duration follows the rate.
    pub tick_rate: u16,
    /// Server-driven bots (NPCs) the game spawns in [`Game::build`].
    pub npcs: usize,
    /// Seed of the room's [`GameRng`]: same seed and inputs, same game.
    pub seed: u64,
}

impl Default for GameConfig {
    fn default() -> Self {
        GameConfig { tick_rate: DEFAULT_TICK_RATE, npcs: DEFAULT_NPC_COUNT, seed: 1 }
    }
}

impl GameConfig {
    /// Seconds per tick.
    #[must_use]
    pub fn dt(&self) -> f32 {
        1.0 / f32::from(self.tick_rate.max(1))
    }

    /// Whole ticks in `secs` at this rate (at least one).
    #[must_use]
    pub fn ticks(&self, secs: f32) -> u32 {
        (secs * f32::from(self.tick_rate.max(1))).round().max(1.0) as u32
    }
}

/// The phases of one simulation tick, run in this order. Games put their systems in
/// `Input` (checking what the engine wrote) and `Simulate` (everything else, in sets of their
/// own); the engine's systems run in `Replicate`.
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TickSet {
    /// Players' inputs are checked (the engine writes them before the run).
    Input,
    /// The game's rules.
    Simulate,
    /// The engine re-quantizes controlled entities and advances the clock (last).
    Replicate,
}

/// The simulation's clock: the tick being simulated and its length.
#[derive(Resource, Clone, Copy, Debug, Serialize, Deserialize)]
pub struct SimClock {
    /// The tick the current schedule run simulates; the engine moves it on at the end of the
    /// run.
    pub tick: Tick,
    /// Seconds per tick (`1 / tick_rate`).
    pub dt: f32,
}

/// Hands out [`NetId`]s upward from 1; an id is never reused (it would take 2^32 − 1 ids, over
/// two years of 60 a second, to wrap), so a client's baseline can never confuse a new entity
/// with a gone one.
#[derive(Resource, Debug, Serialize, Deserialize)]
pub struct NetIdAllocator {
    next: u32,
}

impl Default for NetIdAllocator {
    fn default() -> Self {
        NetIdAllocator { next: 1 }
    }
}

impl NetIdAllocator {
    /// A fresh id.
    #[expect(
        clippy::should_implement_trait,
        reason = "an id allocator is not an iterator: it never ends"
    )]
    pub fn next(&mut self) -> NetId {
        let id = NetId(self.next);
        self.next = self.next.wrapping_add(1).max(1);
        id
    }
}

/// The room's deterministic random numbers: SplitMix64-seeded xorshift64*. The only source of
/// randomness a game's rules may use.
#[derive(Resource, Clone, Debug, Serialize, Deserialize)]
pub struct GameRng {
    rng: Rng,
}

impl GameRng {
    /// A generator for `seed` (any value, zero included).
    #[must_use]
    pub fn new(seed: u64) -> GameRng {
        // SplitMix64 spreads close seeds apart.
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        GameRng { rng: Rng::from_state(z ^ (z >> 31)) }
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// A uniform value in `[0, 1)`.
    pub fn next_f32(&mut self) -> f32 {
        self.rng.unit()
    }

    /// A value in `lo..hi` (`lo` when the range is empty).
    pub fn range_u32(&mut self, lo: u32, hi: u32) -> u32 {
        if hi <= lo {
            return lo;
        }
        lo + (self.next_u64() % u64::from(hi - lo)) as u32
    }

    /// True with probability `1 / n` (never for `n == 0`).
    pub fn one_in(&mut self, n: u32) -> bool {
        n != 0 && self.next_u64().is_multiple_of(u64::from(n))
    }
}

/// The game's events since the engine last drained them (after every tick).
#[derive(Resource, Debug)]
pub struct GameEvents<E: Send + Sync + 'static>(pub Vec<E>);

impl<E: Send + Sync + 'static> Default for GameEvents<E> {
    fn default() -> Self {
        GameEvents(Vec::new())
    }
}

/// Marks an entity driven by a player's input (the engine adds it to what
/// [`Game::spawn_player`] returns). Its replicated components are re-quantized after every tick.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Controlled;

/// The registry of game `G`, in its fixed order.
///
/// # Panics
///
/// When the game's [`Game::replicate`] registers components wrongly (a duplicate, too many): a
/// programming error that the engine's tests catch for every game.
#[must_use]
pub fn registry<G: Game>() -> ReplicationRegistry {
    let mut registry = ReplicationRegistry::new();
    // No formatting of the error here: the page would link it. Each game's test reports it
    // (`games::tests`).
    if G::replicate(&mut registry).is_err() {
        panic!("game {} registers its replicated components wrongly", G::NAME);
    }
    registry
}

/// Sets a world and schedule up for game `G`: the engine's resources, the [`TickSet`] order,
/// the engine's systems, then the game's ([`Game::build`]).
pub fn install<G: Game>(world: &mut World, schedule: &mut Schedule, config: &GameConfig) {
    let config = GameConfig { tick_rate: config.tick_rate.max(1), ..config.clone() };
    world.insert_resource(SimClock { tick: Tick(0), dt: config.dt() });
    world.insert_resource(NetIdAllocator::default());
    world.insert_resource(GameEvents::<G::Event>::default());
    world.insert_resource(GameRng::new(config.seed));
    world.insert_resource(config.clone());
    world.insert_resource(crate::rewind::RewindSettings::from_ms(
        crate::rewind::DEFAULT_MAX_REWIND_MS,
        config.tick_rate,
    ));
    // The engine's part of a room's state; the rewind histories the game tracks add theirs.
    let mut persistence = Persistence::new();
    persistence
        .component::<NetId>()
        .component::<Controlled>()
        .component::<crate::rewind::ViewLag>()
        .resource::<SimClock>()
        .resource::<NetIdAllocator>()
        .resource::<GameRng>();
    world.insert_resource(persistence);
    schedule.configure_sets((TickSet::Input, TickSet::Simulate, TickSet::Replicate).chain());
    if let Err(e) = G::replicate(&mut Requantizers(schedule)) {
        panic!("game {} registers its replicated components wrongly: {e}", G::NAME);
    }
    schedule.add_systems(advance_clock.in_set(TickSet::Replicate).after(Requantize));
    G::build(world, schedule, &config);
    G::persist(&mut world.resource_mut::<Persistence>());
}

/// The set of the engine's re-quantizing systems (inside [`TickSet::Replicate`]).
#[derive(SystemSet, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Requantize;

/// Adds, for each replicated component `C`, the system that snaps `C` of every
/// [`Controlled`] entity to its quantized value, so the server simulates on what it sends.
struct Requantizers<'a>(&'a mut Schedule);

impl Registrar for Requantizers<'_> {
    fn component<C: Replicate>(&mut self) -> Result<(), RegistryError> {
        self.0.add_systems(requantize::<C>.in_set(TickSet::Replicate).in_set(Requantize));
        Ok(())
    }

    fn position<C: Replicate>(&mut self) -> Result<(), RegistryError> {
        Ok(())
    }
}

fn requantize<C: Replicate>(mut items: Query<'_, '_, &mut C, With<Controlled>>) {
    let mut fields = [0i32; crate::registry::MAX_FIELDS];
    let n = C::FIELDS.len();
    for mut item in &mut items {
        item.quantize(&mut fields[..n]);
        *item.bypass_change_detection() = C::dequantize(&fields[..n]);
    }
}

/// Ends the run: the next run simulates the next tick ([`TickSet::Replicate`], last).
pub fn advance_clock(mut clock: ResMut<'_, SimClock>) {
    clock.tick = clock.tick.next();
}

/// Spawns a player of game `G` and marks it [`Controlled`]; returns its entity and id.
///
/// # Panics
///
/// When the game's [`Game::spawn_player`] returns an entity without a [`NetId`] (a programming
/// error its tests catch).
pub fn spawn_player<G: Game>(world: &mut World, name: &str) -> (Entity, NetId) {
    let entity = G::spawn_player(world, name);
    let mut e = world.entity_mut(entity);
    e.insert(Controlled);
    let id = *e.get::<NetId>().unwrap_or_else(|| {
        panic!("game {}: spawn_player returned an entity without a NetId", G::NAME)
    });
    (entity, id)
}

/// A 64-bit FNV-1a hash of the replicated state of `world` under game `G`'s registry (ids,
/// presence masks and quantized fields of every replicated entity in id order): equal hashes
/// mean equal states, for determinism checks. The engine's hidden motion (never captured from
/// a world, [`crate::motion`]) is left out, so the hash is the game's alone.
#[must_use]
pub fn state_hash<G: Game>(world: &mut World) -> u64 {
    let registry = registry::<G>();
    let state = registry.capture(world);
    hash_state(&registry, &state)
}

/// [`state_hash`] of a state already captured with `registry` (or replicated by a room: the
/// motion is left out either way).
#[must_use]
pub fn hash_state(registry: &ReplicationRegistry, state: &crate::state::ReplicatedState) -> u64 {
    let motion = registry.motion_index();
    // A state the room replicated carries the motion; one captured from a world does not.
    let keep = !motion.map_or(0, |m| 1u32 << m.0);
    let mut h = crate::fnv::Fnv64::new();
    for e in state.iter() {
        h.eat(&e.id.0.to_le_bytes());
        h.eat(&(e.mask & keep).to_le_bytes());
        for (idx, offset, fields) in registry.layout() {
            if Some(idx) != motion {
                for f in &e.fields[offset..offset + fields.len()] {
                    h.eat(&f.to_le_bytes());
                }
            }
        }
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_seeded_and_deterministic() {
        let mut a = GameRng::new(7);
        let mut b = GameRng::new(7);
        let mut c = GameRng::new(8);
        let xs: Vec<u64> = (0..8).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..8).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..8).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
        let mut z = GameRng::new(0);
        for _ in 0..1000 {
            let f = z.next_f32();
            assert!((0.0..1.0).contains(&f));
            let r = z.range_u32(5, 9);
            assert!((5..9).contains(&r));
        }
    }

    #[test]
    fn ids_count_up_from_one() {
        let mut ids = NetIdAllocator::default();
        assert_eq!(ids.next(), NetId(1));
        assert_eq!(ids.next(), NetId(2));
    }

    #[test]
    fn durations_follow_the_tick_rate() {
        let at = |tick_rate| GameConfig { tick_rate, ..GameConfig::default() };
        assert_eq!(at(60).ticks(3.0), 180);
        assert_eq!(at(30).ticks(3.0), 90);
        assert_eq!(at(30).ticks(0.0), 1, "at least one tick");
        assert_eq!(at(0).dt(), 1.0, "a zero rate is read as 1 Hz");
    }
}
