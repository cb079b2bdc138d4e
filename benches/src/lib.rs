//! `tickwire-benches`: criterion benchmarks (`benches/benches/`), the tick-distribution example
//! (`examples/tick_percentiles.rs`) and the fixtures they share.
//!
//! [`RoomScenario`] is a real [`Room`] stepped by hand, with players joined through
//! [`RoomHandle::try_join`] and [`Outbox`]es instead of sockets (as `tests/src/harness.rs`
//! does). Each player behaves like a real client: it sends an [`InputBatch`] every tick with its
//! last four frames and an ack of the newest snapshot it received, so the room encodes deltas,
//! not full snapshots. Extra replicated "drifter" entities (projectile-kind entities with a
//! [`NetId`], moved by the scenario every tick) bring the replicated count up without making
//! the NPC AI, which is quadratic in combatants, the whole cost.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bevy_ecs::prelude::*;
use glam::Vec2;
use tickwire_server::metrics::Metrics;
use tickwire_server::outbox::{OutItem, Outbox};
use tickwire_server::room::{JoinTicket, ResumeIndex, Room, RoomHandle};
use tickwire_shared::game::{self, NetIdAllocator, SimClock};
use tickwire_shared::games::arena::{
    Aim, ArenaGame, ArenaInput as InputFrame, Buttons, Kind, Position, STANDARD_HALF_EXTENTS,
};
use tickwire_shared::protocol::{InputBatch, ServerMessage};
use tickwire_shared::room::RoomSettings;
use tickwire_shared::snapshot::ReplicatedState;
use tickwire_shared::{ClientId, NetId, Tick, codec, quantize};

/// The server's default interest radius (`tickwire_server::config`), in world units.
pub const INTEREST_RADIUS: f32 = 1_200.0;

/// Input frames per batch: a client resends its last few frames redundantly.
pub const FRAMES_PER_BATCH: usize = 4;

/// The shared deterministic PRNG, so every run builds the same scenario.
pub use tickwire_shared::rng::Rng;

/// The size of a [`RoomScenario`].
#[derive(Clone, Copy, Debug)]
pub struct ScenarioConfig {
    /// Human players (clients that send inputs and acks).
    pub n_players: usize,
    /// NPC bots (`GameConfig::npcs`).
    pub n_npcs: usize,
    /// Extra replicated drifters.
    pub n_drifters: usize,
}

impl ScenarioConfig {
    /// Replicated entities about: players, NPCs, drifters and the four pickups (projectiles
    /// come and go on top).
    #[must_use]
    pub fn entities(&self) -> usize {
        self.n_players + self.n_npcs + self.n_drifters + 4
    }
}

/// A drifter: a replicated projectile-kind entity the scenario moves each tick, bouncing off the
/// arena's bounds.
#[derive(Component, Clone, Copy, Debug)]
pub struct Drift(pub Vec2);

struct BenchClient {
    id: ClientId,
    outbox: Arc<Outbox>,
    next_seq: u32,
    frames: Vec<InputFrame>,
    acked: Option<Tick>,
    snapshot_bytes: u64,
    snapshots: u64,
}

/// A room with players acting like real clients (see the crate docs).
pub struct RoomScenario {
    /// The room (the server's driver around the arena's room core).
    pub room: Room<ArenaGame>,
    handle: RoomHandle,
    clients: Vec<BenchClient>,
    rng: Rng,
    drift_query: QueryState<(&'static mut Position, &'static mut Drift)>,
}

impl RoomScenario {
    /// Builds the room, joins the players and runs `warmup` ticks (with clients acking).
    ///
    /// # Panics
    ///
    /// If the room refuses a join (capacity is set to the player count, so it does not).
    #[must_use]
    pub fn new(config: ScenarioConfig, warmup: usize) -> RoomScenario {
        RoomScenario::with_radius(config, warmup, INTEREST_RADIUS)
    }

    /// [`RoomScenario::new`] with another interest radius (world units).
    ///
    /// # Panics
    ///
    /// If the room refuses a join (it does not: capacity is the player count).
    #[must_use]
    pub fn with_radius(config: ScenarioConfig, warmup: usize, radius: f32) -> RoomScenario {
        let room_config = RoomSettings {
            id: "bench".into(),
            tick_rate: 60,
            ticks_per_snapshot: 2,
            capacity: config.n_players,
            interest_radius: radius,
            resume_grace_ticks: 600,
            idle_close_ticks: u64::MAX,
            npcs: config.n_npcs,
            seed: 1,
            max_rewind_ms: tickwire_shared::rewind::DEFAULT_MAX_REWIND_MS,
            client_kbps: 0,
        };
        let (mut room, handle) =
            Room::new(room_config, Arc::new(Metrics::default()), ResumeIndex::default());
        let mut rng = Rng::new(7);
        {
            let world = room.core_mut().world_mut();
            let half = STANDARD_HALF_EXTENTS;
            for _ in 0..config.n_drifters {
                let id: NetId = world.resource_mut::<NetIdAllocator>().next();
                let at = Vec2::new(rng.signed() * half.x, rng.signed() * half.y);
                let dir = Vec2::from_angle(rng.unit() * std::f32::consts::TAU);
                // 60-240 units/s: projectiles are fast, most movers are slower.
                let speed = 60.0 + rng.unit() * 180.0;
                world.spawn((
                    id,
                    Kind::Projectile,
                    Position(at),
                    Aim(dir.to_angle()),
                    Drift(dir * speed),
                ));
            }
        }
        let mut clients = Vec::with_capacity(config.n_players);
        for i in 0..config.n_players {
            let id = ClientId(i as u32 + 1);
            let outbox = Arc::new(Outbox::new(1 << 20));
            let ticket =
                JoinTicket { name: format!("p{i}"), subject: format!("p{i}"), resume: None };
            let mut reply = handle.try_join(id, ticket, outbox.clone());
            room.step();
            match reply.try_recv() {
                Ok(Ok(_)) => {}
                other => panic!("join {i} refused: {other:?}"),
            }
            clients.push(BenchClient {
                id,
                outbox,
                next_seq: 0,
                frames: Vec::with_capacity(FRAMES_PER_BATCH),
                acked: None,
                snapshot_bytes: 0,
                snapshots: 0,
            });
            // The joined ones read their snapshots while the rest join, as real clients do (a
            // client that reads none for a second is closed as too slow).
            drain(&mut clients);
        }
        let drift_query = room.core_mut().world_mut().query::<(&mut Position, &mut Drift)>();
        let mut s = RoomScenario { room, handle, clients, rng, drift_query };
        for _ in 0..warmup {
            s.tick();
        }
        s.reset_counters();
        s
    }

    /// The clients' side before a tick: each sends a batch (new frame plus the last three) with
    /// its ack. Not part of the server's cost.
    pub fn send_inputs(&mut self) {
        for c in &mut self.clients {
            let r = &mut self.rng;
            // Mostly steady movement with occasional turns; fire now and then.
            let frame = match c.frames.last() {
                Some(last) if r.unit() < 0.9 => *last,
                _ => InputFrame {
                    movement: [quantize::axis(r.signed()), quantize::axis(r.signed())],
                    aim: quantize::angle(r.unit() * std::f32::consts::TAU),
                    buttons: if r.unit() < 0.2 { Buttons::FIRE } else { Buttons::default() },
                },
            };
            if c.frames.len() == FRAMES_PER_BATCH {
                c.frames.remove(0);
            }
            c.frames.push(frame);
            c.next_seq = c.next_seq.wrapping_add(1);
            let first_seq = c.next_seq.wrapping_sub(c.frames.len() as u32);
            let frames = codec::encode_inputs(&c.frames).expect("1-4 frames");
            let batch = InputBatch { ack: c.acked, first_seq, frames, view: None };
            self.handle.input(c.id, batch);
        }
    }

    /// The server's work for one tick: the drifters move (standing in for a simulation
    /// system), then [`Room::step`] (inputs, simulation, events, and on every second tick
    /// capture, interest, encode and queue a snapshot per client).
    pub fn server_tick(&mut self) {
        let dt = 1.0 / 60.0;
        let half = STANDARD_HALF_EXTENTS;
        let world = self.room.core_mut().world_mut();
        for (mut pos, mut drift) in self.drift_query.iter_mut(world) {
            let mut p = pos.0 + drift.0 * dt;
            if p.x.abs() > half.x {
                drift.0.x = -drift.0.x;
                p.x = p.x.clamp(-half.x, half.x);
            }
            if p.y.abs() > half.y {
                drift.0.y = -drift.0.y;
                p.y = p.y.clamp(-half.y, half.y);
            }
            pos.0 = p;
        }
        self.room.step();
    }

    /// The clients' side after a tick: drain every outbox and remember the newest snapshot's
    /// tick for the next ack. Not part of the server's cost.
    pub fn receive(&mut self) {
        drain(&mut self.clients);
    }

    /// One whole tick: clients send, the server ticks, clients receive. Returns how long the
    /// server's part took.
    pub fn tick(&mut self) -> Duration {
        self.send_inputs();
        let start = Instant::now();
        self.server_tick();
        let took = start.elapsed();
        self.receive();
        took
    }

    /// Whether the next [`Room::step`] builds snapshots.
    #[must_use]
    pub fn next_is_snapshot_tick(&mut self) -> bool {
        // Snapshot ticks are every second step; the room's tick counts steps from 0.
        let tick = self.room.core_mut().world_mut().resource::<SimClock>().tick;
        tick.0 % 2 == 1
    }

    /// Replicated entities in the world now.
    pub fn replicated(&mut self) -> usize {
        let world = self.room.core_mut().world_mut();
        world.query::<&NetId>().iter(world).count()
    }

    /// Zeroes the snapshot byte counters.
    pub fn reset_counters(&mut self) {
        for c in &mut self.clients {
            c.snapshot_bytes = 0;
            c.snapshots = 0;
        }
    }

    /// Mean snapshot message size in bytes since the last reset.
    #[must_use]
    pub fn mean_snapshot_bytes(&self) -> f64 {
        let bytes: u64 = self.clients.iter().map(|c| c.snapshot_bytes).sum();
        let n: u64 = self.clients.iter().map(|c| c.snapshots).sum();
        if n == 0 { 0.0 } else { bytes as f64 / n as f64 }
    }
}

/// A replicated state captured from a real game world: `n` entities (NPCs plus drifters, the
/// four pickups included) after `ticks` ticks of play, and the state one snapshot later.
/// Returns `(baseline, current)`.
#[must_use]
pub fn captured_pair(n: usize) -> (ReplicatedState, ReplicatedState) {
    let n_npcs = (n / 10).min(100);
    let config = ScenarioConfig { n_players: 0, n_npcs, n_drifters: n.saturating_sub(n_npcs + 4) };
    let mut s = RoomScenario::new(config, 30);
    let registry = game::registry::<ArenaGame>();
    let base = registry.capture(s.room.core_mut().world_mut());
    s.tick();
    s.tick();
    let current = registry.capture(s.room.core_mut().world_mut());
    (base, current)
}

/// `base` with a fraction `changed` of its entities moved by a typical per-snapshot step
/// (a few grid cells per axis), the rest unchanged. Deterministic.
#[must_use]
pub fn with_changes(base: &ReplicatedState, changed: f64) -> ReplicatedState {
    let mut out = ReplicatedState::with_capacity(base.stride(), base.len());
    let every = (1.0 / changed).round().max(1.0) as usize;
    let mut row = vec![0i32; base.stride()];
    let mut rng = Rng::new(3);
    for (i, e) in base.iter().enumerate() {
        row.copy_from_slice(e.fields);
        if i % every == 0 {
            // Position is registry index 0: fields 0 and 1. 6 units/s..240 units/s at 30 Hz.
            row[0] += (rng.signed() * 40.0) as i32;
            row[1] += (rng.signed() * 40.0) as i32;
        }
        out.push(e.id, e.mask, &row).expect("same ids, same stride");
    }
    out
}

/// Drains every client's outbox, remembering the newest snapshot's tick for the next ack.
///
/// # Panics
///
/// When the room closed a client: a scenario's clients keep up, so that is a broken scenario.
fn drain(clients: &mut [BenchClient]) {
    for c in clients.iter_mut() {
        while let Some(item) = c.outbox.try_next() {
            match item {
                OutItem::Snapshot { bytes, .. } => {
                    if let Ok(ServerMessage::Snapshot(s)) = codec::decode_server(&bytes) {
                        c.acked = Some(s.tick);
                        c.snapshot_bytes += bytes.len() as u64;
                        c.snapshots += 1;
                    }
                }
                OutItem::Send(_) => {}
                // A close stays in the outbox (a session would end on it): a scenario's
                // client is never closed, so that is a broken scenario, said at once.
                OutItem::Close(reason, message) => {
                    panic!("the room closed client {}: {reason:?} {message}", c.id.0)
                }
                OutItem::Abort => panic!("the room aborted client {}", c.id.0),
            }
        }
    }
}
