//! The client's public types: its settings, the events it reports, the errors it refuses
//! messages with, and its counters.

use thiserror::Error;

#[cfg(doc)]
use super::{Client, MAX_UNACKED_INPUTS, RTT_SMOOTHING};
use super::{DEFAULT_INPUT_REDUNDANCY, DEFAULT_MAX_STORED_STATES};
use crate::codec::CodecError;
use crate::ids::NetId;
use crate::protocol::{DisconnectReason, RoomEvent, Welcome};
use crate::snapshot::SnapshotError;
use crate::tick::Tick;

/// Client settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// Frames repeated per input message (the newest and the ones before it). Clamped to
    /// `1..=MAX_INPUT_FRAMES`; default [`DEFAULT_INPUT_REDUNDANCY`].
    pub input_redundancy: usize,
    /// Decoded states kept as possible delta baselines. Clamped to `1..=MAX_STORED_STATES`;
    /// default [`DEFAULT_MAX_STORED_STATES`].
    pub max_stored_states: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            input_redundancy: DEFAULT_INPUT_REDUNDANCY,
            max_stored_states: DEFAULT_MAX_STORED_STATES,
        }
    }
}

/// Something the driver should know about, from [`Client::poll_event`]; `E` is the game's
/// event type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent<E> {
    /// The server accepted the session.
    Welcomed(Welcome),
    /// A snapshot was decoded; [`Client::latest`] now shows it.
    Snapshot {
        /// Its tick.
        tick: Tick,
        /// Whether it was a full snapshot (not a delta).
        full: bool,
        /// The size of the whole message, in bytes.
        bytes: usize,
    },
    /// A chat line.
    Chat {
        /// The sender's entity.
        from: NetId,
        /// The sender's name.
        name: String,
        /// The text.
        text: String,
    },
    /// A room event (a player joined or left).
    Room(RoomEvent),
    /// A game event.
    Game(E),
    /// The answer to a [`Client::send_ping`].
    Pong {
        /// The ping's id.
        id: u32,
        /// The round trip, in microseconds.
        rtt_us: u64,
    },
    /// The server ended the session.
    Disconnected {
        /// Why.
        reason: DisconnectReason,
        /// For humans.
        message: String,
    },
}

impl<E> ClientEvent<E> {
    /// Whether the event may be dropped when the queue is full (a notification whose content
    /// survives elsewhere, or that a newer one replaces).
    pub(super) fn is_droppable(&self) -> bool {
        matches!(self, ClientEvent::Snapshot { .. } | ClientEvent::Pong { .. })
    }
}

/// Why a server message was refused. The client stays usable after any of them.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ClientError {
    /// The bytes are not a server message.
    #[error(transparent)]
    Codec(#[from] CodecError),
    /// The snapshot body did not decode.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A delta against a tick whose state the client no longer (or never) kept.
    #[error("snapshot baseline {0} is not kept")]
    UnknownBaseline(Tick),
    /// A snapshot before the `Welcome`.
    #[error("snapshot before welcome")]
    NotWelcomed,
    /// The server's room plays another game.
    #[error("the server's room plays {server:?}, this client {client:?}")]
    GameMismatch {
        /// The server's game.
        server: String,
        /// This client's.
        client: &'static str,
    },
    /// The server's game is not this client's build of it: what differs.
    #[error(
        "this client's {game} differs from the server's:\n{}",
        differences.iter().map(|d| format!("  - {d}")).collect::<Vec<_>>().join("\n")
    )]
    SchemaMismatch {
        /// The game.
        game: String,
        /// What differs, one line each ([`crate::schema::GameSchema::diff`]).
        differences: Vec<String>,
    },
    /// The server registered different replicated components.
    #[error("registry fingerprint {server:#x} from the server, {client:#x} here")]
    RegistryMismatch {
        /// The server's fingerprint.
        server: u64,
        /// This client's.
        client: u64,
    },
    /// The server speaks another protocol version.
    #[error("server protocol version {server}, client {client}")]
    ProtocolMismatch {
        /// The server's version.
        server: u16,
        /// This client's ([`crate::protocol::PROTOCOL_VERSION`]).
        client: u16,
    },
}

impl ClientError {
    /// Whether the error is the server's `Welcome` not matching this client (another protocol
    /// version, game, or build of the game): the session cannot be played, and trying again
    /// will not help.
    #[must_use]
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            ClientError::ProtocolMismatch { .. }
                | ClientError::GameMismatch { .. }
                | ClientError::SchemaMismatch { .. }
                | ClientError::RegistryMismatch { .. }
        )
    }
}

/// Counters for diagnostics and tests.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientStats {
    /// Snapshots decoded and applied.
    pub snapshots: u64,
    /// Of those, full snapshots.
    pub full_snapshots: u64,
    /// Bytes handed to [`Client::handle_bytes`].
    pub bytes_received: u64,
    /// Bytes returned by [`Client::poll_transmit`].
    pub bytes_sent: u64,
    /// Messages refused by [`Client::handle_bytes`] (every `Err` it returned).
    pub decode_errors: u64,
    /// Snapshots ignored because a newer (or the same) tick was already applied.
    pub stale_snapshots: u64,
    /// Server messages handled successfully.
    pub messages_received: u64,
    /// Events dropped because the event queue was full.
    pub events_dropped: u64,
    /// Messages dropped from a full transmit queue, plus the ones that failed to encode.
    pub transmits_dropped: u64,
    /// Queued (not yet transmitted) input messages replaced by a newer one that carries their
    /// frames too.
    pub inputs_superseded: u64,
    /// Unacknowledged inputs dropped from the full ring ([`MAX_UNACKED_INPUTS`]).
    pub inputs_dropped: u64,
    /// The newest round-trip sample, in microseconds.
    pub last_rtt_us: Option<u64>,
    /// The smoothed round trip ([`RTT_SMOOTHING`]), in microseconds.
    pub rtt_us: Option<u64>,
}
