//! The sans-IO client core: what the browser client, the headless bots and the in-memory tests
//! share to talk to a Tickwire server.
//!
//! [`Client`] is a state machine in the style of `quinn-proto`: it never reads a clock, opens a
//! socket or spawns anything. The driver hands it each server message with
//! [`Client::handle_bytes`] (and the current time), tells it what the player does
//! ([`Client::push_input`], [`Client::send_chat`], [`Client::send_ping`], [`Client::leave`]),
//! and then drains [`Client::poll_transmit`] (bytes to send, in order) and
//! [`Client::poll_event`] (what happened). Every queue is bounded, and no server bytes can make
//! it panic: a bad message is an `Err`, counted in [`ClientStats::decode_errors`], and the client
//! stays usable.
//!
//! Snapshots are decoded against the states the client kept ([`ClientConfig::max_stored_states`]
//! of them, newest last); the newest decoded tick is acknowledged in every input message so the
//! server can delta against it. Inputs are numbered from 0 and kept until the server echoes
//! them as applied, for prediction replay ([`Client::unacked_inputs`]).
//!
//! [`interp::InterpolationBuffer`] smooths remote entities between snapshots.

pub mod interp;
pub mod predict;
pub mod session;
pub mod timesync;

use std::collections::VecDeque;

use crate::codec;
use crate::game::{Game, registry};
use crate::ids::NetId;
use crate::join::truncate_utf8;
use crate::protocol::{
    ClientMessage, InputBatch, MAX_CHAT_BYTES, MAX_INPUT_FRAMES, PROTOCOL_VERSION, ServerMessage,
    SnapshotMessage, ViewTime, Welcome,
};
use crate::registry::ReplicationRegistry;
use crate::snapshot::{self, ReplicatedState};
use crate::tick::{Tick, seq_after};

mod types;

pub use interp::InterpolationBuffer;
pub use predict::{CauseStats, CorrectionCause, PredictionStats, Predictor};
pub use session::{Session, SessionEvent};
pub use timesync::{InputClock, TimeSyncStats};
pub use types::{ClientConfig, ClientError, ClientEvent, ClientStats};

/// Default [`ClientConfig::input_redundancy`]: each input message repeats the last four frames,
/// so up to three consecutive lost messages cost no input (67 ms at 60 Hz) while a message stays
/// around 30 bytes.
pub const DEFAULT_INPUT_REDUNDANCY: usize = 4;

/// Default [`ClientConfig::max_stored_states`]: 32 decoded states are about one second of
/// snapshots at 30 Hz, so a delta against any baseline the server can still be using (its
/// acknowledgement lags by a round trip) finds its state.
pub const DEFAULT_MAX_STORED_STATES: usize = 32;

/// Upper bound for [`ClientConfig::max_stored_states`]: each state is a full copy of the visible
/// world, so a misconfiguration must not let memory grow without limit. 256 states are over
/// eight seconds at 30 Hz, far more than any useful baseline age.
pub const MAX_STORED_STATES: usize = 256;

/// At most this many inputs are kept waiting for the server's echo. 128 frames are two seconds
/// at 60 Hz; an input older than that is past any useful prediction replay (the server has
/// applied or dropped it), and the bound keeps a silent server from growing the ring.
pub const MAX_UNACKED_INPUTS: usize = 128;

/// At most this many messages wait in [`Client::poll_transmit`]'s queue. A driver drains it every
/// frame, so it holds a handful; 256 only fills when the transport is stalled, and then the
/// oldest inputs and pings go first (they are worthless by then).
pub const MAX_QUEUED_TRANSMITS: usize = 256;

/// Soft bound of [`Client::poll_event`]'s queue. Past it, the oldest snapshot and pong events are
/// dropped first: they are only notifications, the state itself stays in [`Client::latest`].
pub const MAX_QUEUED_EVENTS: usize = 256;

/// Hard bound of the event queue. Chat, game events and disconnects are kept past
/// [`MAX_QUEUED_EVENTS`] up to this many, then the oldest event of any kind is dropped, so a
/// driver that never polls cannot exhaust memory.
pub const MAX_QUEUED_EVENTS_HARD: usize = 4096;

/// Weight of a new round-trip sample in [`ClientStats::rtt_us`], as a divisor: 1/8, the
/// smoothing TCP uses (RFC 6298), which follows real changes within a few pings but not a single
/// outlier.
pub const RTT_SMOOTHING: u64 = 8;

/// What kind of message a queued transmit is (for dropping and superseding).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Outgoing {
    /// An input batch whose first frame has this sequence number.
    Input { first_seq: u32 },
    /// A ping.
    Ping,
    /// A chat line or a leave: never superseded, dropped last.
    Reliable,
}

/// The sans-IO client of game `G`: see the [module documentation](self).
pub struct Client<G: Game> {
    registry: ReplicationRegistry,
    config: ClientConfig,
    welcome: Option<Welcome>,
    /// Decoded states, ascending by tick (newest last).
    states: VecDeque<(Tick, ReplicatedState)>,
    /// Whether the session was resumed with the states kept and no snapshot decoded since.
    resuming: bool,
    /// Inputs not yet echoed as applied, ascending by sequence number.
    inputs: VecDeque<(u32, G::Input)>,
    /// The sequence number the next input gets.
    next_seq: u32,
    /// Whether any input was pushed (so `next_seq - 1` is meaningful).
    sent_any_input: bool,
    last_applied_input: Option<u32>,
    /// The newest snapshot's count of input ticks the server ran late.
    inputs_late: u32,
    /// The newest snapshot's time-sync report.
    input_margin: Option<i16>,
    /// The moment of the world the driver shows ([`Client::set_view`]).
    view: Option<ViewTime>,
    next_ping_id: u32,
    left: bool,
    transmits: VecDeque<(Outgoing, Vec<u8>)>,
    events: VecDeque<ClientEvent<G::Event>>,
    stats: ClientStats,
}

impl<G: Game> std::fmt::Debug for Client<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("game", &G::NAME)
            .field("welcome", &self.welcome)
            .field("states", &self.states.len())
            .field("unacked_inputs", &self.inputs.len())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<G: Game> Client<G> {
    /// A client of game `G`. `config` values out of range are clamped.
    #[must_use]
    pub fn new(config: ClientConfig) -> Client<G> {
        let registry = registry::<G>();
        let config = ClientConfig {
            input_redundancy: config.input_redundancy.clamp(1, MAX_INPUT_FRAMES),
            max_stored_states: config.max_stored_states.clamp(1, MAX_STORED_STATES),
        };
        Client {
            registry,
            config,
            welcome: None,
            states: VecDeque::new(),
            resuming: false,
            inputs: VecDeque::new(),
            next_seq: 0,
            sent_any_input: false,
            last_applied_input: None,
            inputs_late: 0,
            input_margin: None,
            view: None,
            next_ping_id: 0,
            left: false,
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            stats: ClientStats::default(),
        }
    }

    /// The configuration in effect (after clamping).
    #[must_use]
    pub fn config(&self) -> ClientConfig {
        self.config
    }

    /// The registry snapshots are decoded with (to read components of [`Client::latest`]).
    #[must_use]
    pub fn registry(&self) -> &ReplicationRegistry {
        &self.registry
    }

    /// Handles one server message received at `now_us` (the driver's clock, microseconds).
    ///
    /// - `Welcome`: checked (protocol version, registry fingerprint) and stored. A later
    ///   `Welcome` starts a new session; inputs and their numbering continue. If it resumes the
    ///   same player (the same room, resume token and entity) the kept states stay, since the
    ///   room's first snapshot is a delta against the newest one it saw acknowledged;
    ///   otherwise they are dropped (the server holds no baseline of a new player).
    /// - `Snapshot`: refused before a welcome; ignored (counted in
    ///   [`ClientStats::stale_snapshots`]) unless newer than the newest applied; otherwise
    ///   decoded in full or against the kept state of its baseline, kept (the oldest kept state
    ///   is dropped past [`ClientConfig::max_stored_states`]) and acknowledged. Its
    ///   `last_input_seq` drops the applied inputs.
    /// - `Pong`: the round trip is `now_us - client_time_us` (0 if negative).
    /// - `Chat`, `Event`, `Disconnect`: become events.
    ///
    /// On `Err` nothing changed except [`ClientStats::decode_errors`] and
    /// [`ClientStats::bytes_received`] (and, for a delta against a baseline no longer kept
    /// right after a resume, the kept states, dropped so that the room sends a full snapshot);
    /// the client stays usable.
    pub fn handle_bytes(&mut self, now_us: u64, bytes: &[u8]) -> Result<(), ClientError> {
        self.stats.bytes_received = self.stats.bytes_received.saturating_add(bytes.len() as u64);
        let result = codec::decode_server(bytes)
            .map_err(ClientError::from)
            .and_then(|msg| self.handle_message(now_us, bytes.len(), msg));
        match result {
            Ok(()) => self.stats.messages_received += 1,
            Err(_) => self.stats.decode_errors += 1,
        }
        result
    }

    fn handle_message(
        &mut self,
        now_us: u64,
        len: usize,
        msg: ServerMessage,
    ) -> Result<(), ClientError> {
        match msg {
            ServerMessage::Welcome(welcome) => self.handle_welcome(welcome),
            ServerMessage::Snapshot(snap) => self.handle_snapshot(len, snap),
            ServerMessage::Pong { id, client_time_us, tick: _ } => {
                // A clock that went backwards (or a forged echo) gives 0, never a wrap.
                let rtt_us = now_us.saturating_sub(client_time_us);
                self.stats.last_rtt_us = Some(rtt_us);
                self.stats.rtt_us = Some(match self.stats.rtt_us {
                    None => rtt_us,
                    Some(old) => {
                        let old = i128::from(old);
                        let new = old + (i128::from(rtt_us) - old) / i128::from(RTT_SMOOTHING);
                        u64::try_from(new).unwrap_or(0)
                    }
                });
                self.push_event(ClientEvent::Pong { id, rtt_us });
                Ok(())
            }
            ServerMessage::Chat { from, name, text } => {
                self.push_event(ClientEvent::Chat { from, name, text });
                Ok(())
            }
            ServerMessage::Event(event) => {
                self.push_event(ClientEvent::Room(event));
                Ok(())
            }
            ServerMessage::GameEvent { body } => {
                let event = codec::decode_game_event::<G::Event>(&body)?;
                self.push_event(ClientEvent::Game(event));
                Ok(())
            }
            ServerMessage::Disconnect { reason, message } => {
                self.push_event(ClientEvent::Disconnected { reason, message });
                Ok(())
            }
        }
    }

    fn handle_welcome(&mut self, welcome: Welcome) -> Result<(), ClientError> {
        if welcome.protocol != PROTOCOL_VERSION {
            return Err(ClientError::ProtocolMismatch {
                server: welcome.protocol,
                client: PROTOCOL_VERSION,
            });
        }
        if welcome.game != G::NAME {
            return Err(ClientError::GameMismatch { server: welcome.game, client: G::NAME });
        }
        let differences = crate::schema::GameSchema::of::<G>().diff(&welcome.schema);
        if !differences.is_empty() {
            return Err(ClientError::SchemaMismatch { game: welcome.game, differences });
        }
        let client = self.registry.fingerprint();
        if welcome.registry_fingerprint != client {
            return Err(ClientError::RegistryMismatch {
                server: welcome.registry_fingerprint,
                client,
            });
        }
        self.resuming = self.is_resumed_by(&welcome);
        if !self.resuming {
            // A new player: the server holds no baseline of ours, so ours are useless to it.
            self.states.clear();
        }
        self.welcome = Some(welcome.clone());
        self.push_event(ClientEvent::Welcomed(welcome));
        Ok(())
    }

    /// Whether `welcome` resumes the player of the session before it: the same room, resume
    /// token and entity. The room then still holds the baseline this client acknowledged and
    /// sends a delta against it, so the kept states must stay. (A resume token sent but not
    /// honoured comes back as a new token, and a new player as a new entity.)
    fn is_resumed_by(&self, welcome: &Welcome) -> bool {
        self.welcome.as_ref().is_some_and(|old| {
            old.room == welcome.room
                && old.resume_token == welcome.resume_token
                && old.entity == welcome.entity
        })
    }

    fn handle_snapshot(&mut self, len: usize, snap: SnapshotMessage) -> Result<(), ClientError> {
        if self.welcome.is_none() {
            return Err(ClientError::NotWelcomed);
        }
        if let Some((newest, _)) = self.states.back()
            && !snap.tick.is_after(*newest)
        {
            self.stats.stale_snapshots += 1;
            return Ok(());
        }
        let state = match snap.baseline {
            None => snapshot::decode_full(&self.registry, &snap.body)?,
            // A baseline this client no longer has is refused. Within a session the next input
            // message acknowledges the newest state kept, which the room then deltas against.
            // After a resume the room knows none of the states kept but the one it deltas
            // against: they are dropped, so the next input message acknowledges none and the
            // room sends a full snapshot.
            Some(baseline) => {
                let Some((_, base)) = self.states.iter().find(|(t, _)| *t == baseline) else {
                    if self.resuming {
                        self.states.clear();
                    }
                    return Err(ClientError::UnknownBaseline(baseline));
                };
                // The delta is against the baseline moved on by its motion, as the room took it.
                let ticks = snap.tick.0.wrapping_sub(baseline.0);
                let predicted = crate::motion::predicted(&self.registry, base, ticks);
                snapshot::decode_delta(
                    &self.registry,
                    predicted.as_ref().unwrap_or(base),
                    &snap.body,
                )?
            }
        };
        // Everything checked: apply.
        self.resuming = false;
        while self.states.len() >= self.config.max_stored_states {
            self.states.pop_front();
        }
        self.states.push_back((snap.tick, state));
        self.inputs_late = snap.inputs_late;
        self.input_margin = snap.input_margin;
        // The newest snapshot's echo is the truth, even one that went back (the room stopped
        // the schedule of a client that went silent and echoes its last frame again).
        if let Some(echoed) = snap.last_input_seq {
            self.last_applied_input = Some(echoed);
            while self.inputs.front().is_some_and(|&(seq, _)| !seq_after(seq, echoed)) {
                self.inputs.pop_front();
            }
        }
        let full = snap.baseline.is_none();
        self.stats.snapshots += 1;
        if full {
            self.stats.full_snapshots += 1;
        }
        self.push_event(ClientEvent::Snapshot { tick: snap.tick, full, bytes: len });
        Ok(())
    }

    /// Says which moment of the world the driver is showing its player now (its
    /// interpolation's render time), sent with the next inputs so that the room resolves their
    /// actions against that moment (lag compensation, [`crate::rewind`]). `None` (the default):
    /// the newest snapshot, which is what a driver that draws no interpolation shows.
    pub fn set_view(&mut self, view: Option<ViewTime>) {
        self.view = view;
    }

    /// The sequence number the next input gets.
    #[must_use]
    pub fn next_input_seq(&self) -> u32 {
        self.next_seq
    }

    /// Records the input for the next tick and queues an input message carrying the newest
    /// [`ClientConfig::input_redundancy`] unacknowledged frames and the current [`Client::ack`].
    /// If an input message is still queued (the driver has not polled since), the new one
    /// replaces it and also carries its frames (up to [`MAX_INPUT_FRAMES`]), so no frame goes
    /// unsent and only one input message waits. Returns the frame's sequence number: the first input is 0, then 1, 2, … (wrapping).
    ///
    /// After [`Client::leave`] the input is still numbered and kept, but nothing is sent.
    pub fn push_input(&mut self, frame: G::Input) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.sent_any_input = true;
        if self.inputs.len() >= MAX_UNACKED_INPUTS {
            self.inputs.pop_front();
            self.stats.inputs_dropped += 1;
        }
        self.inputs.push_back((seq, frame));
        if self.left {
            return seq;
        }
        // The newest `input_redundancy` frames, extended back to the first frame of the last
        // queued (not yet transmitted) input batch so that it can be replaced: its frames would
        // otherwise never be sent. If that would exceed `MAX_INPUT_FRAMES`, it stays queued.
        let redundant = self.inputs.len().min(self.config.input_redundancy);
        let last_queued =
            self.transmits.iter().rposition(|(k, _)| matches!(k, Outgoing::Input { .. }));
        let pending = last_queued.and_then(|i| match self.transmits.get(i) {
            Some((Outgoing::Input { first_seq }, _)) => {
                Some((i, seq.wrapping_sub(*first_seq) as usize + 1))
            }
            _ => None,
        });
        let mut n = redundant;
        if let Some((i, needed)) = pending {
            let extended = redundant.max(needed).min(self.inputs.len());
            if extended <= MAX_INPUT_FRAMES {
                n = extended;
                self.transmits.remove(i);
                self.stats.inputs_superseded += 1;
            }
        }
        let skip = self.inputs.len() - n;
        let frames: Vec<G::Input> = self.inputs.iter().skip(skip).map(|&(_, f)| f).collect();
        // Sequence numbers in the ring are consecutive and end at `seq`; `n >= 1`.
        let first_seq = seq.wrapping_sub(n as u32 - 1);
        let Ok(frames) = codec::encode_inputs(&frames) else {
            // Cannot happen: 1..=MAX_INPUT_FRAMES frames of a small input type.
            self.stats.transmits_dropped += 1;
            return seq;
        };
        let view = self.view.or_else(|| self.latest().map(|(tick, _)| ViewTime::new(tick, 0.0)));
        let batch = InputBatch { ack: self.ack(), first_seq, frames, view };
        self.queue(Outgoing::Input { first_seq }, &ClientMessage::Input(batch));
        seq
    }

    /// Queues a chat line. Text over [`MAX_CHAT_BYTES`] is cut at a character boundary (the
    /// server would refuse the whole message). Nothing is sent after [`Client::leave`].
    pub fn send_chat(&mut self, text: &str) {
        if self.left {
            return;
        }
        let text = truncate_utf8(text, MAX_CHAT_BYTES).to_owned();
        self.queue(Outgoing::Reliable, &ClientMessage::Chat { text });
    }

    /// Queues a ping stamped with `now_us`; its pong becomes [`ClientEvent::Pong`]. Ids count up
    /// from 0. Nothing is sent after [`Client::leave`].
    pub fn send_ping(&mut self, now_us: u64) {
        if self.left {
            return;
        }
        let id = self.next_ping_id;
        self.next_ping_id = self.next_ping_id.wrapping_add(1);
        self.queue(Outgoing::Ping, &ClientMessage::Ping { id, client_time_us: now_us });
    }

    /// Queues a `Leave` (the player leaves for good). Later sends are ignored; a second call
    /// does nothing.
    pub fn leave(&mut self) {
        if self.left {
            return;
        }
        self.queue(Outgoing::Reliable, &ClientMessage::Leave);
        self.left = true;
    }

    /// Whether [`Client::leave`] was called.
    #[must_use]
    pub fn has_left(&self) -> bool {
        self.left
    }

    fn queue(&mut self, kind: Outgoing, msg: &ClientMessage) {
        let Ok(bytes) = codec::encode_client(msg) else {
            // Cannot happen for the messages built here (bounded frames, truncated chat).
            self.stats.transmits_dropped += 1;
            return;
        };
        if self.transmits.len() >= MAX_QUEUED_TRANSMITS {
            let victim =
                self.transmits.iter().position(|(k, _)| *k != Outgoing::Reliable).unwrap_or(0);
            self.transmits.remove(victim);
            self.stats.transmits_dropped += 1;
        }
        self.transmits.push_back((kind, bytes));
    }

    /// The next encoded client message to send, oldest first.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        let (_, bytes) = self.transmits.pop_front()?;
        self.stats.bytes_sent = self.stats.bytes_sent.saturating_add(bytes.len() as u64);
        Some(bytes)
    }

    fn push_event(&mut self, event: ClientEvent<G::Event>) {
        if self.events.len() >= MAX_QUEUED_EVENTS {
            if let Some(i) = self.events.iter().position(ClientEvent::is_droppable) {
                self.events.remove(i);
                self.stats.events_dropped += 1;
            } else if event.is_droppable() {
                self.stats.events_dropped += 1;
                return;
            } else if self.events.len() >= MAX_QUEUED_EVENTS_HARD {
                self.events.pop_front();
                self.stats.events_dropped += 1;
            }
        }
        self.events.push_back(event);
    }

    /// The next event, oldest first.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<ClientEvent<G::Event>> {
        self.events.pop_front()
    }

    /// The session's welcome, once received.
    #[must_use]
    pub fn welcome(&self) -> Option<&Welcome> {
        self.welcome.as_ref()
    }

    /// The player's own entity (from the welcome).
    #[must_use]
    pub fn own_entity(&self) -> Option<NetId> {
        self.welcome.as_ref().map(|w| w.entity)
    }

    /// The newest decoded state and its tick.
    #[must_use]
    pub fn latest(&self) -> Option<(Tick, &ReplicatedState)> {
        self.states.back().map(|(t, s)| (*t, s))
    }

    /// The decoded state of `tick`, if still kept.
    #[must_use]
    pub fn state_at(&self, tick: Tick) -> Option<&ReplicatedState> {
        self.states.iter().find(|(t, _)| *t == tick).map(|(_, s)| s)
    }

    /// The acknowledgement sent with inputs: the newest decoded snapshot tick.
    #[must_use]
    pub fn ack(&self) -> Option<Tick> {
        self.states.back().map(|(t, _)| *t)
    }

    /// The server's count of this client's input ticks it ran late, as of the newest snapshot
    /// ([`crate::protocol::SnapshotMessage::inputs_late`]).
    #[must_use]
    pub fn inputs_late(&self) -> u32 {
        self.inputs_late
    }

    /// The newest snapshot's input-buffer report: how many ticks before their tick the
    /// room received the latest of this client's new frames
    /// ([`crate::protocol::SnapshotMessage::input_margin`]).
    #[must_use]
    pub fn input_margin(&self) -> Option<i16> {
        self.input_margin
    }

    /// The newest input sequence number the server says it applied.
    #[must_use]
    pub fn last_applied_input(&self) -> Option<u32> {
        self.last_applied_input
    }

    /// The inputs the server has not applied yet (sequence after
    /// [`Client::last_applied_input`]), oldest first: replay them on top of the newest state to
    /// predict. At most [`MAX_UNACKED_INPUTS`].
    pub fn unacked_inputs(&self) -> impl Iterator<Item = (u32, G::Input)> + '_ {
        let applied = self.last_applied_input;
        self.inputs
            .iter()
            .copied()
            .filter(move |&(seq, _)| applied.is_none_or(|a| seq_after(seq, a)))
    }

    /// Counters.
    #[must_use]
    pub fn stats(&self) -> &ClientStats {
        &self.stats
    }
}

#[cfg(test)]
mod tests;
