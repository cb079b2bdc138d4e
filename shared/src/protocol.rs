//! The protocol (version [`PROTOCOL_VERSION`]): every message in both directions, as typed enums.
//!
//! Joining happens at the WebSocket handshake (see [`crate::join`]), so after the upgrade the
//! server speaks first: [`ServerMessage::Welcome`], then snapshots. Messages are encoded by
//! [`crate::codec`]; after decoding, [`ClientMessage::validate`] checks the bounds that the
//! types alone cannot express.

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::ids::{ClientId, NetId};
use crate::tick::Tick;

/// The protocol version. A client states it at the handshake (subprotocol [`SUBPROTOCOL`] or
/// the query parameter `v`); the server refuses any other.
pub const PROTOCOL_VERSION: u16 = 7;

/// The WebSocket subprotocol that names this protocol version.
pub const SUBPROTOCOL: &str = "tickwire.v7";

/// At most this many input frames in one [`InputBatch`]: the newest frame plus the redundant
/// copies of the ones before it. Eight frames cover 133 ms of loss at 60 Hz.
pub const MAX_INPUT_FRAMES: usize = 8;

/// Longest chat message, in bytes of UTF-8.
pub const MAX_CHAT_BYTES: usize = 200;

/// Longest player name, in characters.
pub const MAX_NAME_CHARS: usize = 24;

/// Longest free-text reason or name the server sends, in bytes.
pub const MAX_TEXT_BYTES: usize = 256;

/// The sender of chat lines from outside the room (an operator's broadcast, the lobby shared by
/// every room): no entity has this id.
pub const SERVER_NET_ID: NetId = NetId(u32::MAX);

/// The client's input message: its newest frames (oldest first) and its acknowledgement.
///
/// The frames are the game's input type ([`crate::game::Game::Input`]), encoded by
/// [`crate::codec::encode_inputs`]: the envelope names no game, and the room decodes them with
/// its game's type ([`crate::codec::decode_inputs`], which also checks their count).
#[derive(Clone, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct InputBatch {
    /// The newest snapshot tick the client received and decoded: the server deltas against it.
    pub ack: Option<Tick>,
    /// The sequence number of the first frame; the others follow one by one. Each sequence
    /// number is one tick: the room maps the first frame it receives to the next tick it runs
    /// and every later number to its own tick after that, so a client that sends ahead of time
    /// has its frames wait for their tick, and a frame that comes after its tick is replaced by
    /// the previous input (see [`SnapshotMessage::input_margin`]). A client skips numbers to
    /// move its frames later ticks ahead.
    pub first_seq: u32,
    /// The last few frames (1 to [`MAX_INPUT_FRAMES`]), oldest first, encoded.
    #[serde(with = "crate::codec::bytes")]
    pub frames: Vec<u8>,
    /// The moment of the world the client was showing when it produced the newest frame (its
    /// interpolation's render time; `None`: the newest snapshot it has). The room rewinds what a
    /// game opted into rewind to this moment (minus one tick per older frame) when it resolves
    /// that frame's actions, within a cap ([`crate::rewind`]).
    pub view: Option<ViewTime>,
}

/// A moment between two ticks: `tick` plus `frac` / 256 of a tick.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct ViewTime {
    /// The whole tick.
    pub tick: Tick,
    /// How far past it, in 256ths of a tick.
    pub frac: u8,
}

impl ViewTime {
    /// `tick` and `frac` in `0.0..1.0` (rounded down to a 256th; out-of-range values clamp).
    #[must_use]
    pub fn new(tick: Tick, frac: f32) -> ViewTime {
        ViewTime { tick, frac: (frac.clamp(0.0, 1.0) * 256.0).min(255.0) as u8 }
    }

    /// Ticks from this moment to tick `later` (negative when `later` is before it).
    #[must_use]
    pub fn ticks_before(self, later: Tick) -> f32 {
        later.diff(self.tick) as f32 - f32::from(self.frac) / 256.0
    }
}

/// Everything a client can say.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ClientMessage {
    /// Input frames and the snapshot acknowledgement.
    Input(InputBatch),
    /// A round-trip probe; the server answers [`ServerMessage::Pong`] with the same values.
    Ping {
        /// Chosen by the client.
        id: u32,
        /// The client's clock when sent, in microseconds (opaque to the server).
        client_time_us: u64,
    },
    /// A chat line for the room.
    Chat {
        /// The text, at most [`MAX_CHAT_BYTES`].
        text: String,
    },
    /// The player leaves for good (no resume).
    Leave,
}

/// Why a message that decoded is still refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ProtocolError {
    /// An input batch has no frames or more than [`MAX_INPUT_FRAMES`].
    #[error("input batch of {0} frames (1..={MAX_INPUT_FRAMES} allowed)")]
    FrameCount(usize),
    /// An input frame the game refuses.
    #[error(transparent)]
    InvalidInput(#[from] crate::game::InvalidInput),
    /// A chat line over [`MAX_CHAT_BYTES`].
    #[error("chat message of {0} bytes (at most {MAX_CHAT_BYTES})")]
    ChatTooLong(usize),
    /// A server text field over [`MAX_TEXT_BYTES`].
    #[error("text field too long")]
    TextTooLong,
}

impl ClientMessage {
    /// Checks what the types cannot: frame counts, sequence order, lengths.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        match self {
            // The frames are checked by the room, which knows the game's input type.
            ClientMessage::Input(batch) if batch.frames.is_empty() => {
                Err(ProtocolError::FrameCount(0))
            }
            ClientMessage::Chat { text } if text.len() > MAX_CHAT_BYTES => {
                Err(ProtocolError::ChatTooLong(text.len()))
            }
            ClientMessage::Input(_)
            | ClientMessage::Ping { .. }
            | ClientMessage::Chat { .. }
            | ClientMessage::Leave => Ok(()),
        }
    }
}

/// The first message of every session.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Welcome {
    /// [`PROTOCOL_VERSION`] of the server.
    pub protocol: u16,
    /// This session's client id.
    pub client_id: ClientId,
    /// The room joined.
    pub room: String,
    /// The game the room plays ([`crate::game::Game::NAME`]).
    pub game: String,
    /// The player's entity.
    pub entity: NetId,
    /// Simulation ticks per second.
    pub tick_rate: u16,
    /// Snapshots per second.
    pub snapshot_rate: u16,
    /// The current server tick.
    pub tick: Tick,
    /// Present on reconnect: resumes this player within the grace period.
    pub resume_token: String,
    /// [`crate::registry::ReplicationRegistry::fingerprint`] of the server's registry.
    pub registry_fingerprint: u64,
    /// The room's game as the server describes it: a client that differs says what differs
    /// ([`crate::schema::GameSchema::diff`]).
    pub schema: Box<crate::schema::GameSchema>,
}

/// A snapshot of the replicated world as one client sees it.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct SnapshotMessage {
    /// The simulation tick it shows.
    pub tick: Tick,
    /// The acknowledged tick it is a delta against; `None` for a full snapshot.
    pub baseline: Option<Tick>,
    /// The sequence number of the input slot of the last tick run for this client (its frame
    /// applied, or the previous input repeated in its place when the frame was late, even one
    /// the client has not sent yet): the state reflects this slot and every one before it, so a
    /// client predicts by replaying its frames after it.
    pub last_input_seq: Option<u32>,
    /// How many of this client's input ticks the server has run late so far: a tick with no
    /// frame in time (the last one repeated), a frame too far ahead to be kept. Each may move
    /// the server's own player away from what the client predicted. Cumulative (wrapping), so a lost snapshot loses no count: a client compares
    /// it with the previous snapshot's to tell a late input from another misprediction.
    pub inputs_late: u32,
    /// The room's input-buffer report for time sync: of this client's frames that first reached
    /// the room since the previous snapshot to it, how many milliseconds before its tick was due
    /// the latest one arrived (negative: after, and when by more than the tick's run took, the
    /// room repeated the previous input in its place). Exact to the tick only when the room's
    /// driver keeps no schedule (an in-process test). `None` when no new frame arrived.
    /// The client steers how far it runs ahead of the server by it
    /// ([`crate::client::timesync`]).
    pub input_margin: Option<i16>,
    /// The bit-packed body ([`crate::snapshot`]).
    #[serde(with = "crate::codec::bytes")]
    pub body: Vec<u8>,
}

/// A snapshot's fields around its body ([`crate::codec::encode_snapshot_into`] writes them
/// with a borrowed body).
#[derive(Clone, Copy, PartialEq, Eq, Debug, Serialize)]
pub struct SnapshotHeader {
    /// [`SnapshotMessage::tick`].
    pub tick: Tick,
    /// [`SnapshotMessage::baseline`].
    pub baseline: Option<Tick>,
    /// [`SnapshotMessage::last_input_seq`].
    pub last_input_seq: Option<u32>,
    /// [`SnapshotMessage::inputs_late`].
    pub inputs_late: u32,
    /// [`SnapshotMessage::input_margin`].
    pub input_margin: Option<i16>,
}

impl SnapshotMessage {
    /// Its fields but the body.
    #[must_use]
    pub fn header(&self) -> SnapshotHeader {
        SnapshotHeader {
            tick: self.tick,
            baseline: self.baseline,
            last_input_seq: self.last_input_seq,
            inputs_late: self.inputs_late,
            input_margin: self.input_margin,
        }
    }
}

/// Something that happened in the room, whatever the game, delivered reliably. The game's own
/// events travel as [`ServerMessage::GameEvent`].
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum RoomEvent {
    /// A player joined (or came back).
    Joined {
        /// Their client id.
        client: ClientId,
        /// Their entity.
        entity: NetId,
        /// Their name.
        name: String,
    },
    /// A player left.
    Left {
        /// Their entity.
        entity: NetId,
        /// Their name.
        name: String,
    },
}

/// Why the server ends a session. Each maps to a WebSocket close code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub enum DisconnectReason {
    /// The server is shutting down (1001).
    ServerShutdown,
    /// The room closed (1001).
    RoomClosed,
    /// A message could not be decoded or broke the protocol (1002).
    ProtocolError,
    /// A message was too large (1009).
    MessageTooLarge,
    /// Too many messages or bytes (1008).
    RateLimited,
    /// The client could not keep up with reliable messages (1008).
    TooSlow,
    /// No message or pong within the timeout (1001).
    Timeout,
    /// The same player resumed on another connection (1000).
    Replaced,
    /// The client asked to leave (1000).
    Left,
    /// No room could take the player (1013, try again later).
    RoomFull,
    /// The server failed (1011).
    Internal,
    /// The room moved to another instance (1012, service restart: a rolling restart): the
    /// `Disconnect` message's text is the WebSocket URL it goes on at, and the player resumes
    /// there with its resume token, as the same entity.
    Moved,
}

impl DisconnectReason {
    /// Every reason, in declaration order.
    pub const ALL: [DisconnectReason; 12] = [
        DisconnectReason::ServerShutdown,
        DisconnectReason::RoomClosed,
        DisconnectReason::ProtocolError,
        DisconnectReason::MessageTooLarge,
        DisconnectReason::RateLimited,
        DisconnectReason::TooSlow,
        DisconnectReason::Timeout,
        DisconnectReason::Replaced,
        DisconnectReason::Left,
        DisconnectReason::RoomFull,
        DisconnectReason::Internal,
        DisconnectReason::Moved,
    ];

    /// The WebSocket close code for this reason (RFC 6455 §7.4.1).
    #[must_use]
    pub fn close_code(self) -> u16 {
        match self {
            DisconnectReason::ServerShutdown
            | DisconnectReason::RoomClosed
            | DisconnectReason::Timeout => 1001,
            DisconnectReason::ProtocolError => 1002,
            DisconnectReason::MessageTooLarge => 1009,
            DisconnectReason::RateLimited | DisconnectReason::TooSlow => 1008,
            DisconnectReason::Replaced | DisconnectReason::Left => 1000,
            DisconnectReason::RoomFull => 1013,
            DisconnectReason::Internal => 1011,
            DisconnectReason::Moved => 1012,
        }
    }

    /// A stable lower-case label (metrics, logs).
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            DisconnectReason::ServerShutdown => "server_shutdown",
            DisconnectReason::RoomClosed => "room_closed",
            DisconnectReason::ProtocolError => "protocol_error",
            DisconnectReason::MessageTooLarge => "message_too_large",
            DisconnectReason::RateLimited => "rate_limited",
            DisconnectReason::TooSlow => "too_slow",
            DisconnectReason::Timeout => "timeout",
            DisconnectReason::Replaced => "replaced",
            DisconnectReason::Left => "left",
            DisconnectReason::RoomFull => "room_full",
            DisconnectReason::Internal => "internal",
            DisconnectReason::Moved => "moved",
        }
    }
}

/// Everything the server can say.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub enum ServerMessage {
    /// The session is live; snapshots follow.
    Welcome(Welcome),
    /// The world as this client sees it.
    Snapshot(SnapshotMessage),
    /// The answer to [`ClientMessage::Ping`].
    Pong {
        /// The ping's id.
        id: u32,
        /// The ping's client time, echoed.
        client_time_us: u64,
        /// The server tick when answered.
        tick: Tick,
    },
    /// A chat line, attributed by the server.
    Chat {
        /// The sender's entity.
        from: NetId,
        /// The sender's name.
        name: String,
        /// The text (control characters stripped).
        text: String,
    },
    /// A room event, delivered reliably.
    Event(RoomEvent),
    /// A game event ([`crate::game::Game::Event`], encoded by
    /// [`crate::codec::encode_game_event`]), delivered reliably.
    GameEvent {
        /// The encoded event.
        #[serde(with = "crate::codec::bytes")]
        body: Vec<u8>,
    },
    /// The server is closing the session; the transport closes right after.
    Disconnect {
        /// Why.
        reason: DisconnectReason,
        /// For humans.
        message: String,
    },
}
