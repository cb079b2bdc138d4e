//! The snapshot format: a full snapshot, or a delta against a baseline the client acknowledged.
//!
//! A [`ReplicatedState`] is what one side knows of the replicated world at one tick: entities in
//! ascending [`NetId`] order, each with a presence mask and a row of quantized fields (absent
//! components' fields are zero, so equal states compare equal).
//!
//! The body is bit-packed with [`crate::bits`] and travels inside the bincode envelope
//! ([`crate::protocol::SnapshotMessage::body`]). It is one list of entries in ascending id order,
//! ended by a zero gap:
//!
//! ```text
//! entry   := var(id - previous_id) kind payload      (previous_id starts at -1; 0 ends the list)
//! kind    := "0" updated | "10" spawned | "11" despawned   (a full snapshot has no kind: all spawned)
//! spawned := mask fields of each present component, absolute
//! updated := touched-mask, then per touched component:
//!              [removed bit, if the baseline had it] then, unless removed,
//!              absolute fields (newly added) or [a changed bit per field, if more than one]
//!              and a delta per changed field
//! mask    := "1" same as the previous entry's of this kind | "0" and one bit per component
//! ```
//!
//! A delta's baseline is the acknowledged state moved on by the motion the room estimated for
//! each entity ([`crate::motion::predicted`]): both sides take the delta against that
//! prediction, so an entity that moves as predicted is "unchanged" too.
//!
//! So an unchanged entity costs nothing, and a moving entity whose only change is its position
//! costs an id gap (usually 4 bits), the kind bit, a same-mask bit, two field bits and two small
//! deltas. Encoding and decoding are pure functions; decoding checks everything and never panics.

mod format;
mod prepared;

use thiserror::Error;

pub(crate) use format::entry_bits;
pub use format::{decode_delta, decode_full, delta_bits_by_component, encode_delta, encode_full};
pub use prepared::{
    PreparedDelta, PreparedState, View, encode_delta_prepared, encode_full_prepared,
};

pub use crate::state::{EntityView, ReplicatedState, StateError};

use crate::bits::EndOfBits;
use crate::ids::NetId;

/// A decoder refuses a snapshot that would hold more entities than this.
pub const MAX_SNAPSHOT_ENTITIES: usize = 65_536;

/// Why a snapshot body could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum SnapshotError {
    /// The body ended in the middle of an entry.
    #[error("snapshot body truncated")]
    Truncated,
    /// An entity id went past `u32::MAX`.
    #[error("entity id overflow")]
    IdOverflow,
    /// A delta updates or despawns an entity the baseline does not have.
    #[error("entity {0} is not in the baseline")]
    NotInBaseline(NetId),
    /// A delta spawns an entity the baseline already has.
    #[error("entity {0} is already in the baseline")]
    AlreadyInBaseline(NetId),
    /// More than [`MAX_SNAPSHOT_ENTITIES`] entities.
    #[error("too many entities")]
    TooManyEntities,
    /// The baseline's rows do not match the registry.
    #[error("baseline does not match the registry")]
    BaselineMismatch,
    /// Bits are left after the end of the entry list.
    #[error("trailing data after the snapshot body")]
    TrailingData,
}

impl From<EndOfBits> for SnapshotError {
    fn from(_: EndOfBits) -> Self {
        SnapshotError::Truncated
    }
}

#[cfg(test)]
mod tests;
