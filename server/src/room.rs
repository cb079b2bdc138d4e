//! A room: one match, one bevy_ecs `World` and `Schedule`, stepped at a fixed rate by its own
//! thread. Sessions talk to it only through a [`RoomHandle`] (bounded channels in) and their
//! [`Outbox`] (out); the tick thread never awaits anything.
//!
//! Each step: drain control messages and inputs, apply at most one queued input frame per
//! client, run the game schedule, broadcast game events, and on snapshot ticks capture the
//! replicated state and send every client a delta against the newest snapshot it acknowledged,
//! limited to its area of interest.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bevy_ecs::prelude::*;
use bytes::Bytes;
use tickwire_shared::bits::BitWriter;
use tickwire_shared::codec;
use tickwire_shared::game::{self, GameConfig, GameEvents, PlayerInput, Position, SimClock};
use tickwire_shared::join::clean_text;
use tickwire_shared::protocol::{
    Buttons, DisconnectReason, GameEvent, InputBatch, InputFrame, PROTOCOL_VERSION, ServerMessage,
    Welcome,
};
use tickwire_shared::registry::ReplicationRegistry;
use tickwire_shared::snapshot::{self, PreparedDelta, PreparedState, ReplicatedState, View};
use tickwire_shared::{ClientId, NetId, Tick};
use tokio::sync::{mpsc, oneshot};

use crate::auth::random_hex;
use crate::metrics::Metrics;
use crate::outbox::{MAX_TRACKED_ARRIVALS, Outbox, OutboxFull};

/// Snapshots kept per client for delta baselines: 32 snapshots is about a second at 30 Hz, more
/// than any playable round trip. An ack older than that gets a full snapshot. The room keeps
/// the states of the same span of ticks (clients are spread over the ticks of an interval, so
/// a state is captured on each of them).
pub const HISTORY_LEN: usize = 32;

/// Input frames queued per client. A client sends one a tick; a backlog longer than this is
/// latency, so the oldest frames are dropped.
pub const MAX_PENDING_INPUTS: usize = 4;

/// Ticks over which a client's input queue is watched for a standing backlog: when a frame was
/// left waiting after every tick of a window, one frame is skipped to take that tick of latency
/// back out (a burst that drains by itself is never touched).
pub const INPUT_QUEUE_WINDOW_TICKS: u32 = 30;

/// Input messages waiting in a room's inbox (all clients). Past it, inputs are dropped (they
/// are resent redundantly in the next message anyway).
pub const INPUT_CHANNEL_CAPACITY: usize = 4096;

/// Control messages (join, chat, disconnect) waiting in a room's inbox; senders wait for room.
pub const CONTROL_CHANNEL_CAPACITY: usize = 1024;

/// At most this many ticks are run back to back to catch up after a stall; past that, time is
/// dropped rather than spiralling.
pub const MAX_CATCH_UP_TICKS: u32 = 4;

/// A room's settings.
#[derive(Clone, Debug)]
pub struct RoomConfig {
    /// Room id.
    pub id: String,
    /// Ticks per second.
    pub tick_rate: u16,
    /// Ticks between snapshots.
    pub ticks_per_snapshot: u32,
    /// Human players at most.
    pub capacity: usize,
    /// Area-of-interest radius in world units.
    pub interest_radius: f32,
    /// Ticks a disconnected player waits to be resumed.
    pub resume_grace_ticks: u64,
    /// Ticks without human players before the room closes.
    pub idle_close_ticks: u64,
    /// The game rules' settings.
    pub game: GameConfig,
}

/// Room state visible to other threads.
pub struct RoomShared {
    id: String,
    capacity: usize,
    tick_rate: u16,
    players: AtomicUsize,
    /// Joins matchmaking has sent here that the room has not answered yet (see [`Seat`]).
    joining: AtomicUsize,
    tick: AtomicU32,
    closed: AtomicBool,
    shutdown: AtomicBool,
}

/// What a join returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinInfo {
    /// The player's entity.
    pub entity: NetId,
    /// Whether an earlier player was resumed.
    pub resumed: bool,
}

/// Why a room refused a join.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum JoinRefused {
    /// The room has no space.
    #[error("room is full")]
    Full,
    /// The room is closed or closing.
    #[error("room is closed")]
    Closed,
}

enum Control {
    Join {
        client: ClientId,
        name: String,
        resume: Option<String>,
        outbox: Arc<Outbox>,
        reply: oneshot::Sender<Result<JoinInfo, JoinRefused>>,
        /// Matchmaking's place for this join, released when the room has counted the player
        /// (or dropped with the message if it never arrives).
        seat: Option<Seat>,
    },
    Chat {
        client: ClientId,
        text: String,
    },
    Disconnect {
        client: ClientId,
        left: bool,
    },
    Drop {
        entity: NetId,
    },
}

/// A place held in a room for a join on its way in, from matchmaking until the room counted the
/// player ([`Seat::join`]) or the seat is dropped.
pub struct Seat {
    handle: RoomHandle,
}

impl Seat {
    /// The room the place is in.
    #[must_use]
    pub fn room(&self) -> &RoomHandle {
        &self.handle
    }

    /// Joins the room, handing it the seat: the room releases it in the same step that counts
    /// the player, so matchmaking never sees the player twice (or not at all).
    pub async fn join(
        self,
        client: ClientId,
        name: String,
        resume: Option<String>,
        outbox: Arc<Outbox>,
    ) -> Result<JoinInfo, JoinRefused> {
        let room = self.handle.clone();
        room.send_join(client, name, resume, outbox, Some(self)).await
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.handle.shared.joining.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The sending side of a room, cheap to clone.
#[derive(Clone)]
pub struct RoomHandle {
    shared: Arc<RoomShared>,
    inputs: mpsc::Sender<(ClientId, InputBatch, Instant)>,
    control: mpsc::Sender<Control>,
    metrics: Arc<Metrics>,
}

impl RoomHandle {
    /// The room id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.shared.id
    }

    /// Human players (connected or within their grace period).
    #[must_use]
    pub fn players(&self) -> usize {
        self.shared.players.load(Ordering::Relaxed)
    }

    /// Human players plus joins on their way in (held [`Seat`]s): what matchmaking compares
    /// with the capacity, so a burst of joins does not all pick the same room.
    #[must_use]
    pub fn players_and_joining(&self) -> usize {
        self.players() + self.shared.joining.load(Ordering::Relaxed)
    }

    /// Holds a place for one join until the returned [`Seat`] is dropped.
    #[must_use]
    pub fn reserve(&self) -> Seat {
        self.shared.joining.fetch_add(1, Ordering::Relaxed);
        Seat { handle: self.clone() }
    }

    /// Capacity in human players.
    #[must_use]
    pub fn capacity(&self) -> usize {
        self.shared.capacity
    }

    /// Ticks per second.
    #[must_use]
    pub fn tick_rate(&self) -> u16 {
        self.shared.tick_rate
    }

    /// The room's current tick.
    #[must_use]
    pub fn tick(&self) -> Tick {
        Tick(self.shared.tick.load(Ordering::Relaxed))
    }

    /// Whether the room stopped.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.shared.closed.load(Ordering::Relaxed)
    }

    /// Asks the room to close every session (1001) and stop.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
    }

    /// Queues a join without waiting; the room answers on the returned channel.
    pub fn try_join(
        &self,
        client: ClientId,
        name: String,
        resume: Option<String>,
        outbox: Arc<Outbox>,
    ) -> oneshot::Receiver<Result<JoinInfo, JoinRefused>> {
        let (reply, rx) = oneshot::channel();
        // A full or closed inbox drops `reply`, which the receiver sees as a refusal.
        let _ = self.control.try_send(Control::Join {
            client,
            name,
            resume,
            outbox,
            reply,
            seat: None,
        });
        rx
    }

    /// Joins, waiting for the room's answer.
    pub async fn join(
        &self,
        client: ClientId,
        name: String,
        resume: Option<String>,
        outbox: Arc<Outbox>,
    ) -> Result<JoinInfo, JoinRefused> {
        self.send_join(client, name, resume, outbox, None).await
    }

    async fn send_join(
        &self,
        client: ClientId,
        name: String,
        resume: Option<String>,
        outbox: Arc<Outbox>,
        seat: Option<Seat>,
    ) -> Result<JoinInfo, JoinRefused> {
        let (reply, rx) = oneshot::channel();
        let msg = Control::Join { client, name, resume, outbox, reply, seat };
        self.control.send(msg).await.map_err(|_| JoinRefused::Closed)?;
        rx.await.unwrap_or(Err(JoinRefused::Closed))
    }

    /// Forwards an input batch; dropped (and counted) if the inbox is full.
    pub fn input(&self, client: ClientId, batch: InputBatch) {
        if self.inputs.try_send((client, batch, Instant::now())).is_err() {
            self.metrics.inputs_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Forwards a chat line.
    pub async fn chat(&self, client: ClientId, text: String) {
        let _ = self.control.send(Control::Chat { client, text }).await;
    }

    /// Queues a chat line without waiting.
    pub fn try_chat(&self, client: ClientId, text: String) {
        let _ = self.control.try_send(Control::Chat { client, text });
    }

    /// Tells the room the session ended; `left` means for good (no resume).
    pub async fn disconnect(&self, client: ClientId, left: bool) {
        let _ = self.control.send(Control::Disconnect { client, left }).await;
    }

    /// Drops the connection of the player whose entity is `entity`, with no close frame, as a
    /// network failure would (the test-only `/api/debug/drop` endpoint).
    pub fn drop_connection(&self, entity: NetId) {
        let _ = self.control.try_send(Control::Drop { entity });
    }

    /// Queues a disconnect without waiting.
    pub fn try_disconnect(&self, client: ClientId, left: bool) {
        let _ = self.control.try_send(Control::Disconnect { client, left });
    }
}

/// Resume tokens → room ids, shared by all rooms so a reconnect finds its room.
pub type ResumeIndex = Arc<Mutex<HashMap<String, String>>>;

struct Player {
    entity: Entity,
    net_id: NetId,
    name: String,
    client: Option<ClientId>,
    detached_at: Option<u64>,
}

struct ClientSlot {
    token: String,
    outbox: Arc<Outbox>,
    /// Frames not applied yet, each with when it first reached the server.
    pending: VecDeque<PendingFrame>,
    next_seq: Option<u32>,
    last_applied: Option<u32>,
    /// When each input applied since the last snapshot arrived (bounded by
    /// [`MAX_TRACKED_ARRIVALS`]).
    unreported_arrivals: Vec<Instant>,
    /// Ticks into the current input-queue window, and the shortest queue left after a tick in it.
    queue_window: (u32, usize),
    input: PlayerInput,
    acked: Option<Tick>,
    /// The snapshots sent, with the view (positions in that tick's state) each one showed.
    sent: VecDeque<(Tick, Arc<View>)>,
    /// Which tick of each snapshot interval this client's snapshots are made on.
    phase: u32,
    last_position: [i32; 2],
}

/// Caches encoded bodies within one snapshot tick: clients with the same baseline and the same
/// views share the bytes.
type BodyKey = (Option<Tick>, Arc<View>, Arc<View>);

/// One match.
pub struct Room {
    config: RoomConfig,
    world: World,
    schedule: Schedule,
    registry: ReplicationRegistry,
    players: BTreeMap<String, Player>,
    clients: BTreeMap<ClientId, ClientSlot>,
    history: VecDeque<(Tick, Arc<ReplicatedState>)>,
    inputs: mpsc::Receiver<(ClientId, InputBatch, Instant)>,
    control: mpsc::Receiver<Control>,
    shared: Arc<RoomShared>,
    metrics: Arc<Metrics>,
    resume_index: ResumeIndex,
    steps: u64,
    empty_since: u64,
    position_offset: Option<usize>,
    body_cache: HashMap<BodyKey, Arc<Vec<u8>>>,
    /// The largest body of the last snapshot tick: the writer's initial capacity.
    body_capacity: usize,
}

impl Room {
    /// A room and its handle. Drive it with [`Room::step`] (tests) or [`Room::spawn`] (a thread).
    #[must_use]
    pub fn new(
        config: RoomConfig,
        metrics: Arc<Metrics>,
        resume_index: ResumeIndex,
    ) -> (Room, RoomHandle) {
        let mut world = World::new();
        let mut schedule = Schedule::default();
        game::install(&mut world, &mut schedule, &config.game);
        let registry = game::registry();
        let position_offset = registry.index_of::<Position>().map(|idx| registry.offset(idx));
        let history_len = HISTORY_LEN * config.ticks_per_snapshot.max(1) as usize;
        let (input_tx, input_rx) = mpsc::channel(INPUT_CHANNEL_CAPACITY);
        let (control_tx, control_rx) = mpsc::channel(CONTROL_CHANNEL_CAPACITY);
        let shared = Arc::new(RoomShared {
            id: config.id.clone(),
            capacity: config.capacity,
            tick_rate: config.tick_rate,
            players: AtomicUsize::new(0),
            joining: AtomicUsize::new(0),
            tick: AtomicU32::new(0),
            closed: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
        });
        metrics.rooms.fetch_add(1, Ordering::Relaxed);
        let handle = RoomHandle {
            shared: shared.clone(),
            inputs: input_tx,
            control: control_tx,
            metrics: metrics.clone(),
        };
        let room = Room {
            config,
            world,
            schedule,
            registry,
            players: BTreeMap::new(),
            clients: BTreeMap::new(),
            history: VecDeque::with_capacity(history_len),
            inputs: input_rx,
            control: control_rx,
            shared,
            metrics,
            resume_index,
            steps: 0,
            empty_since: 0,
            position_offset,
            body_cache: HashMap::new(),
            body_capacity: 256,
        };
        (room, handle)
    }

    /// The room's world (tests and tools inspect it).
    pub fn world_mut(&mut self) -> &mut World {
        &mut self.world
    }

    /// The current simulation tick.
    #[must_use]
    pub fn tick(&self) -> Tick {
        self.world.resource::<SimClock>().tick
    }

    /// Runs one tick: inbox, inputs, simulation, events, and (when due) snapshots.
    pub fn step(&mut self) {
        self.steps += 1;
        self.drain_control();
        self.drain_inputs();
        self.apply_inputs();
        self.schedule.run(&mut self.world);
        self.broadcast_events();
        self.expire_detached();
        // Clients are spread over the ticks of a snapshot interval (their `phase`), so each
        // tick encodes for a share of them instead of every other tick for all.
        let phase = (self.steps % u64::from(self.config.ticks_per_snapshot.max(1))) as u32;
        if self.clients.values().any(|c| c.phase == phase) {
            self.replicate(phase);
        }
        self.shared.tick.store(self.tick().0, Ordering::Relaxed);
        if self.players.is_empty() {
            if self.empty_since == 0 {
                self.empty_since = self.steps;
            }
        } else {
            self.empty_since = 0;
        }
    }

    /// Whether the room has had no human players for its idle time.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.empty_since != 0 && self.steps - self.empty_since >= self.config.idle_close_ticks
    }

    /// Closes every session with `reason` and marks the room closed.
    pub fn close_all(&mut self, reason: DisconnectReason, message: &str) {
        for slot in self.clients.values() {
            slot.outbox.close(reason, message);
        }
        self.shared.closed.store(true, Ordering::Relaxed);
    }

    /// Starts the room's tick thread. It stops on shutdown (closing sessions with 1001) or
    /// when idle.
    pub fn spawn(self) -> std::io::Result<std::thread::JoinHandle<()>> {
        std::thread::Builder::new()
            .name(format!("room-{}", self.config.id))
            .spawn(move || self.run())
    }

    fn run(mut self) {
        let period = Duration::from_secs_f64(1.0 / f64::from(self.config.tick_rate));
        let mut next = Instant::now() + period;
        tracing::info!(room = %self.config.id, "room started");
        loop {
            if self.shared.shutdown.load(Ordering::Relaxed) {
                // Finish the last tick's work: whatever is queued goes out before the close.
                self.close_all(DisconnectReason::ServerShutdown, "server shutting down");
                break;
            }
            let now = Instant::now();
            if next > now {
                std::thread::sleep(next - now);
            }
            let mut ran = 0;
            while Instant::now() >= next && ran < MAX_CATCH_UP_TICKS {
                let start = Instant::now();
                self.step();
                let took = start.elapsed();
                self.metrics.tick_duration.observe(took.as_micros() as u64);
                if took > period {
                    self.metrics.tick_overruns.fetch_add(1, Ordering::Relaxed);
                }
                next += period;
                ran += 1;
            }
            let now = Instant::now();
            if now >= next + period {
                let behind = ((now - next).as_secs_f64() / period.as_secs_f64()) as u64;
                self.metrics.ticks_dropped.fetch_add(behind, Ordering::Relaxed);
                next = now + period;
            }
            if self.is_idle() {
                tracing::info!(room = %self.config.id, "room idle, closing");
                self.close_all(DisconnectReason::RoomClosed, "room closed");
                break;
            }
        }
        self.shared.closed.store(true, Ordering::Relaxed);
    }

    fn drain_control(&mut self) {
        // Bounded per tick so a flood of joins cannot stall the simulation.
        for _ in 0..CONTROL_CHANNEL_CAPACITY {
            let Ok(msg) = self.control.try_recv() else { break };
            match msg {
                Control::Join { client, name, resume, outbox, reply, seat } => {
                    let result = self.join(client, name, resume, outbox);
                    // Counted as a player now (or refused): the seat has done its work.
                    drop(seat);
                    let _ = reply.send(result);
                }
                Control::Chat { client, text } => self.chat(client, &text),
                Control::Disconnect { client, left } => self.disconnect(client, left),
                Control::Drop { entity } => {
                    let client =
                        self.players.values().find(|p| p.net_id == entity).and_then(|p| p.client);
                    if let Some(slot) = client.and_then(|c| self.clients.get(&c)) {
                        slot.outbox.abort();
                    }
                }
            }
        }
    }

    fn send_reliable(&self, client: ClientId, msg: &ServerMessage) {
        let Some(slot) = self.clients.get(&client) else { return };
        if let Ok(b) = codec::encode_server(msg)
            && slot.outbox.push_reliable(Bytes::from(b)) == Err(OutboxFull)
        {
            slot.outbox.close(DisconnectReason::TooSlow, "too slow to receive events");
        }
    }

    fn broadcast(&self, msg: &ServerMessage) {
        let Ok(b) = codec::encode_server(msg) else { return };
        let bytes = Bytes::from(b);
        for slot in self.clients.values() {
            if slot.outbox.push_reliable(bytes.clone()) == Err(OutboxFull) {
                slot.outbox.close(DisconnectReason::TooSlow, "too slow to receive events");
            }
        }
    }

    fn join(
        &mut self,
        client: ClientId,
        name: String,
        resume: Option<String>,
        outbox: Arc<Outbox>,
    ) -> Result<JoinInfo, JoinRefused> {
        if self.shared.shutdown.load(Ordering::Relaxed)
            || self.shared.closed.load(Ordering::Relaxed)
        {
            return Err(JoinRefused::Closed);
        }
        let resumable = resume.filter(|t| self.players.contains_key(t));
        let (token, resumed) = match resumable {
            Some(token) => {
                // Take the player over from an old session that has not noticed it is gone.
                let old = self.players[&token].client;
                if let Some(old) = old
                    && let Some(slot) = self.clients.remove(&old)
                {
                    slot.outbox.close(DisconnectReason::Replaced, "resumed on another connection");
                }
                (token, true)
            }
            None => {
                if self.players.len() >= self.config.capacity {
                    return Err(JoinRefused::Full);
                }
                let (entity, net_id) = game::spawn_player(&mut self.world, &name);
                let token = random_hex(16);
                self.players.insert(
                    token.clone(),
                    Player { entity, net_id, name: name.clone(), client: None, detached_at: None },
                );
                self.resume_index
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .insert(token.clone(), self.config.id.clone());
                self.metrics.players.fetch_add(1, Ordering::Relaxed);
                self.shared.players.store(self.players.len(), Ordering::Relaxed);
                (token, false)
            }
        };
        let player = self.players.get_mut(&token).expect("inserted or found above");
        player.client = Some(client);
        player.detached_at = None;
        let (entity, net_id, name) = (player.entity, player.net_id, player.name.clone());
        // The least-used tick of the snapshot interval.
        let mut per_phase = vec![0usize; self.config.ticks_per_snapshot.max(1) as usize];
        for c in self.clients.values() {
            per_phase[c.phase as usize] += 1;
        }
        let phase = (0..per_phase.len()).min_by_key(|&p| per_phase[p]).unwrap_or(0) as u32;
        self.clients.insert(
            client,
            ClientSlot {
                token: token.clone(),
                outbox,
                pending: VecDeque::with_capacity(MAX_PENDING_INPUTS),
                next_seq: None,
                last_applied: None,
                unreported_arrivals: Vec::new(),
                queue_window: (0, usize::MAX),
                input: PlayerInput::default(),
                acked: None,
                sent: VecDeque::with_capacity(HISTORY_LEN),
                phase,
                last_position: [0, 0],
            },
        );
        if let Ok(mut e) = self.world.get_entity_mut(entity) {
            e.insert(PlayerInput::default());
        }
        let welcome = ServerMessage::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            client_id: client,
            room: self.config.id.clone(),
            entity: net_id,
            tick_rate: self.config.tick_rate,
            snapshot_rate: (u32::from(self.config.tick_rate) / self.config.ticks_per_snapshot)
                as u16,
            tick: self.tick(),
            resume_token: token.clone(),
            registry_fingerprint: self.registry.fingerprint(),
        });
        self.send_reliable(client, &welcome);
        // Introduce everyone already here, then announce the newcomer to all.
        let others: Vec<ServerMessage> = self
            .players
            .iter()
            .filter(|(t, _)| **t != token)
            .map(|(_, p)| {
                ServerMessage::Event(GameEvent::Joined {
                    client: p.client.unwrap_or(ClientId(0)),
                    entity: p.net_id,
                    name: p.name.clone(),
                })
            })
            .collect();
        for msg in &others {
            self.send_reliable(client, msg);
        }
        self.broadcast(&ServerMessage::Event(GameEvent::Joined { client, entity: net_id, name }));
        tracing::info!(room = %self.config.id, %client, entity = %net_id, resumed, "player joined");
        Ok(JoinInfo { entity: net_id, resumed })
    }

    fn remove_player(&mut self, token: &str) {
        let Some(player) = self.players.remove(token) else { return };
        game::despawn_player(&mut self.world, player.entity);
        self.resume_index.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(token);
        self.metrics.players.fetch_sub(1, Ordering::Relaxed);
        self.shared.players.store(self.players.len(), Ordering::Relaxed);
        self.broadcast(&ServerMessage::Event(GameEvent::Left {
            entity: player.net_id,
            name: player.name,
        }));
    }

    fn disconnect(&mut self, client: ClientId, left: bool) {
        let Some(slot) = self.clients.remove(&client) else { return };
        if left {
            self.remove_player(&slot.token);
            return;
        }
        if let Some(player) = self.players.get_mut(&slot.token)
            && player.client == Some(client)
        {
            player.client = None;
            player.detached_at = Some(self.steps);
            if let Ok(mut e) = self.world.get_entity_mut(player.entity) {
                e.insert(PlayerInput::default());
            }
        }
    }

    fn expire_detached(&mut self) {
        let grace = self.config.resume_grace_ticks;
        let expired: Vec<String> = self
            .players
            .iter()
            .filter(|(_, p)| p.detached_at.is_some_and(|at| self.steps - at >= grace))
            .map(|(t, _)| t.clone())
            .collect();
        for token in expired {
            self.remove_player(&token);
        }
    }

    fn chat(&mut self, client: ClientId, text: &str) {
        let Some(slot) = self.clients.get(&client) else { return };
        let Some(player) = self.players.get(&slot.token) else { return };
        let text = clean_text(text);
        if text.is_empty() {
            return;
        }
        let msg = ServerMessage::Chat { from: player.net_id, name: player.name.clone(), text };
        self.broadcast(&msg);
    }

    fn drain_inputs(&mut self) {
        for _ in 0..INPUT_CHANNEL_CAPACITY {
            let Ok((client, batch, arrived)) = self.inputs.try_recv() else { break };
            let Some(slot) = self.clients.get_mut(&client) else { continue };
            for (seq, frame) in batch.sequenced() {
                let fresh = slot.next_seq.is_none_or(|next| seq.wrapping_sub(next) as i32 >= 0);
                if !fresh {
                    continue;
                }
                slot.pending.push_back((seq, frame, arrived));
                slot.next_seq = Some(seq.wrapping_add(1));
                if slot.pending.len() > MAX_PENDING_INPUTS {
                    slot.pending.pop_front();
                    self.metrics.inputs_dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            if let Some(ack) = batch.ack {
                let known = slot.sent.iter().any(|(t, _)| *t == ack);
                if known && slot.acked.is_none_or(|a| ack.is_after(a)) {
                    slot.acked = Some(ack);
                }
            }
        }
    }

    fn apply_inputs(&mut self) {
        for slot in self.clients.values_mut() {
            let (next, skipped) = next_frame(&mut slot.pending, &mut slot.queue_window);
            if skipped {
                self.metrics.inputs_dropped.fetch_add(1, Ordering::Relaxed);
            }
            match next {
                Some((seq, frame, arrived)) => {
                    slot.input = PlayerInput::from_frame(&frame);
                    slot.last_applied = Some(seq);
                    if slot.unreported_arrivals.len() < MAX_TRACKED_ARRIVALS {
                        slot.unreported_arrivals.push(arrived);
                    }
                }
                // No frame arrived in time: keep moving as last told, press nothing.
                None => slot.input.buttons = Buttons::default(),
            }
            if let Some(player) = self.players.get(&slot.token)
                && let Ok(mut e) = self.world.get_entity_mut(player.entity)
            {
                e.insert(slot.input);
            }
        }
    }

    fn broadcast_events(&mut self) {
        let events = std::mem::take(&mut self.world.resource_mut::<GameEvents>().0);
        for event in events {
            self.broadcast(&ServerMessage::Event(event));
        }
    }

    /// Captures the state and sends every client of this `phase` its snapshot.
    ///
    /// The work shared by all clients is done once: the state's entities are written in full
    /// once ([`PreparedState`], for full snapshots and spawns), and the changes from each
    /// acknowledged baseline once ([`PreparedDelta`], however many clients acked it). Per client
    /// only the interest test (a pass over the positions) and a walk of the prepared steps with
    /// its two views remain, and clients with the same baseline and views share the body.
    fn replicate(&mut self, phase: u32) {
        let tick = self.tick();
        let state = Arc::new(self.registry.capture(&mut self.world));
        if self.history.len() >= HISTORY_LEN * self.config.ticks_per_snapshot.max(1) as usize {
            self.history.pop_front();
        }
        self.history.push_back((tick, state.clone()));
        self.body_cache.clear();
        let prepared = PreparedState::new(&self.registry, &state);
        let mut deltas: Vec<(Tick, PreparedDelta)> = Vec::new();
        // Positions as two flat arrays, for a tight interest loop. Without a registered
        // position, everything is visible.
        let n = state.len();
        // `f64` holds these integer distances exactly (grid values below 2^26) and vectorizes.
        let (xs, ys): (Vec<f64>, Vec<f64>) = match self.position_offset {
            Some(o) => {
                state.iter().map(|e| (f64::from(e.fields[o]), f64::from(e.fields[o + 1]))).unzip()
            }
            None => (Vec::new(), Vec::new()),
        };
        let radius = tickwire_shared::quantize::position(self.config.interest_radius);
        let r2 = f64::from(radius) * f64::from(radius);
        let mut self_body_capacity = self.body_capacity;
        let Room { clients, players, history, registry, metrics, body_cache, .. } = self;
        for slot in clients.values_mut().filter(|c| c.phase == phase) {
            let own = players.get(&slot.token).map(|p| p.net_id);
            let own_idx = own.and_then(|id| state.ids().binary_search(&id).ok());
            let center = match own_idx {
                Some(i) if !xs.is_empty() => [xs[i] as i32, ys[i] as i32],
                _ => slot.last_position,
            };
            let baseline = slot.acked.and_then(|acked| {
                let (_, base_state) = history.iter().find(|(t, _)| *t == acked)?;
                let (_, base_view) = slot.sent.iter().find(|(t, _)| *t == acked)?;
                Some((acked, base_state, base_view.clone()))
            });
            let mut view = if xs.is_empty() {
                View::all(n)
            } else {
                let (cx, cy) = (f64::from(center[0]), f64::from(center[1]));
                let words = xs
                    .chunks(64)
                    .zip(ys.chunks(64))
                    .map(|(xs, ys)| {
                        let mut word = 0u64;
                        for (bit, (&x, &y)) in xs.iter().zip(ys).enumerate() {
                            let d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
                            word |= u64::from(d2 <= r2) << bit;
                        }
                        word
                    })
                    .collect();
                View::from_words(words)
            };
            if let Some(i) = own_idx {
                view.insert(i);
            }
            let view = Arc::new(view);
            let key: BodyKey = (
                baseline.as_ref().map(|(t, _, _)| *t),
                baseline.as_ref().map_or_else(|| Arc::new(View::default()), |(_, _, v)| v.clone()),
                view.clone(),
            );
            let body = match body_cache.get(&key) {
                Some(body) => body.clone(),
                None => {
                    // Room for a body as big as the last one, so it never grows while written.
                    let mut w = BitWriter::new(Vec::with_capacity(self_body_capacity));
                    match &baseline {
                        Some((acked, base_state, base_view)) => {
                            let at = match deltas.iter().position(|(t, _)| t == acked) {
                                Some(at) => at,
                                None => {
                                    deltas.push((
                                        *acked,
                                        PreparedDelta::new(registry, base_state, &state),
                                    ));
                                    deltas.len() - 1
                                }
                            };
                            snapshot::encode_delta_prepared(
                                registry,
                                &state,
                                &prepared,
                                &deltas[at].1,
                                base_view,
                                &view,
                                &mut w,
                            );
                        }
                        None => snapshot::encode_full_prepared(
                            registry, &state, &prepared, &view, &mut w,
                        ),
                    }
                    let body = Arc::new(w.finish());
                    self_body_capacity = self_body_capacity.max(body.len() + 64);
                    body_cache.insert(key, body.clone());
                    body
                }
            };
            slot.last_position = center;
            let mut bytes = Vec::with_capacity(body.len() + 32);
            let base_tick = baseline.as_ref().map(|(t, _, _)| *t);
            let encoded =
                codec::encode_snapshot_into(tick, base_tick, slot.last_applied, &body, &mut bytes);
            let Ok(()) = encoded else {
                slot.outbox.close(DisconnectReason::Internal, "snapshot too large");
                continue;
            };
            let histogram =
                if baseline.is_some() { &metrics.snapshot_delta } else { &metrics.snapshot_full };
            histogram.observe(bytes.len() as u64);
            let arrivals = std::mem::take(&mut slot.unreported_arrivals);
            if slot.outbox.push_snapshot(Bytes::from(bytes), arrivals) {
                metrics.snapshots_superseded.fetch_add(1, Ordering::Relaxed);
            }
            if slot.sent.len() == HISTORY_LEN {
                slot.sent.pop_front();
            }
            slot.sent.push_back((tick, view));
        }
        self.body_capacity = self_body_capacity;
    }
}

/// A queued input frame: sequence number, frame, arrival at the server.
type PendingFrame = (u32, InputFrame, Instant);

/// This tick's frame from a client's queue. `window` is (ticks into the watch window, shortest
/// queue left after a tick in it); at the end of a window in which a frame was always left
/// waiting, the queue is standing (latency added to every input, not a burst) and this tick
/// takes the following frame instead, keeping the skipped one's buttons (a shot or a dash is
/// never lost, only one step of movement) and its arrival time. Returns the frame and whether
/// one was skipped.
fn next_frame(
    pending: &mut VecDeque<PendingFrame>,
    window: &mut (u32, usize),
) -> (Option<PendingFrame>, bool) {
    let mut next = pending.pop_front();
    window.0 += 1;
    window.1 = window.1.min(pending.len());
    let mut skipped = false;
    if window.0 >= INPUT_QUEUE_WINDOW_TICKS {
        if window.1 >= 1
            && let Some((_, dropped, dropped_at)) = next
            && let Some((seq, mut frame, _)) = pending.pop_front()
        {
            frame.buttons = Buttons(frame.buttons.0 | dropped.buttons.0);
            next = Some((seq, frame, dropped_at));
            skipped = true;
        }
        *window = (0, usize::MAX);
    }
    (next, skipped)
}

impl Drop for Room {
    fn drop(&mut self) {
        self.shared.closed.store(true, Ordering::Relaxed);
        self.metrics.rooms.fetch_sub(1, Ordering::Relaxed);
        self.metrics.players.fetch_sub(self.players.len() as i64, Ordering::Relaxed);
        let mut index = self.resume_index.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for token in self.players.keys() {
            index.remove(token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(buttons: Buttons) -> InputFrame {
        InputFrame { movement: [1, 0], aim: 0, buttons }
    }

    #[test]
    fn a_standing_queue_loses_one_frame_per_window_but_never_its_buttons() {
        let t0 = Instant::now();
        let mut window = (0, usize::MAX);
        let mut pending: VecDeque<PendingFrame> = VecDeque::new();
        // Two frames always waiting behind this tick's; the one due at the window's end fires.
        for seq in 0..3 {
            pending.push_back((seq, frame(Buttons::default()), t0));
        }
        let mut applied = Vec::new();
        for (seq, tick) in (3..).zip(1..=INPUT_QUEUE_WINDOW_TICKS) {
            let due_fires = tick == INPUT_QUEUE_WINDOW_TICKS;
            if due_fires {
                pending[0].1.buttons = Buttons::FIRE;
            }
            let (next, skipped) = next_frame(&mut pending, &mut window);
            let (s, f, at) = next.unwrap();
            assert_eq!(skipped, due_fires, "tick {tick}");
            applied.push(s);
            if due_fires {
                assert!(f.buttons.contains(Buttons::FIRE), "the skipped frame's shot was lost");
                assert_eq!(at, t0, "the skipped frame's arrival is kept");
            }
            pending.push_back((seq, frame(Buttons::default()), t0));
        }
        // One frame skipped: the queue is one shorter, and the sequence jumped by two once.
        assert_eq!(pending.len(), 2);
        assert_eq!(applied.windows(2).filter(|w| w[1] - w[0] == 2).count(), 1);
        assert!(applied.windows(2).all(|w| w[1] - w[0] <= 2));
    }

    #[test]
    fn a_burst_that_drains_by_itself_is_left_alone() {
        let t0 = Instant::now();
        let mut window = (0, usize::MAX);
        let mut pending: VecDeque<PendingFrame> = VecDeque::new();
        for seq in 0..3 {
            pending.push_back((seq, frame(Buttons::default()), t0));
        }
        // No new frames for two ticks: the burst drains, then one a tick.
        for tick in 0..(3 * INPUT_QUEUE_WINDOW_TICKS) {
            let (_, skipped) = next_frame(&mut pending, &mut window);
            assert!(!skipped, "tick {tick}");
            if tick >= 2 {
                pending.push_back((tick + 3, frame(Buttons::default()), t0));
            }
        }
    }
}
