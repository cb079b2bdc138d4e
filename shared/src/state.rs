//! What one side knows of the replicated world at one tick: a [`ReplicatedState`] holds
//! entities in ascending [`NetId`] order, each with a presence mask and a row of quantized fields
//! (absent components' fields are zero, so equal states compare equal). The registry captures
//! it from a world ([`crate::registry::ReplicationRegistry::capture`]); the snapshot format
//! ([`crate::snapshot`]) sends it.

use thiserror::Error;

use crate::ids::NetId;

/// One entity of a [`ReplicatedState`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityView<'a> {
    /// Its network id.
    pub id: NetId,
    /// Bit `i` set: component `i` of the registry is present.
    pub mask: u32,
    /// The quantized fields of every registered component (zero where absent).
    pub fields: &'a [i32],
}

/// The replicated, quantized state of a set of entities at one tick.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ReplicatedState {
    pub(crate) stride: usize,
    pub(crate) ids: Vec<NetId>,
    pub(crate) masks: Vec<u32>,
    pub(crate) fields: Vec<i32>,
}

/// A state could not take an entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum StateError {
    /// Ids must be pushed in strictly ascending order.
    #[error("entity {0} is not after the last one")]
    OutOfOrder(NetId),
    /// The row does not have the state's stride.
    #[error("row of {got} fields, expected {expected}")]
    WrongStride {
        /// Fields given.
        got: usize,
        /// The state's stride.
        expected: usize,
    },
}

impl ReplicatedState {
    /// An empty state whose rows hold `stride` fields ([`crate::registry::ReplicationRegistry::stride`]).
    #[must_use]
    pub fn new(stride: usize) -> ReplicatedState {
        ReplicatedState::with_capacity(stride, 0)
    }

    /// An empty state with room for `n` entities.
    #[must_use]
    pub fn with_capacity(stride: usize, n: usize) -> ReplicatedState {
        ReplicatedState {
            stride,
            ids: Vec::with_capacity(n),
            masks: Vec::with_capacity(n),
            fields: Vec::with_capacity(n * stride),
        }
    }

    /// Fields per row.
    #[must_use]
    #[inline]
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Number of entities.
    #[must_use]
    #[inline]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no entities.
    #[must_use]
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Removes every entity, keeping the allocation.
    pub fn clear(&mut self) {
        self.ids.clear();
        self.masks.clear();
        self.fields.clear();
    }

    /// The ids, ascending.
    #[must_use]
    #[inline]
    pub fn ids(&self) -> &[NetId] {
        &self.ids
    }

    /// Appends an entity; its id must be greater than every id already present.
    pub fn push(&mut self, id: NetId, mask: u32, fields: &[i32]) -> Result<(), StateError> {
        if fields.len() != self.stride {
            return Err(StateError::WrongStride { got: fields.len(), expected: self.stride });
        }
        if self.ids.last().is_some_and(|&last| last >= id) {
            return Err(StateError::OutOfOrder(id));
        }
        self.ids.push(id);
        self.masks.push(mask);
        self.fields.extend_from_slice(fields);
        Ok(())
    }

    /// The entity at position `i` (ascending id order).
    #[must_use]
    #[inline]
    pub fn entity(&self, i: usize) -> EntityView<'_> {
        EntityView {
            id: self.ids[i],
            mask: self.masks[i],
            fields: &self.fields[i * self.stride..(i + 1) * self.stride],
        }
    }

    /// The entity with id `id`.
    #[must_use]
    #[inline]
    pub fn get(&self, id: NetId) -> Option<EntityView<'_>> {
        self.ids.binary_search(&id).ok().map(|i| self.entity(i))
    }

    /// Every entity, ascending by id.
    #[inline]
    pub fn iter(&self) -> impl ExactSizeIterator<Item = EntityView<'_>> + Clone + '_ {
        (0..self.ids.len()).map(|i| self.entity(i))
    }

    /// The entities of `self` whose ids are in `ids` (ascending), as a new state.
    #[must_use]
    pub fn subset(&self, ids: &[NetId]) -> ReplicatedState {
        let mut out = ReplicatedState::with_capacity(self.stride, ids.len());
        for e in ids.iter().filter_map(|&id| self.get(id)) {
            // Ascending input ids and matching stride: cannot fail.
            let _ = out.push(e.id, e.mask, e.fields);
        }
        out
    }
}
