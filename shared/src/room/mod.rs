//! The sans-IO room core: one match of game `G`, stepped one tick at a time.
//!
//! [`RoomCore`] is a state machine in the style of `quinn-proto`: no threads, channels, sockets
//! or clocks. Its driver (the server's room thread, `tickwire match`, the in-memory test
//! harness, the benches) tells it what happened ([`RoomCore::join`], [`RoomCore::input`],
//! [`RoomCore::chat`], [`RoomCore::disconnect`]), steps it ([`RoomCore::step`]) and moves what
//! it produced ([`RoomCore::poll_output`]: bytes for each client, closes) to the network.
//!
//! Each step: apply at most one queued input frame per client, run the game's schedule,
//! broadcast the game's events, let detached players past their grace period go, and on the
//! ticks where clients are due, capture the replicated state and send each of them a delta
//! against the newest snapshot it acknowledged (the `replicate` module).

mod governor;
pub(crate) mod inputs;
mod record;
mod replicate;
mod save;

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;

use bevy_ecs::prelude::*;
use thiserror::Error;

pub use governor::{
    CARRY, FAST_CELLS_PER_TICK, FAST_WEIGHT, GovernorStats, MAX_STALE_SNAPSHOTS, NEAR_WEIGHT,
    snapshot_budget,
};
pub use inputs::{
    ANCHOR_LEAD_TICKS, MAX_INPUT_LEAD_TICKS, MAX_TRACKED_ARRIVALS, REANCHOR_LATE_TICKS,
};
pub use replicate::{HISTORY_LEN, INTEREST_CELLS_PER_RADIUS, MIN_HISTORY, history_snapshots};
#[cfg(test)]
pub(crate) use save::check_a_saved_match_goes_on_exactly;
pub use save::{RoomSave, SAVE_FORMAT, SavedPlayer};

use self::inputs::InputQueue;
use self::replicate::{ClientReplica, Due, Replicator};
use crate::codec;
use crate::game::{self, Game, GameConfig, GameEvents, SimClock, Standings};
use crate::ids::{ClientId, NetId};
use crate::join::clean_text;
use crate::protocol::{
    DisconnectReason, InputBatch, MAX_CHAT_BYTES, MAX_NAME_CHARS, PROTOCOL_VERSION, RoomEvent,
    SERVER_NET_ID, ServerMessage, Welcome,
};
use crate::registry::ReplicationRegistry;
use crate::rewind::{RewindSettings, ViewLag};
use crate::state::ReplicatedState;
use crate::tick::Tick;

/// The stages of a tick, as [`RoomCore::step_timed`] times them: the players' inputs applied,
/// the game's schedule run, its events broadcast and detached players expired, and the
/// snapshots made for the clients due.
pub const STAGES: [&str; 4] = ["inputs", "simulate", "events", "replicate"];

/// A room's settings.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RoomSettings {
    /// Room id.
    pub id: String,
    /// Ticks per second.
    pub tick_rate: u16,
    /// Ticks between two snapshots to one client.
    pub ticks_per_snapshot: u32,
    /// Human players at most.
    pub capacity: usize,
    /// Area-of-interest radius in world units: a client sees every entity within it (and,
    /// as views are made per cell, some up to ≈ 1.09 × it away:
    /// [`INTEREST_CELLS_PER_RADIUS`]).
    pub interest_radius: f32,
    /// Ticks a disconnected player waits to be resumed.
    pub resume_grace_ticks: u64,
    /// Ticks without human players before the room is idle ([`RoomCore::is_idle`]).
    pub idle_close_ticks: u64,
    /// Server-driven bots the game spawns.
    pub npcs: usize,
    /// The game's seed.
    pub seed: u64,
    /// How far back a player's actions are resolved at the most, in milliseconds (lag
    /// compensation, [`crate::rewind`]; 0: none). [`crate::rewind::DEFAULT_MAX_REWIND_MS`] by
    /// default.
    pub max_rewind_ms: u32,
    /// Each client's snapshot bandwidth in kilobits (1,000 bits) a second; 0: unlimited. With a
    /// limit, each snapshot fits its share of it by priority (the own entity first, then near
    /// and fast ones; an entity left out gains priority until sent, and none waits more than
    /// [`MAX_STALE_SNAPSHOTS`] snapshots): the room's `governor` module.
    ///
    /// Not saved ([`RoomSave`] is bincode, whose layout a new field would change): a save
    /// stays readable by builds before and after this one, and the server that restores a
    /// room gives it its own budget (an instance's network policy, not the match's).
    #[serde(skip)]
    pub client_kbps: u32,
}

impl RoomSettings {
    /// The game's settings: this room's tick rate, NPCs and seed.
    #[must_use]
    pub fn game_config(&self) -> GameConfig {
        GameConfig { tick_rate: self.tick_rate.max(1), npcs: self.npcs, seed: self.seed }
    }
}

/// What a join returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinInfo {
    /// The player's entity.
    pub entity: NetId,
    /// Whether an earlier player was resumed.
    pub resumed: bool,
    /// The player's resume token.
    pub token: String,
}

/// Why a room refused a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum JoinRefused {
    /// The room has no space.
    #[error("room is full")]
    Full,
    /// The room is closed or closing.
    #[error("room is closed")]
    Closed,
}

/// Something the driver must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send a reliable message to a client (the bytes are shared by every client of a
    /// broadcast).
    Send {
        /// To whom.
        client: ClientId,
        /// The encoded message.
        bytes: Arc<[u8]>,
    },
    /// Send a snapshot to a client; a newer one may replace it if it is not sent yet.
    Snapshot {
        /// To whom.
        client: ClientId,
        /// The encoded message.
        bytes: Vec<u8>,
        /// Whether it is a full snapshot (not a delta).
        full: bool,
        /// The arrival stamps of the inputs it is the first to reflect (at most
        /// [`MAX_TRACKED_ARRIVALS`]).
        arrivals: Vec<u64>,
    },
    /// Close a client's session.
    Close {
        /// Whose.
        client: ClientId,
        /// Why.
        reason: DisconnectReason,
        /// For humans.
        message: String,
    },
    /// A player is gone for good: its resume token no longer works anywhere.
    Forget {
        /// The token.
        token: String,
    },
}

/// One connected client as its room sees it (the server's live inspector).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientView {
    /// The client.
    pub client: ClientId,
    /// Its player's entity.
    pub entity: NetId,
    /// Its player's name.
    pub name: String,
    /// Ticks from the newest snapshot it acknowledged to now (`None`: none yet).
    pub ack_lag_ticks: Option<u32>,
    /// Its input frames waiting for their tick (how far ahead it runs).
    pub input_buffer: usize,
    /// Its input ticks run late so far (a frame missing at its tick).
    pub inputs_late: u32,
    /// What the bandwidth governor did for it (`None`: the room has no budget).
    pub governor: Option<GovernorStats>,
}

/// Counters, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RoomStats {
    /// Input frames dropped for arriving more than [`MAX_INPUT_LEAD_TICKS`] ahead of their tick.
    pub inputs_dropped: u64,
    /// Input messages refused (frames that do not decode or that the game refuses).
    pub input_errors: u64,
    /// Snapshots not sent because they would have repeated the client's newest one: the same
    /// state of the same entities, echo, late count and margin (a client that sends nothing, in
    /// a room where nothing changes, is sent nothing but the transport's heartbeats).
    pub snapshots_unchanged: u64,
}

struct Player {
    entity: Entity,
    net_id: NetId,
    name: String,
    /// Who the player is (the JWT subject): only they may resume it.
    subject: String,
    client: Option<ClientId>,
    detached_at: Option<u64>,
    /// While detached: what the room remembers of the snapshots its last connection was sent
    /// (with the acknowledged baseline's state), so that a resume continues with deltas. It
    /// goes with the player when the grace period ends.
    parked: Option<ClientReplica>,
}

struct ClientSlot<I> {
    token: String,
    inputs: InputQueue<I>,
    replica: ClientReplica,
    /// Closed for a protocol error: its inputs are ignored until the driver disconnects it.
    closed: bool,
}

/// One match of game `G`: see the [module documentation](self).
pub struct RoomCore<G: Game> {
    settings: RoomSettings,
    world: World,
    schedule: Schedule,
    registry: ReplicationRegistry,
    /// The game described, for every `Welcome`.
    schema: crate::schema::GameSchema,
    /// By resume token.
    players: BTreeMap<String, Player>,
    clients: BTreeMap<ClientId, ClientSlot<G::Input>>,
    replicator: Replicator,
    outputs: VecDeque<Output>,
    stats: RoomStats,
    steps: u64,
    empty_since: u64,
    /// When the next step is due, on the driver's arrival-stamp clock (if it says).
    next_tick_at: Option<u64>,
    /// Reused for decoding input frames.
    frames: Vec<G::Input>,
    /// The match's recording, while it records ([`RoomCore::start_recording`]).
    recorder: Option<crate::replay::Recorder>,
    /// Players a replay despawns in the next step where the original room's grace ran out.
    scripted_despawns: Vec<Entity>,
}

impl<G: Game> RoomCore<G> {
    /// A room with the game set up ([`game::install`]).
    #[must_use]
    pub fn new(settings: RoomSettings) -> RoomCore<G> {
        let mut world = World::new();
        let mut schedule = Schedule::default();
        game::install::<G>(&mut world, &mut schedule, &settings.game_config());
        world.insert_resource(RewindSettings::from_ms(settings.max_rewind_ms, settings.tick_rate));
        let replicator = Replicator::new(
            u32::from(settings.tick_rate),
            settings.ticks_per_snapshot,
            settings.interest_radius,
            settings.client_kbps,
        );
        RoomCore {
            settings,
            world,
            schedule,
            registry: game::registry::<G>(),
            schema: crate::schema::GameSchema::of::<G>(),
            players: BTreeMap::new(),
            clients: BTreeMap::new(),
            replicator,
            outputs: VecDeque::new(),
            stats: RoomStats::default(),
            steps: 0,
            empty_since: 0,
            next_tick_at: None,
            frames: Vec::new(),
            recorder: None,
            scripted_despawns: Vec::new(),
        }
    }

    /// The settings.
    #[must_use]
    pub fn settings(&self) -> &RoomSettings {
        &self.settings
    }

    /// The newest state the room replicated (what its latest snapshots were taken from, the
    /// engine's motion included) and its tick; `None` before the first snapshot.
    #[must_use]
    pub fn newest_state(&self) -> Option<(Tick, &ReplicatedState)> {
        self.replicator.newest()
    }

    /// The room's world (tests and tools inspect it).
    pub fn world_mut(&mut self) -> &mut World {
        &mut self.world
    }

    /// The replication registry.
    #[must_use]
    pub fn registry(&self) -> &ReplicationRegistry {
        &self.registry
    }

    /// The current simulation tick.
    #[must_use]
    pub fn tick(&self) -> Tick {
        self.world.resource::<SimClock>().tick
    }

    /// Human players (connected or within their grace period).
    #[must_use]
    pub fn player_count(&self) -> usize {
        self.players.len()
    }

    /// The connected clients.
    pub fn clients(&self) -> impl Iterator<Item = ClientId> + '_ {
        self.clients.keys().copied()
    }

    /// The client playing entity `entity`, if connected.
    #[must_use]
    pub fn client_of(&self, entity: NetId) -> Option<ClientId> {
        self.players.values().find(|p| p.net_id == entity).and_then(|p| p.client)
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &RoomStats {
        &self.stats
    }

    /// Whether the room has had no human players for [`RoomSettings::idle_close_ticks`].
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.empty_since != 0 && self.steps - self.empty_since >= self.settings.idle_close_ticks
    }

    /// The game's standings now.
    pub fn standings(&mut self) -> Standings {
        G::standings(&mut self.world)
    }

    /// [`game::state_hash`] of the world now.
    pub fn state_hash(&mut self) -> u64 {
        game::state_hash::<G>(&mut self.world)
    }

    /// The next thing the driver must do, oldest first. Drain it after every call.
    #[must_use]
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// Joins `client` as a player named `name` for `subject` (who the client authenticated as):
    /// resuming the player of `resume` if that token is one of this room's and was given to the
    /// same subject, else a new player (if there is space) whose resume token `new_token` makes.
    /// Queues the `Welcome` and the room's `Joined` events. A resumed player's first snapshot is
    /// a delta against the one its client acknowledged on the old connection, if it did.
    ///
    /// # Errors
    ///
    /// [`JoinRefused::Full`] when a new player does not fit.
    pub fn join(
        &mut self,
        client: ClientId,
        name: &str,
        subject: &str,
        resume: Option<&str>,
        new_token: impl FnOnce() -> String,
    ) -> Result<JoinInfo, JoinRefused> {
        // A token works only for the subject it was given to: another one gets a new player.
        let resumable = resume
            .filter(|t| self.players.get(*t).is_some_and(|p| p.subject == subject))
            .map(str::to_owned);
        // A resumed player's replica: its snapshots and acknowledged baseline carry over.
        let mut replica = None;
        let (token, resumed) = match resumable {
            Some(token) => {
                // Take the player over from an old session that has not noticed it is gone.
                if let Some(old) = self.players[&token].client
                    && let Some(slot) = self.clients.remove(&old)
                {
                    replica = Some(slot.replica);
                    self.outputs.push_back(Output::Close {
                        client: old,
                        reason: DisconnectReason::Replaced,
                        message: "resumed on another connection".to_owned(),
                    });
                }
                if let Some(parked) = self.players.get_mut(&token).and_then(|p| p.parked.take()) {
                    replica = Some(parked);
                }
                (token, true)
            }
            None => {
                if self.players.len() >= self.settings.capacity {
                    return Err(JoinRefused::Full);
                }
                let name = self.unique_name(name);
                let (entity, net_id) = game::spawn_player::<G>(&mut self.world, &name);
                if let Some(r) = self.recorder.as_mut() {
                    r.push(crate::replay::Entry::Spawn { name: name.clone(), entity: net_id });
                }
                let token = new_token();
                let player = Player {
                    entity,
                    net_id,
                    name,
                    subject: subject.to_owned(),
                    client: None,
                    detached_at: None,
                    parked: None,
                };
                self.players.insert(token.clone(), player);
                (token, false)
            }
        };
        let player = self.players.get_mut(&token).expect("inserted or found above");
        player.client = Some(client);
        player.detached_at = None;
        let (entity, net_id, name) = (player.entity, player.net_id, player.name.clone());
        // The least-used tick of the snapshot interval.
        let mut per_phase = vec![0usize; self.settings.ticks_per_snapshot.max(1) as usize];
        for c in self.clients.values() {
            per_phase[c.replica.phase as usize] += 1;
        }
        let phase = (0..per_phase.len()).min_by_key(|&p| per_phase[p]).unwrap_or(0) as u32;
        // A resume keeps the replica, so its first snapshot is a delta against the baseline
        // the client acknowledged on its old connection (the client keeps its states).
        let replica = match replica {
            Some(mut replica) => {
                replica.resume(phase);
                replica
            }
            None => ClientReplica::new(phase, self.replicator.snapshots()),
        };
        self.clients.insert(
            client,
            ClientSlot { token: token.clone(), inputs: InputQueue::new(), replica, closed: false },
        );
        self.apply_between_ticks(entity, net_id);
        let welcome = ServerMessage::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            client_id: client,
            room: self.settings.id.clone(),
            game: G::NAME.to_owned(),
            entity: net_id,
            tick_rate: self.settings.tick_rate,
            snapshot_rate: (u32::from(self.settings.tick_rate)
                / self.settings.ticks_per_snapshot.max(1)) as u16,
            tick: self.tick(),
            resume_token: token.clone(),
            registry_fingerprint: self.registry.fingerprint(),
            schema: Box::new(self.schema.clone()),
        });
        self.send(client, &welcome);
        // Introduce everyone already here, then announce the newcomer to all.
        let others: Vec<ServerMessage> = self
            .players
            .iter()
            .filter(|(t, _)| **t != token)
            .map(|(_, p)| {
                ServerMessage::Event(RoomEvent::Joined {
                    client: p.client.unwrap_or(ClientId(0)),
                    entity: p.net_id,
                    name: p.name.clone(),
                })
            })
            .collect();
        for msg in &others {
            self.send(client, msg);
        }
        self.broadcast(&ServerMessage::Event(RoomEvent::Joined { client, entity: net_id, name }));
        Ok(JoinInfo { entity: net_id, resumed, token })
    }

    /// Tells the room when (on the clock of [`RoomCore::input`]'s arrival stamps) its next
    /// [`RoomCore::step`] is due, so that its input-margin reports
    /// ([`crate::protocol::SnapshotMessage::input_margin`]) are exact to the millisecond
    /// instead of to the tick. A driver that steps on a schedule calls it before each step's
    /// inputs; one that does not (a test stepping as fast as it can) need not.
    pub fn set_next_tick_at(&mut self, stamp: u64) {
        self.next_tick_at = Some(stamp);
    }

    /// Takes an input message of `client` that reached the driver at `arrived` (a stamp on the
    /// driver's clock, handed back with the snapshot that first reflects it). The frames are
    /// decoded and checked here; a bad message closes the client as a protocol error.
    pub fn input(&mut self, client: ClientId, batch: &InputBatch, arrived: u64) {
        let Some(slot) = self.clients.get_mut(&client).filter(|s| !s.closed) else { return };
        let decoded = codec::decode_inputs::<G::Input>(&batch.frames, &mut self.frames)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                self.frames.iter().try_for_each(G::validate_input).map_err(|e| e.to_string())
            });
        if let Err(e) = decoded {
            slot.closed = true;
            self.stats.input_errors += 1;
            self.outputs.push_back(Output::Close {
                client,
                reason: DisconnectReason::ProtocolError,
                message: format!("bad input: {e}"),
            });
            return;
        }
        let at = inputs::Arrival {
            stamp: arrived,
            next: self.world.resource::<SimClock>().tick,
            early_us: self.next_tick_at.map(|due| due as i64 - arrived as i64),
            tick_us: 1_000_000 / i64::from(self.settings.tick_rate.max(1)),
        };
        self.stats.inputs_dropped +=
            slot.inputs.push::<G>(batch.first_seq, &self.frames, batch.view, at);
        self.replicator.ack(&mut slot.replica, batch.ack);
    }

    /// A chat line from `client`: cleaned of control characters and broadcast, attributed by
    /// the room.
    pub fn chat(&mut self, client: ClientId, text: &str) {
        let Some(slot) = self.clients.get(&client) else { return };
        let Some(player) = self.players.get(&slot.token) else { return };
        let text = clean_text(text);
        if text.is_empty() {
            return;
        }
        let msg = ServerMessage::Chat { from: player.net_id, name: player.name.clone(), text };
        self.broadcast(&msg);
    }

    /// A line from outside the room (an operator's broadcast, a lobby line from another room):
    /// sent to every client as a chat line from [`SERVER_NET_ID`] under `name`, both cleaned
    /// and cut to the protocol's limits.
    pub fn announce(&mut self, name: &str, text: &str) {
        let text = crate::join::truncate_utf8(&clean_text(text), MAX_CHAT_BYTES).to_owned();
        if text.is_empty() {
            return;
        }
        let name: String = clean_text(name).chars().take(MAX_NAME_CHARS * 2).collect();
        self.broadcast(&ServerMessage::Chat { from: SERVER_NET_ID, name, text });
    }

    /// `client`'s session ended; `left` means for good (no resume), otherwise the player waits
    /// [`RoomSettings::resume_grace_ticks`] for a resume, with no input, and what the room knew
    /// of the client's snapshots (its acknowledged baseline) waits with it.
    pub fn disconnect(&mut self, client: ClientId, left: bool) {
        let Some(slot) = self.clients.remove(&client) else { return };
        if left {
            self.remove_player(&slot.token, false);
            return;
        }
        if let Some(player) = self.players.get_mut(&slot.token)
            && player.client == Some(client)
        {
            player.client = None;
            player.detached_at = Some(self.steps);
            player.parked = Some(slot.replica);
            let (entity, net_id) = (player.entity, player.net_id);
            self.apply_between_ticks(entity, net_id);
        }
    }

    /// Gives a player's entity the default input between ticks (a join, a disconnect).
    fn apply_between_ticks(&mut self, entity: Entity, net_id: NetId) {
        if let Ok(mut e) = self.world.get_entity_mut(entity) {
            G::apply_input(&mut e, &G::Input::default());
            if let Some(r) = self.recorder.as_mut()
                && let Ok(input) = crate::persist::encode(&G::Input::default())
            {
                r.push(crate::replay::Entry::Apply { entity: net_id, input });
            }
        }
    }

    /// Runs one tick: inputs, simulation, events, and (for the clients due) snapshots.
    pub fn step(&mut self) {
        self.step_timed(&mut || 0);
    }

    /// [`RoomCore::step`], timing its stages with `clock` (any monotonic count, microseconds
    /// for the inspector: the driver passes its clock in, the core reads none). Returns how
    /// long each of [`STAGES`] took, in `clock`'s units.
    pub fn step_timed(&mut self, clock: &mut dyn FnMut() -> u64) -> [u64; STAGES.len()] {
        let start = clock();
        self.steps += 1;
        self.apply_inputs();
        let inputs = clock();
        self.schedule.run(&mut self.world);
        let simulated = clock();
        let mut events = std::mem::take(&mut self.world.resource_mut::<GameEvents<G::Event>>().0);
        if self.clients.is_empty() {
            events.clear();
        }
        for event in &events {
            if let Ok(body) = codec::encode_game_event(event) {
                self.broadcast(&ServerMessage::GameEvent { body });
            }
        }
        self.expire_detached();
        let evented = clock();
        // Clients are spread over the ticks of a snapshot interval (their `phase`), so each
        // tick encodes for a share of them instead of every other tick for all.
        let phase = (self.steps % u64::from(self.settings.ticks_per_snapshot.max(1))) as u32;
        if self.clients.values().any(|c| c.replica.phase == phase) {
            self.replicate(phase);
        }
        let replicated = clock();
        if self.players.is_empty() {
            if self.empty_since == 0 {
                self.empty_since = self.steps;
            }
        } else {
            self.empty_since = 0;
        }
        // A standalone bevy world keeps a record of every component removed (every despawn)
        // until this is called; the tick is the world's frame, so records last one tick.
        self.world.clear_trackers();
        if self.recorder.is_some() {
            self.record_step();
        }
        [
            inputs.saturating_sub(start),
            simulated.saturating_sub(inputs),
            evented.saturating_sub(simulated),
            replicated.saturating_sub(evented),
        ]
    }

    fn apply_inputs(&mut self) {
        let now = self.tick();
        let rewind = *self.world.resource::<RewindSettings>();
        let mut applied = self.recorder.as_ref().map(|_| Vec::with_capacity(self.clients.len()));
        for slot in self.clients.values_mut() {
            slot.inputs.advance::<G>(now);
            if let Some(player) = self.players.get(&slot.token)
                && let Ok(mut e) = self.world.get_entity_mut(player.entity)
            {
                let lag = rewind.lag(slot.inputs.current_view, now);
                G::apply_input(&mut e, &slot.inputs.current);
                e.insert(ViewLag(lag));
                if let Some(applied) = applied.as_mut() {
                    let input = crate::persist::encode(&slot.inputs.current).unwrap_or_default();
                    applied.push((player.net_id, input, lag));
                }
            }
        }
        if let (Some(r), Some(applied)) = (self.recorder.as_mut(), applied) {
            r.inputs(applied);
        }
    }

    fn replicate(&mut self, phase: u32) {
        let tick = self.tick();
        let state = self.registry.capture(&mut self.world);
        let RoomCore { clients, players, replicator, registry, outputs, .. } = self;
        let due = clients.iter_mut().filter(|(_, c)| c.replica.phase == phase).map(|(id, c)| Due {
            client: *id,
            own: players.get(&c.token).map(|p| p.net_id),
            last_applied: c.inputs.echo(),
            inputs_late: c.inputs.late,
            input_margin: c.inputs.take_margin(),
            arrivals: std::mem::take(&mut c.inputs.unreported_arrivals),
            replica: &mut c.replica,
        });
        replicator.replicate(registry, tick, state, due, outputs);
        self.stats.snapshots_unchanged = replicator.skipped();
    }

    /// `name`, or `name (2)`, `name (3)`, … when a player of the room already has it (letters'
    /// case aside): nobody can pass for somebody else by name. The suffix fits in
    /// [`MAX_NAME_CHARS`] by shortening the name.
    fn unique_name(&self, name: &str) -> String {
        let taken = |candidate: &str| {
            self.players.values().any(|p| p.name.to_lowercase() == candidate.to_lowercase())
        };
        if !taken(name) {
            return name.to_owned();
        }
        (2..)
            .map(|n| {
                let suffix = format!(" ({n})");
                let keep = MAX_NAME_CHARS.saturating_sub(suffix.chars().count());
                format!("{}{suffix}", name.chars().take(keep).collect::<String>().trim_end())
            })
            .find(|candidate| !taken(candidate))
            .unwrap_or_else(|| name.to_owned())
    }

    fn expire_detached(&mut self) {
        for entity in std::mem::take(&mut self.scripted_despawns) {
            G::despawn_player(&mut self.world, entity);
        }
        let grace = self.settings.resume_grace_ticks;
        let expired: Vec<String> = self
            .players
            .iter()
            .filter(|(_, p)| p.detached_at.is_some_and(|at| self.steps - at >= grace))
            .map(|(t, _)| t.clone())
            .collect();
        for token in expired {
            self.remove_player(&token, true);
        }
    }

    /// Despawns a player for good: in a step (its grace ran out) or between steps (it left).
    fn remove_player(&mut self, token: &str, in_step: bool) {
        let Some(player) = self.players.remove(token) else { return };
        G::despawn_player(&mut self.world, player.entity);
        if let Some(r) = self.recorder.as_mut() {
            if in_step {
                r.expired(player.net_id);
            } else {
                r.push(crate::replay::Entry::Despawn { entity: player.net_id });
            }
        }
        self.outputs.push_back(Output::Forget { token: token.to_owned() });
        self.broadcast(&ServerMessage::Event(RoomEvent::Left {
            entity: player.net_id,
            name: player.name,
        }));
    }

    fn send(&mut self, client: ClientId, msg: &ServerMessage) {
        if let Ok(b) = codec::encode_server(msg) {
            self.outputs.push_back(Output::Send { client, bytes: b.into() });
        }
    }

    fn broadcast(&mut self, msg: &ServerMessage) {
        let Ok(b) = codec::encode_server(msg) else { return };
        let bytes: Arc<[u8]> = b.into();
        for &client in self.clients.keys() {
            self.outputs.push_back(Output::Send { client, bytes: bytes.clone() });
        }
    }
}

impl<G: Game> RoomCore<G> {
    /// Every connected client as the room sees it now (the live inspector).
    #[must_use]
    pub fn inspect_clients(&self) -> Vec<ClientView> {
        let now = self.tick();
        self.clients
            .iter()
            .filter_map(|(&client, slot)| {
                let player = self.players.get(&slot.token)?;
                Some(ClientView {
                    client,
                    entity: player.net_id,
                    name: player.name.clone(),
                    ack_lag_ticks: slot
                        .replica
                        .acked
                        .map(|t| u32::try_from(now.diff(t).max(0)).unwrap_or(0)),
                    input_buffer: slot.inputs.buffered(),
                    inputs_late: slot.inputs.late,
                    governor: slot.replica.governor_stats(),
                })
            })
            .collect()
    }

    /// Where the bytes of the room's snapshots go (the live inspector): the bits of a delta
    /// from the first connected client's acknowledged baseline (moved on by its motion, as the
    /// room encodes it) to the newest state, for a client that sees every entity: per
    /// registered component, and last for the rest (ids, kinds, masks). `None` before a client
    /// acknowledged a snapshot the room still holds.
    #[must_use]
    pub fn snapshot_bits_by_component(&self) -> Option<Vec<(&'static str, u64)>> {
        let (tick, newest) = self.replicator.newest()?;
        // The room's state at the acknowledged tick while the history has it: a governed
        // client's own baseline holds only what it was sent.
        let (acked, baseline) = self.clients.values().find_map(|c| {
            let acked = c.replica.acked?;
            self.replicator
                .state_at(acked)
                .map(|s| (acked, s))
                .or_else(|| c.replica.baseline_state())
        })?;
        let ticks = tick.0.wrapping_sub(acked.0);
        let moved = crate::motion::predicted(&self.registry, baseline, ticks);
        let parts = crate::snapshot::delta_bits_by_component(
            &self.registry,
            moved.as_ref().unwrap_or(baseline),
            newest,
        );
        let names = self
            .registry
            .layout()
            .map(|(idx, _, _)| self.registry.name(idx))
            .chain(std::iter::once("ids, kinds and masks"));
        Some(names.zip(parts).collect())
    }

    /// Who the player of resume token `token` is (its JWT subject), if it is one of this room's.
    #[must_use]
    pub fn subject_of(&self, token: &str) -> Option<&str> {
        self.players.get(token).map(|p| p.subject.as_str())
    }

    /// The resume tokens of the room's players (a driver forgets them when the room ends).
    pub fn tokens(&self) -> impl Iterator<Item = &str> + '_ {
        self.players.keys().map(String::as_str)
    }
}

#[cfg(test)]
mod tests;
