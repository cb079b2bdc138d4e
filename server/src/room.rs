//! A room: the IO around one [`RoomCore`], run by the simulation pool ([`crate::sim_pool`]).
//! Sessions talk to it only through a [`RoomHandle`] (bounded channels in) and their
//! [`Outbox`] (out); a room's tick never awaits or blocks on anything.
//!
//! Each tick the room drains the control and input channels into the core, steps it, and
//! moves the core's outputs into the sessions' outboxes. Its schedule keeps a fixed rate with
//! bounded catch-up, and records tick durations and overruns.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tickwire_shared::game::Game;
use tickwire_shared::persist::PersistError;
use tickwire_shared::protocol::{DisconnectReason, InputBatch};
use tickwire_shared::room::{
    JoinInfo, JoinRefused, Output, RoomCore, RoomSave, RoomSettings, STAGES,
};
use tickwire_shared::{ClientId, NetId, Tick};
use tokio::sync::{mpsc, oneshot};

use crate::auth::random_hex;
use crate::metrics::Metrics;
use crate::outbox::{Outbox, OutboxFull};

/// Input messages waiting in a room's inbox (all clients). Past it, inputs are dropped (they
/// are resent redundantly in the next message anyway).
pub const INPUT_CHANNEL_CAPACITY: usize = 4096;

/// Control messages (join, chat, disconnect) waiting in a room's inbox; senders wait for room.
pub const CONTROL_CHANNEL_CAPACITY: usize = 1024;

/// Snapshots a client may fall behind (each replaced before it could be sent) before it is
/// closed as too slow: a second's worth at 30 snapshots a second, longer than any hiccup of a
/// live connection.
pub const MAX_SNAPSHOTS_BEHIND: u32 = 30;

/// At most this many ticks are run back to back to catch up after a stall; past that, time is
/// dropped rather than spiralling.
pub const MAX_CATCH_UP_TICKS: u32 = 4;

/// How often a room handed off looks whether it has been told where it went.
const HANDOFF_POLL: Duration = Duration::from_millis(5);

/// Room state visible to other threads.
pub struct RoomShared {
    id: String,
    game: &'static str,
    capacity: usize,
    tick_rate: u16,
    players: AtomicUsize,
    /// Joins matchmaking has sent here that the room has not answered yet (see [`Seat`]).
    joining: AtomicUsize,
    tick: AtomicU32,
    closed: AtomicBool,
    shutdown: AtomicBool,
    /// A rolling restart's hand-off of the room to another instance ([`RoomHandle::hand_off`]).
    handoff: Mutex<Handoff>,
    /// What the live inspector shows of the room, made every [`INSPECT_EVERY_TICKS`].
    inspection: Mutex<Option<Arc<RoomInspection>>>,
}

/// The room's record for the live inspector is made every this many ticks (a quarter of a
/// second at 60 Hz).
pub const INSPECT_EVERY_TICKS: u64 = 15;

/// A room as the live inspector shows it (`GET /api/inspect`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct RoomInspection {
    /// Room id.
    pub id: String,
    /// The game it plays.
    pub game: &'static str,
    /// Its tick.
    pub tick: u32,
    /// Ticks per second.
    pub tick_rate: u16,
    /// Human players (connected or within their grace period).
    pub players: usize,
    /// Entities in its newest snapshot state.
    pub entities: usize,
    /// Mean time per tick of each stage of the tick over the last interval, microseconds.
    pub stages_us: Vec<StageTime>,
    /// Where the snapshots' bytes go, component by component (empty before a client
    /// acknowledged one).
    pub components: Vec<ComponentCost>,
    /// Its connected clients.
    pub clients: Vec<ClientInspection>,
}

/// What one replicated component costs the room's snapshots (the live inspector).
#[derive(Clone, Debug, serde::Serialize)]
pub struct ComponentCost {
    /// The component (or `ids, kinds and masks` for the rest of a snapshot).
    pub component: &'static str,
    /// Its bits in a delta from a client's acknowledged baseline to the newest state, for a
    /// client that sees every entity.
    pub bits: u64,
    /// Its share of that delta (0 to 1).
    pub share: f64,
    /// Its bytes per second to all the room's clients at that rate (an estimate: clients see
    /// only what is near them).
    pub bytes_per_sec: f64,
}

/// One stage of the tick and its mean time (the live inspector).
#[derive(Clone, Debug, serde::Serialize)]
pub struct StageTime {
    /// The stage ([`tickwire_shared::room::STAGES`]).
    pub stage: &'static str,
    /// Its mean time per tick over the last interval, microseconds.
    pub mean_us: f64,
}

/// One connected client as the live inspector shows it.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ClientInspection {
    /// Its client id.
    pub client: u32,
    /// Its player's entity.
    pub entity: u32,
    /// Its player's name.
    pub name: String,
    /// `websocket` or `webtransport`.
    pub transport: &'static str,
    /// The newest heartbeat round trip, ms (`None`: none measured yet).
    pub rtt_ms: Option<f64>,
    /// Ticks from the newest snapshot it acknowledged to now.
    pub ack_lag_ticks: Option<u32>,
    /// Its input frames waiting for their tick.
    pub input_buffer: usize,
    /// Its input ticks run late so far.
    pub inputs_late: u32,
    /// Payload bytes per second it sent, over the last interval.
    pub bytes_in_per_sec: f64,
    /// Payload bytes per second it was sent, over the last interval.
    pub bytes_out_per_sec: f64,
    /// With `--client-kbps`: its snapshot byte budget, the entity updates left out of its
    /// snapshots so far and of the newest one, those sent over budget to keep the staleness
    /// bound, and the oldest value it held of an entity in its view (ticks).
    pub governor: Option<GovernorInspection>,
}

/// What the bandwidth governor did for one client (`--client-kbps`).
#[derive(Clone, Debug, serde::Serialize)]
pub struct GovernorInspection {
    /// Bytes each snapshot may take.
    pub budget_bytes: u32,
    /// Entity updates left out so far.
    pub left_out: u64,
    /// Entity updates left out of the newest snapshot.
    pub left_out_last: u32,
    /// Entity updates sent over budget to keep the staleness bound.
    pub forced: u64,
    /// The oldest value the client held of an entity in its view, ticks.
    pub max_stale_ticks: u32,
}

/// One client's counters at an inspection.
#[derive(Clone, Copy, Debug)]
struct Inspected {
    at: Instant,
    bytes_in: u64,
    bytes_out: u64,
    /// The governor's counts (entity updates left out, forced).
    left_out: u64,
    forced: u64,
}

/// Where a room is in a hand-off to another instance.
#[derive(Debug, Default)]
enum Handoff {
    /// None asked.
    #[default]
    No,
    /// Asked: the room saves itself at its next turn and stops stepping.
    Asked,
    /// Saved (or not: why), waiting to be told where it went.
    Saved(Option<Result<Vec<u8>, String>>),
    /// Told: its sessions are closed with the URL it goes on at (`Moved`), or, with none, as
    /// at a shutdown.
    Done(Option<String>),
}

/// Who joins: the name to show, who they authenticated as, and the resume token they bring.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JoinTicket {
    /// The display name.
    pub name: String,
    /// The JWT subject: only the same subject may resume the player later.
    pub subject: String,
    /// A resume token from an earlier `Welcome`.
    pub resume: Option<String>,
}

enum Control {
    Join {
        client: ClientId,
        ticket: JoinTicket,
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
    Announce {
        name: String,
        text: String,
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
        ticket: JoinTicket,
        outbox: Arc<Outbox>,
    ) -> Result<JoinInfo, JoinRefused> {
        let room = self.handle.clone();
        room.send_join(client, ticket, outbox, Some(self)).await
    }
}

impl Drop for Seat {
    fn drop(&mut self) {
        self.handle.shared.joining.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The sending side of a room, cheap to clone. It names no game: inputs travel encoded and the
/// room's core decodes them with its game's types.
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

    /// The game the room plays.
    #[must_use]
    pub fn game(&self) -> &'static str {
        self.shared.game
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

    /// What the live inspector shows of the room (made every [`INSPECT_EVERY_TICKS`]; `None`
    /// before the first).
    #[must_use]
    pub fn inspection(&self) -> Option<Arc<RoomInspection>> {
        self.shared.inspection.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }

    /// Asks the room to close every session (1001) and stop.
    pub fn shutdown(&self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
    }

    fn handoff(&self) -> std::sync::MutexGuard<'_, Handoff> {
        self.shared.handoff.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Asks the room to save itself for another instance (a rolling restart): at its next turn
    /// it stops stepping, detaches every player (they wait for their resume) and saves
    /// ([`RoomCore::save`]); from then on it takes no join. Collect the save with
    /// [`RoomHandle::take_save`], then end the sessions with [`RoomHandle::moved`].
    pub fn hand_off(&self) {
        let mut handoff = self.handoff();
        if matches!(*handoff, Handoff::No) {
            *handoff = Handoff::Asked;
        }
    }

    /// The room's save once it made it (`Some(Err)`: it could not be saved, and why); `None`
    /// while it has not yet. Taken once.
    pub fn take_save(&self) -> Option<Result<Vec<u8>, String>> {
        match &mut *self.handoff() {
            Handoff::Saved(save) => save.take(),
            _ => None,
        }
    }

    /// Ends a hand-off: the sessions are closed with `Moved` and `url` (where the room goes on),
    /// or with `None` as at a shutdown (the room could not be moved); the room stops.
    pub fn moved(&self, url: Option<String>) {
        *self.handoff() = Handoff::Done(url);
    }

    /// Queues a join without waiting; the room answers on the returned channel (a driver that
    /// steps the room itself, like the in-memory test harness, uses this).
    pub fn try_join(
        &self,
        client: ClientId,
        ticket: JoinTicket,
        outbox: Arc<Outbox>,
    ) -> oneshot::Receiver<Result<JoinInfo, JoinRefused>> {
        let (reply, rx) = oneshot::channel();
        // A full or closed inbox drops `reply`, which the receiver sees as a refusal.
        let _ = self.control.try_send(Control::Join { client, ticket, outbox, reply, seat: None });
        rx
    }

    /// Queues a chat line without waiting; false when the room's inbox is full (the line is
    /// dropped, as chat over its rate is).
    pub fn try_chat(&self, client: ClientId, text: String) -> bool {
        self.control.try_send(Control::Chat { client, text }).is_ok()
    }

    /// Queues a line from outside the room for every client (see `RoomCore::announce`);
    /// false when the room's inbox is full.
    pub fn try_announce(&self, name: &str, text: &str) -> bool {
        let msg = Control::Announce { name: name.to_owned(), text: text.to_owned() };
        self.control.try_send(msg).is_ok()
    }

    /// Queues a disconnect without waiting.
    pub fn try_disconnect(&self, client: ClientId, left: bool) {
        let _ = self.control.try_send(Control::Disconnect { client, left });
    }

    /// Joins, waiting for the room's answer.
    pub async fn join(
        &self,
        client: ClientId,
        ticket: JoinTicket,
        outbox: Arc<Outbox>,
    ) -> Result<JoinInfo, JoinRefused> {
        self.send_join(client, ticket, outbox, None).await
    }

    async fn send_join(
        &self,
        client: ClientId,
        ticket: JoinTicket,
        outbox: Arc<Outbox>,
        seat: Option<Seat>,
    ) -> Result<JoinInfo, JoinRefused> {
        let (reply, rx) = oneshot::channel();
        let msg = Control::Join { client, ticket, outbox, reply, seat };
        self.control.send(msg).await.map_err(|_| JoinRefused::Closed)?;
        rx.await.unwrap_or(Err(JoinRefused::Closed))
    }

    /// Forwards an input batch; dropped (and counted) if the inbox is full.
    pub fn input(&self, client: ClientId, batch: InputBatch) {
        if self.inputs.try_send((client, batch, Instant::now())).is_err() {
            self.metrics.inputs_dropped.fetch_add(1, Ordering::Relaxed);
        }
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
}

/// Resume tokens → room ids, shared by all rooms so a reconnect finds its room.
pub type ResumeIndex = Arc<Mutex<HashMap<String, String>>>;

/// One room of game `G`: its core, its inboxes and the outboxes of its sessions.
pub struct Room<G: Game> {
    core: RoomCore<G>,
    inputs: mpsc::Receiver<(ClientId, InputBatch, Instant)>,
    control: mpsc::Receiver<Control>,
    outboxes: HashMap<ClientId, Arc<Outbox>>,
    shared: Arc<RoomShared>,
    metrics: Arc<Metrics>,
    resume_index: ResumeIndex,
    /// The clock origin of the core's input arrival stamps.
    epoch: Instant,
    /// The core's counters as last added to the metrics.
    reported_inputs_dropped: u64,
    reported_input_errors: u64,
    reported_snapshots_unchanged: u64,
    players: usize,
    /// Time between ticks.
    period: Duration,
    /// When the next tick is due.
    next: Instant,
    /// Whether [`Room::run_due`] has run yet (the schedule starts then).
    started: bool,
    /// Development restarts (`--dev`): a resume token brings its player back whoever presents
    /// it (a page that reconnected to a restarted server comes with a new guest token).
    resume_any_subject: bool,
    /// Each client's counters at the last inspection, and when: the rates' start, and what the
    /// metrics were last given.
    inspected: HashMap<ClientId, Inspected>,
    /// Snapshot bytes made since the last inspection (split by component for the metrics).
    snapshot_bytes: u64,
    /// Each stage's time summed since the last inspection (microseconds), and the ticks.
    stage_sums: ([u64; STAGES.len()], u64),
    /// The match's recording file, while the room records (`--record`).
    recording: Option<crate::recording::RecordingFile>,
}

impl<G: Game> Room<G> {
    /// A room and its handle. Drive it with [`Room::step`], or [`Room::run_due`] (what the
    /// simulation pool does).
    #[must_use]
    pub fn new(
        settings: RoomSettings,
        metrics: Arc<Metrics>,
        resume_index: ResumeIndex,
    ) -> (Room<G>, RoomHandle) {
        Room::with_core(RoomCore::new(settings), metrics, resume_index)
    }

    /// The room another instance saved ([`RoomHandle::hand_off`]), with every player waiting
    /// for its resume token (registered in `resume_index`).
    ///
    /// # Errors
    ///
    /// When the save is not one of this game that this build can restore.
    pub fn restore(
        save: RoomSave,
        metrics: Arc<Metrics>,
        resume_index: ResumeIndex,
    ) -> Result<(Room<G>, RoomHandle), PersistError> {
        let core = RoomCore::from_save(save)?;
        {
            let mut index = resume_index.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            for token in core.tokens() {
                index.insert(token.to_owned(), core.settings().id.clone());
            }
        }
        let (mut room, handle) = Room::with_core(core, metrics, resume_index);
        // Counted at once: the directory and matchmaking see the players who are coming back.
        room.flush();
        Ok((room, handle))
    }

    fn with_core(
        core: RoomCore<G>,
        metrics: Arc<Metrics>,
        resume_index: ResumeIndex,
    ) -> (Room<G>, RoomHandle) {
        let settings = core.settings().clone();
        let period = Duration::from_secs_f64(1.0 / f64::from(settings.tick_rate.max(1)));
        let (input_tx, input_rx) = mpsc::channel(INPUT_CHANNEL_CAPACITY);
        let (control_tx, control_rx) = mpsc::channel(CONTROL_CHANNEL_CAPACITY);
        let shared = Arc::new(RoomShared {
            id: settings.id.clone(),
            game: G::NAME,
            capacity: settings.capacity,
            tick_rate: settings.tick_rate,
            players: AtomicUsize::new(0),
            joining: AtomicUsize::new(0),
            tick: AtomicU32::new(0),
            closed: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            handoff: Mutex::new(Handoff::No),
            inspection: Mutex::new(None),
        });
        metrics.rooms.fetch_add(1, Ordering::Relaxed);
        let handle = RoomHandle {
            shared: shared.clone(),
            inputs: input_tx,
            control: control_tx,
            metrics: metrics.clone(),
        };
        let room = Room {
            core,
            inputs: input_rx,
            control: control_rx,
            outboxes: HashMap::new(),
            shared,
            metrics,
            resume_index,
            epoch: Instant::now(),
            reported_inputs_dropped: 0,
            reported_input_errors: 0,
            reported_snapshots_unchanged: 0,
            players: 0,
            period,
            next: Instant::now() + period,
            started: false,
            resume_any_subject: false,
            inspected: HashMap::new(),
            snapshot_bytes: 0,
            stage_sums: ([0; STAGES.len()], 0),
            recording: None,
        };
        (room, handle)
    }

    /// Has a resume token bring its player back whoever presents it (`--dev` only: in
    /// production a token works only for the subject it was given to).
    pub fn resume_any_subject(&mut self) {
        self.resume_any_subject = true;
    }

    /// Records the match into a new file of `dir` (`--record`): written by a thread of its
    /// own, a second at a time, finished when the room ends. A file that cannot be made is
    /// logged, and the room plays on unrecorded.
    pub fn record_to(&mut self, dir: &std::path::Path) {
        let now = crate::recording::unix_ms();
        let checkpoint = u64::from(self.core.settings().tick_rate.max(1))
            * u64::from(tickwire_shared::replay::DEFAULT_CHECKPOINT_SECS);
        let file = match crate::recording::RecordingFile::create(dir, &self.shared.id, now) {
            Ok(file) => file,
            Err(e) => {
                tracing::warn!(room = %self.shared.id, error = %e, "cannot record the room");
                return;
            }
        };
        if let Err(e) = self.core.start_recording(checkpoint, now) {
            tracing::warn!(room = %self.shared.id, error = %e, "cannot record the room");
            return;
        }
        tracing::info!(room = %self.shared.id, file = %file.path().display(), "recording the match");
        self.recording = Some(file);
    }

    /// Hands the recording's new bytes to its writer; a writer a whole queue behind, or a
    /// recording that failed, ends it.
    fn flush_recording(&mut self) {
        let Some(file) = self.recording.as_mut() else { return };
        let failed = self.core.recording_failed().map(str::to_owned);
        let bytes = self.core.take_recording();
        if failed.is_some() || !file.send(bytes) {
            let why = failed.unwrap_or_else(|| "the disk fell behind".to_owned());
            tracing::warn!(room = %self.shared.id, reason = %why, "the recording stopped");
            self.core.stop_recording(&why);
            self.recording = None;
        }
    }

    /// The room's core (tests and tools inspect it).
    pub fn core_mut(&mut self) -> &mut RoomCore<G> {
        &mut self.core
    }

    /// Runs one tick: the inboxes, the core's step, the outputs to the outboxes.
    pub fn step(&mut self) {
        self.drain_control();
        self.drain_inputs();
        let epoch = self.epoch;
        let mut clock = || u64::try_from(epoch.elapsed().as_micros()).unwrap_or(u64::MAX);
        let stages = self.core.step_timed(&mut clock);
        for (sum, took) in self.stage_sums.0.iter_mut().zip(stages) {
            *sum += took;
        }
        self.stage_sums.1 += 1;
        self.flush();
        self.shared.tick.store(self.core.tick().0, Ordering::Relaxed);
        if u64::from(self.core.tick().0).is_multiple_of(INSPECT_EVERY_TICKS) {
            self.inspect();
        }
        if self.recording.is_some()
            && self.core.tick().0.is_multiple_of(u32::from(self.core.settings().tick_rate.max(1)))
        {
            self.flush_recording();
        }
    }

    /// Makes the live inspector's record of the room (a few fields per client).
    fn inspect(&mut self) {
        let now = Instant::now();
        let mut clients = Vec::new();
        let mut seen = HashMap::with_capacity(self.outboxes.len());
        for view in self.core.inspect_clients() {
            let Some(outbox) = self.outboxes.get(&view.client) else { continue };
            let stats = &outbox.stats;
            let (bytes_in, bytes_out) =
                (stats.bytes_in.load(Ordering::Relaxed), stats.bytes_out.load(Ordering::Relaxed));
            let rate = |before: u64, after: u64, since: Instant| {
                let secs = now.saturating_duration_since(since).as_secs_f64();
                if secs > 0.0 { after.saturating_sub(before) as f64 / secs } else { 0.0 }
            };
            let before = self.inspected.get(&view.client).copied();
            let (bytes_in_per_sec, bytes_out_per_sec) = match before {
                Some(b) => (rate(b.bytes_in, bytes_in, b.at), rate(b.bytes_out, bytes_out, b.at)),
                None => (0.0, 0.0),
            };
            let room = &self.shared.id;
            let (sent_before, left_before, forced_before) =
                before.map_or((0, 0, 0), |b| (b.bytes_out, b.left_out, b.forced));
            self.metrics.client_bytes_sent(
                room,
                view.client.0,
                bytes_out.saturating_sub(sent_before),
            );
            let governor = view.governor.unwrap_or_default();
            if view.governor.is_some() {
                let r = Ordering::Relaxed;
                let m = &self.metrics;
                m.governor_left_out.fetch_add(governor.left_out.saturating_sub(left_before), r);
                m.governor_forced.fetch_add(governor.forced.saturating_sub(forced_before), r);
                m.client_max_stale_ticks(room, view.client.0, governor.max_stale_ticks);
            }
            seen.insert(
                view.client,
                Inspected {
                    at: now,
                    bytes_in,
                    bytes_out,
                    left_out: governor.left_out,
                    forced: governor.forced,
                },
            );
            let rtt_us = stats.rtt_us.load(Ordering::Relaxed);
            clients.push(ClientInspection {
                client: view.client.0,
                entity: view.entity.0,
                name: view.name,
                transport: stats.transport,
                rtt_ms: (rtt_us > 0).then(|| rtt_us as f64 / 1e3),
                ack_lag_ticks: view.ack_lag_ticks,
                input_buffer: view.input_buffer,
                inputs_late: view.inputs_late,
                bytes_in_per_sec,
                bytes_out_per_sec,
                governor: view.governor.map(|g| GovernorInspection {
                    budget_bytes: g.budget_bytes,
                    left_out: g.left_out,
                    left_out_last: g.left_out_last,
                    forced: g.forced,
                    max_stale_ticks: g.max_stale_ticks,
                }),
            });
        }
        // Clients gone since the last inspection take their series with them.
        for client in self.inspected.keys().filter(|c| !seen.contains_key(c)) {
            self.metrics.forget_client(&self.shared.id, client.0);
        }
        self.inspected = seen;
        let (sums, ticks) = std::mem::replace(&mut self.stage_sums, ([0; STAGES.len()], 0));
        let stages_us = STAGES
            .iter()
            .zip(sums)
            .map(|(&stage, sum)| StageTime { stage, mean_us: sum as f64 / ticks.max(1) as f64 })
            .collect();
        let snapshots_per_sec = f64::from(self.shared.tick_rate)
            / f64::from(self.core.settings().ticks_per_snapshot.max(1));
        let per_client = snapshots_per_sec * self.outboxes.len() as f64 / 8.0;
        let parts = self.core.snapshot_bits_by_component().unwrap_or_default();
        let total: u64 = parts.iter().map(|(_, b)| b).sum();
        // The snapshot bytes made since the last inspection, split by the sampled shares.
        let made = std::mem::take(&mut self.snapshot_bytes) as f64;
        if total > 0 {
            for (component, bits) in &parts {
                self.metrics.component_bytes(component, made * *bits as f64 / total as f64);
            }
        }
        let components = parts
            .into_iter()
            .map(|(component, bits)| ComponentCost {
                component,
                bits,
                share: if total == 0 { 0.0 } else { bits as f64 / total as f64 },
                bytes_per_sec: bits as f64 * per_client,
            })
            .collect();
        let inspection = RoomInspection {
            id: self.shared.id.clone(),
            game: G::NAME,
            tick: self.core.tick().0,
            tick_rate: self.shared.tick_rate,
            players: self.core.player_count(),
            entities: self.core.newest_state().map_or(0, |(_, s)| s.len()),
            stages_us,
            components,
            clients,
        };
        *self.shared.inspection.lock().unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Arc::new(inspection));
    }

    /// Closes every session with `reason` and marks the room closed.
    pub fn close_all(&mut self, reason: DisconnectReason, message: &str) {
        for outbox in self.outboxes.values() {
            outbox.close(reason, message);
        }
        self.shared.closed.store(true, Ordering::Relaxed);
    }

    /// Runs the ticks that are due at `now` (at most [`MAX_CATCH_UP_TICKS`] back to back,
    /// dropping time past that rather than spiralling) and returns when the next one is due, or
    /// `None` once the room has stopped: on shutdown (sessions closed with 1001) or when idle.
    pub fn run_due(&mut self, now: Instant) -> Option<Instant> {
        let span = tracing::info_span!("room", id = %self.shared.id, game = G::NAME);
        let _entered = span.enter();
        if !self.started {
            self.started = true;
            self.next = now + self.period;
            tracing::info!("room started");
        }
        if let Some(next) = self.follow_handoff(now) {
            return next;
        }
        if self.shared.shutdown.load(Ordering::Relaxed) {
            // Finish the last tick's work: whatever is queued goes out before the close.
            self.close_all(DisconnectReason::ServerShutdown, "server shutting down");
            return None;
        }
        let mut ran = 0;
        while Instant::now() >= self.next && ran < MAX_CATCH_UP_TICKS {
            let due = self.next.saturating_duration_since(self.epoch).as_micros();
            self.core.set_next_tick_at(u64::try_from(due).unwrap_or(u64::MAX));
            let start = Instant::now();
            self.step();
            let took = start.elapsed();
            self.metrics.tick_duration.observe(took.as_micros() as u64);
            if took > self.period {
                self.metrics.tick_overruns.fetch_add(1, Ordering::Relaxed);
            }
            self.next += self.period;
            ran += 1;
        }
        let now = Instant::now();
        if now >= self.next + self.period {
            let behind = ((now - self.next).as_secs_f64() / self.period.as_secs_f64()) as u64;
            self.metrics.ticks_dropped.fetch_add(behind, Ordering::Relaxed);
            self.next = now + self.period;
        }
        if self.core.is_idle() {
            tracing::info!("room idle, closing");
            self.close_all(DisconnectReason::RoomClosed, "room closed");
            return None;
        }
        Some(self.next)
    }

    /// Does the hand-off's part of this turn, if one was asked: `Some` is what
    /// [`Room::run_due`] returns (no step runs while the room is handed off).
    fn follow_handoff(&mut self, now: Instant) -> Option<Option<Instant>> {
        let mut handoff =
            self.shared.handoff.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match &*handoff {
            Handoff::No => return None,
            Handoff::Asked => {
                let saved = self.core.save().map_err(|e| e.to_string());
                match &saved {
                    Ok(bytes) => tracing::info!(bytes = bytes.len(), "room saved for a hand-off"),
                    Err(e) => tracing::warn!(error = %e, "the room cannot be saved for a hand-off"),
                }
                *handoff = Handoff::Saved(Some(saved));
            }
            Handoff::Saved(_) => {}
            Handoff::Done(url) => {
                let url = url.clone();
                drop(handoff);
                // Whatever the last tick queued goes out before the close.
                self.flush();
                match url {
                    Some(url) => {
                        tracing::info!(%url, "room moved");
                        self.close_all(DisconnectReason::Moved, &url);
                    }
                    None => {
                        self.close_all(DisconnectReason::ServerShutdown, "server shutting down")
                    }
                }
                return Some(None);
            }
        }
        // Saved and waiting: look again shortly (the shutdown's deadline ends the wait).
        if self.shared.shutdown.load(Ordering::Relaxed) {
            drop(handoff);
            self.close_all(DisconnectReason::ServerShutdown, "server shutting down");
            return Some(None);
        }
        Some(Some(now + HANDOFF_POLL))
    }

    fn drain_control(&mut self) {
        // Bounded per tick so a flood of joins cannot stall the simulation.
        for _ in 0..CONTROL_CHANNEL_CAPACITY {
            let Ok(msg) = self.control.try_recv() else { break };
            match msg {
                Control::Join { client, ticket, outbox, reply, seat } => {
                    let result = self.join(client, &ticket, outbox);
                    // Count the player (and queue its welcome) before the seat goes, so that
                    // matchmaking sees it once, never twice or not at all.
                    self.flush();
                    drop(seat);
                    let _ = reply.send(result);
                }
                Control::Chat { client, text } => self.core.chat(client, &text),
                Control::Disconnect { client, left } => {
                    self.outboxes.remove(&client);
                    self.core.disconnect(client, left);
                }
                Control::Drop { entity } => {
                    let client = self.core.client_of(entity);
                    if let Some(outbox) = client.and_then(|c| self.outboxes.get(&c)) {
                        outbox.abort();
                    }
                }
                Control::Announce { name, text } => self.core.announce(&name, &text),
            }
            // Disconnects change the players too: keep matchmaking's view current.
            self.flush();
        }
    }

    fn join(
        &mut self,
        client: ClientId,
        ticket: &JoinTicket,
        outbox: Arc<Outbox>,
    ) -> Result<JoinInfo, JoinRefused> {
        if self.shared.shutdown.load(Ordering::Relaxed)
            || self.shared.closed.load(Ordering::Relaxed)
            || !matches!(
                *self.shared.handoff.lock().unwrap_or_else(std::sync::PoisonError::into_inner),
                Handoff::No
            )
        {
            return Err(JoinRefused::Closed);
        }
        let resume = ticket.resume.as_deref();
        let subject = match resume.and_then(|t| self.core.subject_of(t)) {
            Some(owner) if self.resume_any_subject => owner.to_owned(),
            _ => ticket.subject.clone(),
        };
        let info = self.core.join(client, &ticket.name, &subject, resume, || random_hex(16))?;
        if !info.resumed {
            self.resume_index
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .insert(info.token.clone(), self.shared.id.clone());
        }
        self.outboxes.insert(client, outbox);
        let _span = tracing::info_span!("session", %client, entity = %info.entity).entered();
        tracing::info!(resumed = info.resumed, "player joined");
        Ok(info)
    }

    fn drain_inputs(&mut self) {
        for _ in 0..INPUT_CHANNEL_CAPACITY {
            let Ok((client, batch, arrived)) = self.inputs.try_recv() else { break };
            let stamp = arrived.saturating_duration_since(self.epoch).as_micros();
            self.core.input(client, &batch, u64::try_from(stamp).unwrap_or(u64::MAX));
        }
    }

    /// Moves the core's outputs to the outboxes and its counters to the metrics.
    fn flush(&mut self) {
        while let Some(output) = self.core.poll_output() {
            match output {
                Output::Send { client, bytes } => {
                    let Some(outbox) = self.outboxes.get(&client) else { continue };
                    if outbox.push_reliable(Bytes::from_owner(bytes)) == Err(OutboxFull) {
                        outbox.close(DisconnectReason::TooSlow, "too slow to receive events");
                    }
                }
                Output::Snapshot { client, bytes, full, arrivals } => {
                    let histogram = if full {
                        &self.metrics.snapshot_full
                    } else {
                        &self.metrics.snapshot_delta
                    };
                    histogram.observe(bytes.len() as u64);
                    self.snapshot_bytes += bytes.len() as u64;
                    let Some(outbox) = self.outboxes.get(&client) else { continue };
                    let arrivals =
                        arrivals.into_iter().map(|us| self.epoch + Duration::from_micros(us));
                    if outbox.push_snapshot(Bytes::from(bytes), arrivals.collect()) {
                        self.metrics.snapshots_superseded.fetch_add(1, Ordering::Relaxed);
                        if outbox.snapshots_behind() >= MAX_SNAPSHOTS_BEHIND {
                            outbox
                                .close(DisconnectReason::TooSlow, "too slow to receive snapshots");
                        }
                    }
                }
                Output::Close { client, reason, message } => {
                    if let Some(outbox) = self.outboxes.get(&client) {
                        outbox.close(reason, message);
                    }
                }
                Output::Forget { token } => {
                    self.resume_index
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .remove(&token);
                }
            }
        }
        let stats = self.core.stats();
        let dropped = stats.inputs_dropped - self.reported_inputs_dropped;
        let errors = stats.input_errors - self.reported_input_errors;
        self.reported_inputs_dropped = stats.inputs_dropped;
        self.reported_input_errors = stats.input_errors;
        self.metrics.inputs_dropped.fetch_add(dropped, Ordering::Relaxed);
        self.metrics.decode_errors.fetch_add(errors, Ordering::Relaxed);
        let unchanged = stats.snapshots_unchanged - self.reported_snapshots_unchanged;
        self.reported_snapshots_unchanged = stats.snapshots_unchanged;
        self.metrics.snapshots_unchanged.fetch_add(unchanged, Ordering::Relaxed);
        let players = self.core.player_count();
        if players != self.players {
            let delta = players as i64 - self.players as i64;
            self.metrics.players.fetch_add(delta, Ordering::Relaxed);
            self.players = players;
            self.shared.players.store(players, Ordering::Relaxed);
        }
    }
}

impl<G: Game> crate::sim_pool::Scheduled for Room<G> {
    fn run_due(&mut self, now: Instant) -> Option<Instant> {
        Room::run_due(self, now)
    }
}

impl<G: Game> Drop for Room<G> {
    fn drop(&mut self) {
        // A room dropped without closing its sessions (it panicked): they must not wait on it.
        for outbox in self.outboxes.values() {
            outbox.close(DisconnectReason::Internal, "the room failed");
        }
        self.shared.closed.store(true, Ordering::Relaxed);
        self.metrics.rooms.fetch_sub(1, Ordering::Relaxed);
        self.metrics.players.fetch_sub(self.players as i64, Ordering::Relaxed);
        for client in self.inspected.keys() {
            self.metrics.forget_client(&self.shared.id, client.0);
        }
        let mut index = self.resume_index.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for token in self.core.tokens() {
            index.remove(token);
        }
        drop(index);
        if let Some(file) = self.recording.take() {
            let mut last = self.core.take_recording();
            last.extend(self.core.stop_recording("the room ended"));
            file.finish(last);
        }
    }
}

/// Opens a room of the game named by the visit: builds it and hands it to the simulation pool.
pub struct OpenRoom<'a> {
    /// The room's settings.
    pub settings: RoomSettings,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The process's resume index.
    pub resume_index: ResumeIndex,
    /// The simulation threads that will run it.
    pub pool: &'a crate::sim_pool::SimPool,
    /// `--dev`: see [`Room::resume_any_subject`].
    pub dev: bool,
    /// `--record DIR`: see [`Room::record_to`].
    pub record: Option<std::path::PathBuf>,
}

/// Restores a room another instance saved: builds it and hands it to the simulation pool.
pub struct RestoreRoom<'a> {
    /// The save.
    pub save: RoomSave,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// The process's resume index.
    pub resume_index: ResumeIndex,
    /// The simulation threads that will run it.
    pub pool: &'a crate::sim_pool::SimPool,
    /// `--dev`: see [`Room::resume_any_subject`].
    pub dev: bool,
    /// `--record DIR`: see [`Room::record_to`].
    pub record: Option<std::path::PathBuf>,
}

impl tickwire_shared::games::GameVisitor for RestoreRoom<'_> {
    type Output = Result<RoomHandle, PersistError>;

    fn visit<G: Game>(self) -> Self::Output {
        let (mut room, handle) = Room::<G>::restore(self.save, self.metrics, self.resume_index)?;
        if self.dev {
            room.resume_any_subject();
        }
        if let Some(dir) = &self.record {
            room.record_to(dir);
        }
        self.pool.submit(Box::new(room));
        Ok(handle)
    }
}

impl tickwire_shared::games::GameVisitor for OpenRoom<'_> {
    type Output = RoomHandle;

    fn visit<G: Game>(self) -> Self::Output {
        let (mut room, handle) = Room::<G>::new(self.settings, self.metrics, self.resume_index);
        if self.dev {
            room.resume_any_subject();
        }
        if let Some(dir) = &self.record {
            room.record_to(dir);
        }
        self.pool.submit(Box::new(room));
        handle
    }
}
