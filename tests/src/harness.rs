//! The in-memory harness: one [`Room`] (the server's driver around the sans-IO room core)
//! stepped by hand and N clients running the shared sans-IO [`Client`] (the same logic the
//! browser and the bots use), wired through in-memory links with the shared seeded link
//! conditioner (latency, jitter, loss, duplicate, reorder; the bots use the same one). No
//! sockets, no threads, no clock: time is the step count, so every run with the same seed is
//! identical. Generic over the game; [`Harness`] plays the arena.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tickwire_server::metrics::Metrics;
use tickwire_server::outbox::{OutItem, Outbox};
use tickwire_server::room::{JoinTicket, ResumeIndex, Room, RoomHandle};
use tickwire_shared::client::{Client, ClientConfig, ClientEvent};
use tickwire_shared::codec;
use tickwire_shared::conditioner::{ConditionerSpec, ConditionerStats, DelayQueue, Delivery};
use tickwire_shared::game::Game;
use tickwire_shared::games::arena::ArenaGame;
use tickwire_shared::protocol::{ClientMessage, DisconnectReason};
use tickwire_shared::room::{JoinInfo, JoinRefused, RoomSettings};
use tickwire_shared::{ClientId, NetId};

/// A link's impairments each way: the shared sans-IO conditioner's spec, e.g.
/// `"latency=100ms,jitter=33ms,loss=5%".parse()` (at 60 Hz a step is 16.7 ms).
pub type Conditioner = ConditionerSpec;

/// The shared deterministic PRNG, so links are reproducible by seed.
pub use tickwire_shared::rng::Rng;

/// How the simulated clients' links carry snapshots and inputs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Transport {
    /// As WebTransport does: snapshots and inputs as datagrams (the conditioner may lose,
    /// duplicate or reorder them), everything else on an ordered stream.
    #[default]
    WebTransport,
    /// As WebSocket does: everything ordered (a lost message arrives a retransmission late and
    /// holds what follows).
    WebSocket,
}

/// One direction of a link: the shared conditioner, fed and drained in step time. Messages
/// keep how they travelled: a datagram that overtook the `Welcome` (lost and retransmitted) is
/// dropped, as the server's and the bots' links drop one that the network did.
struct Link {
    queue: DelayQueue<(Bytes, Delivery)>,
}

impl Link {
    fn new(spec: ConditionerSpec, seed: u64) -> Link {
        Link { queue: DelayQueue::new(spec, seed) }
    }

    fn push(&mut self, now: Duration, bytes: Bytes, delivery: Delivery) {
        self.queue.push(now, (bytes, delivery), delivery);
    }

    /// What is due by the step at `now`: a message is handled at the step nearest its due
    /// time, so at 60 Hz 100 ms is 6 steps (not 7 for the 4 ns it is past the sixth) and 83 ms 5.
    fn due(&mut self, now: Duration, tick: Duration) -> Vec<(Bytes, Delivery)> {
        let before = now + tick / 2;
        std::iter::from_fn(|| self.queue.pop_due(before)).collect()
    }
}

/// A simulated client: the shared [`Client`] plus its link and outbox.
pub struct SimClient<G: Game> {
    /// Its id at the room.
    pub id: ClientId,
    /// The sans-IO client.
    pub client: Client<G>,
    /// Events it produced, in order.
    pub events: Vec<ClientEvent<G::Event>>,
    /// Decode errors it reported.
    pub errors: Vec<String>,
    /// Whether its session is connected.
    pub connected: bool,
    /// Snapshot message sizes received (bytes, full?).
    pub snapshot_sizes: Vec<(usize, bool)>,
    /// A close the room asked for.
    pub closed: Option<DisconnectReason>,
    /// While set, the client's outbox is not read (a client that stopped reading).
    pub stalled: bool,
    /// How its link carries snapshots and inputs.
    pub transport: Transport,
    outbox: Arc<Outbox>,
    down: Link,
    up: Link,
}

impl<G: Game> SimClient<G> {
    /// How its snapshots and inputs travel, for the conditioner.
    fn unreliable(&self) -> Delivery {
        match self.transport {
            Transport::WebTransport => Delivery::Datagram,
            Transport::WebSocket => Delivery::Ordered,
        }
    }

    /// What the conditioner did to this client's link, both ways.
    #[must_use]
    pub fn conditioner_stats(&self) -> ConditionerStats {
        let mut stats = self.up.queue.stats();
        stats += self.down.queue.stats();
        stats
    }
}

/// A room of game `G` and its clients.
pub struct GameHarness<G: Game> {
    /// The room, stepped by [`GameHarness::step`].
    pub room: Room<G>,
    /// Its handle.
    pub handle: RoomHandle,
    /// The clients, by index.
    pub clients: Vec<SimClient<G>>,
    /// Metrics the room writes.
    pub metrics: Arc<Metrics>,
    /// Steps run so far.
    pub steps: u64,
    /// How links joined from now on carry snapshots and inputs.
    pub transport: Transport,
    tick: Duration,
    tick_us: u64,
    rng: Rng,
    next_client: u32,
}

/// The arena's harness, which most tests use.
pub type Harness = GameHarness<ArenaGame>;

/// A room configuration for tests: 60 Hz, 30 Hz snapshots, short grace, given NPCs.
#[must_use]
pub fn room_config(npcs: usize) -> RoomSettings {
    RoomSettings {
        id: "test".into(),
        tick_rate: 60,
        ticks_per_snapshot: 2,
        capacity: 8,
        interest_radius: 5_000.0,
        resume_grace_ticks: 120,
        idle_close_ticks: 600,
        npcs,
        seed: 1,
        max_rewind_ms: tickwire_shared::rewind::DEFAULT_MAX_REWIND_MS,
        client_kbps: 0,
    }
}

impl<G: Game> GameHarness<G> {
    /// A room with `config`; the links' randomness comes from `seed`.
    #[must_use]
    pub fn new(config: RoomSettings, seed: u64) -> GameHarness<G> {
        let metrics = Arc::new(Metrics::default());
        let tick = Duration::from_secs(1) / u32::from(config.tick_rate);
        let tick_us = 1_000_000 / u64::from(config.tick_rate);
        let (room, handle) = Room::new(config, metrics.clone(), ResumeIndex::default());
        GameHarness {
            room,
            handle,
            clients: Vec::new(),
            metrics,
            steps: 0,
            transport: Transport::default(),
            tick,
            tick_us,
            rng: Rng::new(seed),
            next_client: 1,
        }
    }

    /// Joins a client (optionally resuming) over a link with `conditioner`; returns its index.
    pub fn join(
        &mut self,
        name: &str,
        resume: Option<String>,
        conditioner: Conditioner,
    ) -> Result<(usize, JoinInfo), JoinRefused> {
        self.join_with_queue(name, resume, conditioner, 256)
    }

    /// [`Harness::join`] with an outbox holding at most `max_reliable` reliable messages.
    pub fn join_with_queue(
        &mut self,
        name: &str,
        resume: Option<String>,
        conditioner: Conditioner,
        max_reliable: usize,
    ) -> Result<(usize, JoinInfo), JoinRefused> {
        let client = Client::new(ClientConfig::default());
        self.join_client(name, resume, conditioner, max_reliable, client)
    }

    /// Resumes client `idx` on a new connection (a new client id, a new link with
    /// `conditioner`) with its resume token and the same sans-IO [`Client`], which keeps its
    /// states and input numbering across the welcome (as a reconnecting browser page does).
    /// Client `idx` is left disconnected, with a new client in its place. Returns the new index.
    ///
    /// # Panics
    ///
    /// If client `idx` was never welcomed.
    pub fn resume(
        &mut self,
        idx: usize,
        conditioner: Conditioner,
    ) -> Result<(usize, JoinInfo), JoinRefused> {
        let old = &mut self.clients[idx];
        old.connected = false;
        let token = old.client.welcome().expect("welcomed").resume_token.clone();
        let client = std::mem::replace(&mut old.client, Client::new(ClientConfig::default()));
        self.join_client("resumed", Some(token), conditioner, 256, client)
    }

    fn join_client(
        &mut self,
        name: &str,
        resume: Option<String>,
        conditioner: Conditioner,
        max_reliable: usize,
        client: Client<G>,
    ) -> Result<(usize, JoinInfo), JoinRefused> {
        let id = ClientId(self.next_client);
        self.next_client += 1;
        let outbox = Arc::new(Outbox::new(max_reliable));
        // Every simulated client is the same subject: resuming is tested by token here (the
        // subject binding over sockets, in tests/tests/hardening.rs).
        let ticket = JoinTicket { name: name.to_owned(), subject: "harness".into(), resume };
        let mut reply = self.handle.try_join(id, ticket, outbox.clone());
        self.step();
        let info = reply.try_recv().map_err(|_| JoinRefused::Closed)??;
        // Each direction of each link draws from its own stream of the harness's seed.
        let (up_seed, down_seed) = (self.rng.next_u64(), self.rng.next_u64());
        self.clients.push(SimClient {
            id,
            client,
            events: Vec::new(),
            errors: Vec::new(),
            connected: true,
            snapshot_sizes: Vec::new(),
            closed: None,
            stalled: false,
            transport: self.transport,
            outbox,
            down: Link::new(conditioner, down_seed),
            up: Link::new(conditioner, up_seed),
        });
        Ok((self.clients.len() - 1, info))
    }

    /// Drops client `idx`'s connection (as a network failure would; it may resume).
    pub fn drop_connection(&mut self, idx: usize) {
        let c = &mut self.clients[idx];
        c.connected = false;
        self.handle.try_disconnect(c.id, false);
    }

    /// One step: client → room messages that are due, the room's tick, room → client messages.
    pub fn step(&mut self) {
        self.steps += 1;
        let now_us = self.steps * self.tick_us;
        let tick = self.tick;
        let now = tick * u32::try_from(self.steps).expect("fewer than 2^32 steps");
        // Client → room.
        for c in self.clients.iter_mut().filter(|c| c.connected) {
            while let Some(bytes) = c.client.poll_transmit() {
                let delivery =
                    if matches!(codec::decode_client(&bytes), Ok(ClientMessage::Input(_))) {
                        c.unreliable()
                    } else {
                        Delivery::Ordered
                    };
                c.up.push(now, Bytes::from(bytes), delivery);
            }
            for (bytes, _) in c.up.due(now, tick) {
                match codec::decode_client(&bytes).expect("the client sends valid messages") {
                    ClientMessage::Input(batch) => self.handle.input(c.id, batch),
                    ClientMessage::Chat { text } => {
                        self.handle.try_chat(c.id, text);
                    }
                    ClientMessage::Leave => {
                        self.handle.try_disconnect(c.id, true);
                        c.connected = false;
                    }
                    ClientMessage::Ping { .. } => {}
                }
            }
        }
        self.room.step();
        // Room → client.
        for c in self.clients.iter_mut() {
            while let Some(item) = if c.stalled { None } else { c.outbox.try_next() } {
                match item {
                    OutItem::Send(bytes) => {
                        c.down.push(now, bytes, Delivery::Ordered);
                    }
                    OutItem::Snapshot { bytes, .. } => {
                        let delivery = c.unreliable();
                        c.down.push(now, bytes, delivery);
                    }
                    OutItem::Close(reason, _) => {
                        c.closed = Some(reason);
                        break;
                    }
                    OutItem::Abort => {
                        c.connected = false;
                        break;
                    }
                }
            }
            for (bytes, delivery) in c.down.due(now, tick) {
                if !c.connected || (delivery == Delivery::Datagram && c.client.welcome().is_none())
                {
                    continue;
                }
                if let Ok(codec_msg) = codec::decode_server(&bytes)
                    && let tickwire_shared::protocol::ServerMessage::Snapshot(s) = &codec_msg
                {
                    c.snapshot_sizes.push((bytes.len(), s.baseline.is_none()));
                }
                if let Err(e) = c.client.handle_bytes(now_us, &bytes) {
                    c.errors.push(e.to_string());
                }
                while let Some(ev) = c.client.poll_event() {
                    c.events.push(ev);
                }
            }
        }
    }

    /// Runs `n` steps.
    pub fn run(&mut self, n: u64) {
        for _ in 0..n {
            self.step();
        }
    }

    /// Steps until `cond` holds, at most `max_steps`; returns whether it held.
    pub fn run_until(&mut self, max_steps: u64, mut cond: impl FnMut(&Self) -> bool) -> bool {
        for _ in 0..max_steps {
            if cond(self) {
                return true;
            }
            self.step();
        }
        cond(self)
    }

    /// The position client `idx` last received for entity `id`, if it sees it.
    #[must_use]
    pub fn seen_position(&self, idx: usize, id: NetId) -> Option<glam::Vec2> {
        let c = &self.clients[idx].client;
        let (_, state) = c.latest()?;
        c.registry().position(state.get(id)?)
    }

    /// Pushes one input frame for client `idx` (it is sent on the next step).
    pub fn input(&mut self, idx: usize, frame: G::Input) -> u32 {
        self.clients[idx].client.push_input(frame)
    }
}
