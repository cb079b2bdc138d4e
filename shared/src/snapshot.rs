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
//! So an unchanged entity costs nothing, and a moving entity whose only change is its position
//! costs an id gap (usually 4 bits), the kind bit, a same-mask bit, two field bits and two small
//! deltas. Encoding and decoding are pure functions; decoding checks everything and never panics.

use thiserror::Error;

use crate::bits::{BitReader, BitRuns, BitSink, BitWriter, EndOfBits};
use crate::ids::NetId;
use crate::registry::{FieldKind, ReplicationRegistry};

/// A decoder refuses a snapshot that would hold more entities than this.
pub const MAX_SNAPSHOT_ENTITIES: usize = 65_536;

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
    stride: usize,
    ids: Vec<NetId>,
    masks: Vec<u32>,
    fields: Vec<i32>,
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
    /// An empty state whose rows hold `stride` fields ([`ReplicationRegistry::stride`]).
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
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Number of entities.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no entities.
    #[must_use]
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
    pub fn entity(&self, i: usize) -> EntityView<'_> {
        EntityView {
            id: self.ids[i],
            mask: self.masks[i],
            fields: &self.fields[i * self.stride..(i + 1) * self.stride],
        }
    }

    /// The entity with id `id`.
    #[must_use]
    pub fn get(&self, id: NetId) -> Option<EntityView<'_>> {
        self.ids.binary_search(&id).ok().map(|i| self.entity(i))
    }

    /// Every entity, ascending by id.
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

const KIND_UPDATED: u32 = 0b0;
const KIND_SPAWNED: u32 = 0b01; // "10" read low bit first
const KIND_DESPAWNED: u32 = 0b11;

/// Writes a mask, or one bit when it equals `previous` (then updates `previous`).
fn write_mask(w: &mut impl BitSink, mask: u32, previous: &mut u32, n_components: u32) {
    if mask == *previous {
        w.write_bool(true);
    } else {
        w.write_bool(false);
        w.write_bits(mask, n_components);
        *previous = mask;
    }
}

fn read_mask(
    r: &mut BitReader<'_>,
    previous: &mut u32,
    registry: &ReplicationRegistry,
) -> Result<u32, SnapshotError> {
    if r.read_bool()? {
        return Ok(*previous);
    }
    // Exactly one bit per registered component, so no unknown component can be named.
    let mask = r.read_bits(registry.len() as u32)?;
    *previous = mask;
    Ok(mask)
}

fn write_absolute(w: &mut impl BitSink, kind: FieldKind, value: i32) {
    match kind {
        FieldKind::Int => w.write_signed_var(value),
        FieldKind::Angle => w.write_bits(value as u32 & 0xffff, 16),
    }
}

fn read_absolute(r: &mut BitReader<'_>, kind: FieldKind) -> Result<i32, SnapshotError> {
    Ok(match kind {
        FieldKind::Int => r.read_signed_var()?,
        FieldKind::Angle => r.read_bits(16)? as i32,
    })
}

fn write_delta(w: &mut impl BitSink, kind: FieldKind, old: i32, new: i32) {
    match kind {
        FieldKind::Int => w.write_signed_var(new.wrapping_sub(old)),
        FieldKind::Angle => w.write_signed_var(i32::from(new.wrapping_sub(old) as i16)),
    }
}

fn read_delta(r: &mut BitReader<'_>, kind: FieldKind, old: i32) -> Result<i32, SnapshotError> {
    let d = r.read_signed_var()?;
    Ok(match kind {
        FieldKind::Int => old.wrapping_add(d),
        FieldKind::Angle => old.wrapping_add(d) & 0xffff,
    })
}

/// Writes every present component's fields in full.
fn write_entity_fields(w: &mut impl BitSink, registry: &ReplicationRegistry, e: EntityView<'_>) {
    for (idx, offset, fields) in registry.layout() {
        if e.mask & (1 << idx.0) != 0 {
            for (i, f) in fields.iter().enumerate() {
                write_absolute(w, f.kind, e.fields[offset + i]);
            }
        }
    }
}

fn read_entity_fields(
    r: &mut BitReader<'_>,
    registry: &ReplicationRegistry,
    mask: u32,
    row: &mut [i32],
) -> Result<(), SnapshotError> {
    row.fill(0);
    for (idx, offset, fields) in registry.layout() {
        if mask & (1 << idx.0) != 0 {
            for (i, f) in fields.iter().enumerate() {
                row[offset + i] = read_absolute(r, f.kind)?;
            }
        }
    }
    Ok(())
}

/// The components that differ between `old` and `new` (added, removed or with changed fields).
fn touched_mask(registry: &ReplicationRegistry, old: EntityView<'_>, new: EntityView<'_>) -> u32 {
    let mut touched = 0u32;
    for (idx, offset, fields) in registry.layout() {
        let bit = 1u32 << idx.0;
        let (had, has) = (old.mask & bit != 0, new.mask & bit != 0);
        let range = offset..offset + fields.len();
        if had != has || (has && old.fields[range.clone()] != new.fields[range]) {
            touched |= bit;
        }
    }
    touched
}

/// Writes the changes from `old` to `new` (same id, different content).
fn write_update(
    w: &mut impl BitSink,
    registry: &ReplicationRegistry,
    old: EntityView<'_>,
    new: EntityView<'_>,
    previous_touched: &mut u32,
) {
    let touched = touched_mask(registry, old, new);
    write_mask(w, touched, previous_touched, registry.len() as u32);
    write_update_fields(w, registry, old, new, touched);
}

/// The part of an update after its touched-mask: it depends only on `old` and `new`.
fn write_update_fields(
    w: &mut impl BitSink,
    registry: &ReplicationRegistry,
    old: EntityView<'_>,
    new: EntityView<'_>,
    touched: u32,
) {
    for (idx, offset, fields) in registry.layout() {
        let bit = 1u32 << idx.0;
        if touched & bit == 0 {
            continue;
        }
        let has = new.mask & bit != 0;
        if old.mask & bit == 0 {
            // Newly added: absolute fields (no removed bit, it cannot have been removed).
            for (i, f) in fields.iter().enumerate() {
                write_absolute(w, f.kind, new.fields[offset + i]);
            }
            continue;
        }
        w.write_bool(!has);
        if !has {
            continue;
        }
        let multi = fields.len() > 1;
        for (i, f) in fields.iter().enumerate() {
            let (a, b) = (old.fields[offset + i], new.fields[offset + i]);
            if multi {
                w.write_bool(a != b);
            }
            if a != b || !multi {
                write_delta(w, f.kind, a, b);
            }
        }
    }
}

fn read_update(
    r: &mut BitReader<'_>,
    registry: &ReplicationRegistry,
    old: EntityView<'_>,
    previous_touched: &mut u32,
    row: &mut [i32],
) -> Result<u32, SnapshotError> {
    let touched = read_mask(r, previous_touched, registry)?;
    row.copy_from_slice(old.fields);
    let mut mask = old.mask;
    for (idx, offset, fields) in registry.layout() {
        let bit = 1u32 << idx.0;
        if touched & bit == 0 {
            continue;
        }
        let slots = &mut row[offset..offset + fields.len()];
        if old.mask & bit == 0 {
            for (slot, f) in slots.iter_mut().zip(fields) {
                *slot = read_absolute(r, f.kind)?;
            }
            mask |= bit;
            continue;
        }
        if r.read_bool()? {
            slots.fill(0);
            mask &= !bit;
            continue;
        }
        let multi = fields.len() > 1;
        for (slot, f) in slots.iter_mut().zip(fields) {
            if !multi || r.read_bool()? {
                *slot = read_delta(r, f.kind, *slot)?;
            }
        }
    }
    Ok(mask)
}

/// Writes the gap from the previous entry's id, which is never 0 (0 ends the list).
fn write_gap(w: &mut BitWriter, previous: &mut Option<NetId>, id: NetId) {
    let gap = match *previous {
        None => id.0.wrapping_add(1),
        Some(p) => id.0 - p.0,
    };
    // An id of u32::MAX as the first entry would need a gap of 2^32; ids never get there
    // (the server allocates them upward from 1), and it is refused in debug builds.
    debug_assert!(gap != 0, "entity id u32::MAX cannot be sent");
    w.write_var(gap);
    *previous = Some(id);
}

fn read_gap(
    r: &mut BitReader<'_>,
    previous: &mut Option<NetId>,
) -> Result<Option<NetId>, SnapshotError> {
    let gap = r.read_var()?;
    if gap == 0 {
        return Ok(None);
    }
    let id = match *previous {
        None => gap - 1,
        Some(p) => p.0.checked_add(gap).ok_or(SnapshotError::IdOverflow)?,
    };
    *previous = Some(NetId(id));
    Ok(Some(NetId(id)))
}

/// Encodes `current` in full (for a client with no usable baseline), appending to `w`.
pub fn encode_full<'a>(
    registry: &ReplicationRegistry,
    current: impl IntoIterator<Item = EntityView<'a>>,
    w: &mut BitWriter,
) {
    let n_components = registry.len() as u32;
    let mut previous_id = None;
    let mut previous_mask = 0;
    for e in current {
        write_gap(w, &mut previous_id, e.id);
        write_mask(w, e.mask, &mut previous_mask, n_components);
        write_entity_fields(w, registry, e);
    }
    w.write_var(0);
}

/// Encodes what changed from `baseline` to `current` (both ascending by id), appending to `w`.
/// Unchanged entities cost nothing.
pub fn encode_delta<'a, 'b>(
    registry: &ReplicationRegistry,
    baseline: impl IntoIterator<Item = EntityView<'a>>,
    current: impl IntoIterator<Item = EntityView<'b>>,
    w: &mut BitWriter,
) {
    let n_components = registry.len() as u32;
    let mut previous_id = None;
    let mut previous_spawn_mask = 0;
    let mut previous_touched = 0;
    let mut base = baseline.into_iter().peekable();
    let mut cur = current.into_iter().peekable();
    loop {
        match (base.peek().copied(), cur.peek().copied()) {
            (None, None) => break,
            (Some(b), c) if c.is_none_or(|c| b.id < c.id) => {
                write_gap(w, &mut previous_id, b.id);
                w.write_bits(KIND_DESPAWNED, 2);
                base.next();
            }
            (b, Some(c)) if b.is_none_or(|b| c.id < b.id) => {
                write_gap(w, &mut previous_id, c.id);
                w.write_bits(KIND_SPAWNED, 2);
                write_mask(w, c.mask, &mut previous_spawn_mask, n_components);
                write_entity_fields(w, registry, c);
                cur.next();
            }
            (Some(b), Some(c)) => {
                if b.mask != c.mask || b.fields != c.fields {
                    write_gap(w, &mut previous_id, c.id);
                    w.write_bits(KIND_UPDATED, 1);
                    write_update(w, registry, b, c, &mut previous_touched);
                }
                base.next();
                cur.next();
            }
            // The guards above cover every remaining case.
            (None, Some(_)) | (Some(_), None) => unreachable!("covered by the guards"),
        }
    }
    w.write_var(0);
}

fn finish(r: &BitReader<'_>) -> Result<(), SnapshotError> {
    if r.remaining_bits() >= 8 {
        return Err(SnapshotError::TrailingData);
    }
    Ok(())
}

/// Decodes a full snapshot body.
pub fn decode_full(
    registry: &ReplicationRegistry,
    body: &[u8],
) -> Result<ReplicatedState, SnapshotError> {
    let mut r = BitReader::new(body);
    let mut out = ReplicatedState::new(registry.stride());
    let mut row = vec![0i32; registry.stride()];
    let mut previous_id = None;
    let mut previous_mask = 0;
    while let Some(id) = read_gap(&mut r, &mut previous_id)? {
        if out.len() == MAX_SNAPSHOT_ENTITIES {
            return Err(SnapshotError::TooManyEntities);
        }
        let mask = read_mask(&mut r, &mut previous_mask, registry)?;
        read_entity_fields(&mut r, registry, mask, &mut row)?;
        out.push(id, mask, &row).map_err(|_| SnapshotError::IdOverflow)?;
    }
    finish(&r)?;
    Ok(out)
}

/// Decodes a delta body against `baseline` (the state the server encoded it against).
pub fn decode_delta(
    registry: &ReplicationRegistry,
    baseline: &ReplicatedState,
    body: &[u8],
) -> Result<ReplicatedState, SnapshotError> {
    if baseline.stride() != registry.stride() {
        return Err(SnapshotError::BaselineMismatch);
    }
    let mut r = BitReader::new(body);
    let mut out = ReplicatedState::with_capacity(registry.stride(), baseline.len());
    let mut row = vec![0i32; registry.stride()];
    let mut previous_id = None;
    let mut previous_spawn_mask = 0;
    let mut previous_touched = 0;
    let mut base_idx = 0;
    let push = |out: &mut ReplicatedState, id, mask, row: &[i32]| {
        if out.len() == MAX_SNAPSHOT_ENTITIES {
            return Err(SnapshotError::TooManyEntities);
        }
        out.push(id, mask, row).map_err(|_| SnapshotError::IdOverflow)
    };
    while let Some(id) = read_gap(&mut r, &mut previous_id)? {
        // Baseline entities before this entry are unchanged.
        while base_idx < baseline.len() && baseline.entity(base_idx).id < id {
            let e = baseline.entity(base_idx);
            push(&mut out, e.id, e.mask, e.fields)?;
            base_idx += 1;
        }
        let in_base = base_idx < baseline.len() && baseline.entity(base_idx).id == id;
        if !r.read_bool()? {
            // Updated.
            if !in_base {
                return Err(SnapshotError::NotInBaseline(id));
            }
            let old = baseline.entity(base_idx);
            let mask = read_update(&mut r, registry, old, &mut previous_touched, &mut row)?;
            push(&mut out, id, mask, &row)?;
            base_idx += 1;
        } else if !r.read_bool()? {
            // Spawned.
            if in_base {
                return Err(SnapshotError::AlreadyInBaseline(id));
            }
            let mask = read_mask(&mut r, &mut previous_spawn_mask, registry)?;
            read_entity_fields(&mut r, registry, mask, &mut row)?;
            push(&mut out, id, mask, &row)?;
        } else {
            // Despawned.
            if !in_base {
                return Err(SnapshotError::NotInBaseline(id));
            }
            base_idx += 1;
        }
    }
    for i in base_idx..baseline.len() {
        let e = baseline.entity(i);
        push(&mut out, e.id, e.mask, e.fields)?;
    }
    finish(&r)?;
    Ok(out)
}

/// Which entities of one [`ReplicatedState`] a client sees: a set of positions in the state
/// (not ids), as a bitset. Equal views of the same state compare and hash equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct View {
    words: Vec<u64>,
}

impl View {
    /// An empty view of a state of `n` entities.
    #[must_use]
    pub fn empty(n: usize) -> View {
        View { words: vec![0; n.div_ceil(64)] }
    }

    /// A view of every entity of a state of `n` entities.
    #[must_use]
    pub fn all(n: usize) -> View {
        let mut v = View { words: vec![u64::MAX; n.div_ceil(64)] };
        if !n.is_multiple_of(64)
            && let Some(last) = v.words.last_mut()
        {
            *last = (1u64 << (n % 64)) - 1;
        }
        v
    }

    /// A view from its words: bit `i % 64` of word `i / 64` is position `i`.
    #[must_use]
    pub fn from_words(words: Vec<u64>) -> View {
        View { words }
    }

    /// Adds position `i` (which must be within the state the view was made for).
    pub fn insert(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    /// Whether position `i` is in the view (false past its end).
    #[inline]
    #[must_use]
    pub fn contains(&self, i: usize) -> bool {
        self.words.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 != 0)
    }

    /// The positions in the view, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(wi * 64 + bit)
            })
        })
    }

    /// The first position at or after `from` that is not in the view, or `len` if there is none
    /// before `len`.
    #[must_use]
    pub fn next_missing(&self, from: usize, len: usize) -> usize {
        let mut wi = from / 64;
        let mut missing = !self.words.get(wi).copied().unwrap_or(0) & (u64::MAX << (from % 64));
        loop {
            if missing != 0 {
                return (wi * 64 + missing.trailing_zeros() as usize).min(len);
            }
            wi += 1;
            if wi * 64 >= len {
                return len;
            }
            missing = !self.words.get(wi).copied().unwrap_or(0);
        }
    }

    /// The first position at or after `from` that is in the view, or `len` when none is
    /// before `len`.
    #[must_use]
    pub fn next_present(&self, from: usize, len: usize) -> usize {
        let mut wi = from / 64;
        let mut present = self.words.get(wi).copied().unwrap_or(0) & (u64::MAX << (from % 64));
        loop {
            if present != 0 {
                return (wi * 64 + present.trailing_zeros() as usize).min(len);
            }
            wi += 1;
            if wi * 64 >= len {
                return len;
            }
            present = self.words.get(wi).copied().unwrap_or(0);
        }
    }

    /// The ids of `state` in the view, ascending.
    #[must_use]
    pub fn ids(&self, state: &ReplicatedState) -> Vec<NetId> {
        self.iter().filter_map(|i| state.ids.get(i).copied()).collect()
    }
}

/// A run of prepared bits: `(start, len)` in a [`BitRuns`].
type Span = (u32, u32);

/// Every entity of one state with its fields written in full, once, so that every client's full
/// snapshot or spawn copies the bits instead of encoding them again. The server prepares it once
/// per snapshot tick.
#[derive(Debug, Default)]
pub struct PreparedState {
    runs: BitRuns,
    spans: Vec<Span>,
}

impl PreparedState {
    /// Writes the fields of every entity of `state`.
    #[must_use]
    pub fn new(registry: &ReplicationRegistry, state: &ReplicatedState) -> PreparedState {
        let mut runs = BitRuns::default();
        let mut spans = Vec::with_capacity(state.len());
        for e in state.iter() {
            let start = runs.bit_len();
            write_entity_fields(&mut runs, registry, e);
            spans.push((start as u32, (runs.bit_len() - start) as u32));
        }
        PreparedState { runs, spans }
    }
}

/// No position: the entity is not in that state.
const ABSENT: u32 = u32::MAX;

/// One id of the union of a baseline state and the current state.
#[derive(Clone, Copy, Debug)]
struct DeltaStep {
    id: NetId,
    /// Position in the baseline state, or [`ABSENT`].
    base: u32,
    /// Position in the current state, or [`ABSENT`].
    cur: u32,
    /// Components touched between the two (0: unchanged, or not in both).
    touched: u32,
    /// The update's bits after its touched-mask.
    span: Span,
}

/// The changes from one baseline state to the current state, worked out once for every client
/// that acknowledged that baseline: the union of their ids with, for each entity in both, the
/// touched-mask and the update's bits. [`encode_delta_prepared`] then only walks it with a
/// client's two views.
#[derive(Debug, Default)]
pub struct PreparedDelta {
    steps: Vec<DeltaStep>,
    runs: BitRuns,
    /// The whole delta as a client that sees every entity at both ticks gets it.
    stream: BitRuns,
    /// Where step `k`'s entry starts in `stream` and the encoder's context before it
    /// (`steps.len() + 1` of them: the last is the end of the list).
    marks: Vec<(u32, Context)>,
    /// Where step `k`'s entry continues in `stream` after its id gap: the rest depends on the
    /// context's masks only, so a client whose previous entry differs can copy it.
    after_gap: Vec<u32>,
    /// For each step `k`: how many baseline and current entities come before it, that is the
    /// position of the next baseline and current entity from step `k` on.
    next_pos: Vec<(u32, u32)>,
    /// The step of each baseline position, then of each current position.
    base_step: Vec<u32>,
    cur_step: Vec<u32>,
}

/// What an entry's bits depend on besides the entity: the previous entry's id and the masks a
/// one-bit "same as before" refers to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Context {
    previous_id: Option<NetId>,
    previous_touched: u32,
    previous_spawn_mask: u32,
}

/// What a client's body says about one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Nothing,
    Update,
    Despawn,
    Spawn,
}

impl DeltaStep {
    fn action(&self, in_base: bool, in_cur: bool) -> Action {
        match (in_base, in_cur) {
            (true, true) if self.touched != 0 => Action::Update,
            (true, true) | (false, false) => Action::Nothing,
            (true, false) => Action::Despawn,
            (false, true) => Action::Spawn,
        }
    }
}

impl PreparedDelta {
    /// Compares `baseline` with `current` (both whole states, ascending by id).
    #[must_use]
    pub fn new(
        registry: &ReplicationRegistry,
        baseline: &ReplicatedState,
        current: &ReplicatedState,
    ) -> PreparedDelta {
        let mut steps = Vec::with_capacity(current.len().max(baseline.len()));
        let mut runs = BitRuns::default();
        let (mut bi, mut ci) = (0, 0);
        let none = DeltaStep { id: NetId(0), base: ABSENT, cur: ABSENT, touched: 0, span: (0, 0) };
        while bi < baseline.len() || ci < current.len() {
            let b = (bi < baseline.len()).then(|| baseline.ids[bi]);
            let c = (ci < current.len()).then(|| current.ids[ci]);
            match (b, c) {
                (Some(b), c) if c.is_none_or(|c| b < c) => {
                    steps.push(DeltaStep { id: b, base: bi as u32, ..none });
                    bi += 1;
                }
                (b, Some(c)) if b.is_none_or(|b| c < b) => {
                    steps.push(DeltaStep { id: c, cur: ci as u32, ..none });
                    ci += 1;
                }
                (Some(id), Some(_)) => {
                    let (old, new) = (baseline.entity(bi), current.entity(ci));
                    let mut step = DeltaStep { id, base: bi as u32, cur: ci as u32, ..none };
                    if old.mask != new.mask || old.fields != new.fields {
                        step.touched = touched_mask(registry, old, new);
                        let start = runs.bit_len();
                        write_update_fields(&mut runs, registry, old, new, step.touched);
                        step.span = (start as u32, (runs.bit_len() - start) as u32);
                    }
                    steps.push(step);
                    bi += 1;
                    ci += 1;
                }
                // The guards above cover every remaining case.
                (None, Some(_)) | (Some(_), None) | (None, None) => {
                    unreachable!("covered by the guards")
                }
            }
        }
        let n_components = registry.len() as u32;
        let mut stream = BitRuns::default();
        let mut marks = Vec::with_capacity(steps.len() + 1);
        let mut ctx = Context::default();
        let mut after_gap = Vec::with_capacity(steps.len());
        for step in &steps {
            marks.push((stream.bit_len() as u32, ctx));
            after_gap.push(
                (stream.bit_len() as u32) + crate::bits::var_len(gap_of(ctx.previous_id, step.id)),
            );
            let action = step.action(step.base != ABSENT, step.cur != ABSENT);
            write_action(&mut stream, &mut ctx, n_components, step, action, current, &runs, |w| {
                write_entity_fields(w, registry, current.entity(step.cur as usize));
            });
        }
        marks.push((stream.bit_len() as u32, ctx));
        let mut next_pos = Vec::with_capacity(steps.len() + 1);
        let mut base_step = Vec::with_capacity(baseline.len());
        let mut cur_step = Vec::with_capacity(current.len());
        for (k, step) in steps.iter().enumerate() {
            next_pos.push((base_step.len() as u32, cur_step.len() as u32));
            if step.base != ABSENT {
                base_step.push(k as u32);
            }
            if step.cur != ABSENT {
                cur_step.push(k as u32);
            }
        }
        next_pos.push((base_step.len() as u32, cur_step.len() as u32));
        PreparedDelta { steps, runs, stream, marks, after_gap, next_pos, base_step, cur_step }
    }
}

/// The id gap an entry for `id` writes after an entry for `previous` (or first).
fn gap_of(previous: Option<NetId>, id: NetId) -> u32 {
    match previous {
        None => id.0.wrapping_add(1),
        Some(p) => id.0 - p.0,
    }
}

/// Writes one step's entry for `action`; `spawn_fields` writes a spawned entity's fields.
#[expect(clippy::too_many_arguments, reason = "one call site per encoder, all plain borrows")]
fn write_action<W: BitSink>(
    w: &mut W,
    ctx: &mut Context,
    n_components: u32,
    step: &DeltaStep,
    action: Action,
    current: &ReplicatedState,
    update_runs: &BitRuns,
    spawn_fields: impl FnOnce(&mut W),
) {
    let gap = |w: &mut W, ctx: &mut Context| {
        w.write_var(gap_of(ctx.previous_id, step.id));
        ctx.previous_id = Some(step.id);
    };
    match action {
        Action::Nothing => {}
        Action::Update => {
            gap(w, ctx);
            w.write_bits(KIND_UPDATED, 1);
            write_mask(w, step.touched, &mut ctx.previous_touched, n_components);
            let (start, len) = step.span;
            for pos in (start..start + len).step_by(32) {
                let take = (start + len - pos).min(32);
                w.write_bits(update_runs.get(pos as usize, take), take);
            }
        }
        Action::Despawn => {
            gap(w, ctx);
            w.write_bits(KIND_DESPAWNED, 2);
        }
        Action::Spawn => {
            gap(w, ctx);
            w.write_bits(KIND_SPAWNED, 2);
            let mask = current.masks[step.cur as usize];
            write_mask(w, mask, &mut ctx.previous_spawn_mask, n_components);
            spawn_fields(w);
        }
    }
}

/// Encodes the entities of `current` in `view` in full; the same bits as [`encode_full`] of
/// those entities. `prepared` is `current` prepared.
pub fn encode_full_prepared(
    registry: &ReplicationRegistry,
    current: &ReplicatedState,
    prepared: &PreparedState,
    view: &View,
    w: &mut BitWriter,
) {
    let n_components = registry.len() as u32;
    let mut previous_id = None;
    let mut previous_mask = 0;
    for i in view.iter().take_while(|&i| i < current.len()) {
        write_gap(w, &mut previous_id, current.ids[i]);
        write_mask(w, current.masks[i], &mut previous_mask, n_components);
        let (start, len) = prepared.spans[i];
        w.write_run(&prepared.runs, start as usize, len as usize);
    }
    w.write_var(0);
}

/// Encodes the delta from the entities of the baseline in `base_view` to the entities of
/// `current` in `view`: the same bits as [`encode_delta`] of those subsets. `delta` was
/// prepared from the baseline state to `current`, `prepared` from `current`.
pub fn encode_delta_prepared(
    registry: &ReplicationRegistry,
    current: &ReplicatedState,
    prepared: &PreparedState,
    delta: &PreparedDelta,
    base_view: &View,
    view: &View,
    w: &mut BitWriter,
) {
    // Wherever this client's entries and context match the see-everything stream, its bits are
    // that stream's: copy them in runs, and write entries one by one only where they differ.
    let n_components = registry.len() as u32;
    let mut ctx = Context::default();
    let mut in_sync = true;
    let mut run_start: Option<u32> = None;
    let n_steps = delta.steps.len();
    let (base_len, cur_len) = (delta.base_step.len(), delta.cur_step.len());
    let mut k = 0;
    // The first step at or after `k` whose baseline or current entity is at view position
    // `b` / `c` (or past the end).
    let step_of = |b: usize, c: usize| {
        let end = n_steps as u32;
        delta
            .base_step
            .get(b)
            .copied()
            .unwrap_or(end)
            .min(delta.cur_step.get(c).copied().unwrap_or(end)) as usize
    };
    while k < n_steps {
        if !in_sync {
            // Steps with no entity in either view write nothing and leave the context alone:
            // skip to the next step this client has an entity in.
            let (b, c) = delta.next_pos[k];
            let event = step_of(
                base_view.next_present(b as usize, base_len),
                view.next_present(c as usize, cur_len),
            );
            if event > k {
                k = event;
                continue;
            }
        }
        if in_sync {
            // Every step before the next entity missing from a view matches the stream.
            let (b, c) = delta.next_pos[k];
            let event = step_of(
                base_view.next_missing(b as usize, base_len),
                view.next_missing(c as usize, cur_len),
            );
            if event > k {
                if run_start.is_none() && delta.marks[event].0 > delta.marks[k].0 {
                    run_start = Some(delta.marks[k].0);
                }
                k = event;
                continue;
            }
        }
        let step = &delta.steps[k];
        let (has_base, has_cur) = (step.base != ABSENT, step.cur != ABSENT);
        let in_base = has_base && base_view.contains(step.base as usize);
        let in_cur = has_cur && view.contains(step.cur as usize);
        let action = step.action(in_base, in_cur);
        if in_sync && action == step.action(has_base, has_cur) {
            if action != Action::Nothing && run_start.is_none() {
                run_start = Some(delta.marks[k].0);
            }
            k += 1;
            continue;
        }
        if let Some(start) = run_start.take() {
            let end = delta.marks[k].0;
            w.write_run(&delta.stream, start as usize, (end - start) as usize);
            ctx = delta.marks[k].1;
        }
        let (_, stream_ctx) = delta.marks[k];
        if action != Action::Nothing
            && action == step.action(has_base, has_cur)
            && ctx.previous_touched == stream_ctx.previous_touched
            && ctx.previous_spawn_mask == stream_ctx.previous_spawn_mask
        {
            // The stream's entry with this client's id gap: after it, the client's context is
            // the stream's again.
            w.write_var(gap_of(ctx.previous_id, step.id));
            let (from, to) = (delta.after_gap[k], delta.marks[k + 1].0);
            w.write_run(&delta.stream, from as usize, (to - from) as usize);
            ctx = delta.marks[k + 1].1;
            in_sync = true;
            k += 1;
            continue;
        }
        write_action(w, &mut ctx, n_components, step, action, current, &delta.runs, |w| {
            let (start, len) = prepared.spans[step.cur as usize];
            w.write_run(&prepared.runs, start as usize, len as usize);
        });
        in_sync = ctx == delta.marks[k + 1].1;
        k += 1;
    }
    if let Some(start) = run_start.take() {
        let end = delta.marks[delta.steps.len()].0;
        w.write_run(&delta.stream, start as usize, (end - start) as usize);
    }
    w.write_var(0);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::game;

    /// A deterministic state of up to `n` entities: some ids skipped, fields varied by `salt`.
    fn state(reg: &ReplicationRegistry, n: u32, salt: u32) -> ReplicatedState {
        let mut s = ReplicatedState::new(reg.stride());
        let mut row = vec![0i32; reg.stride()];
        for id in 1..=n {
            let h = id.wrapping_mul(2_654_435_761) ^ salt.wrapping_mul(40_503);
            if h.is_multiple_of(7) {
                continue;
            }
            let mask = if h.is_multiple_of(5) { 0b1011 } else { reg.full_mask() };
            for (k, f) in row.iter_mut().enumerate() {
                let changes = (h >> (k % 16)) & 3 == 0;
                *f = (id as i32 * 37 + k as i32) + if changes { (h % 41) as i32 - 20 } else { 0 };
            }
            row[2] &= 0xffff;
            for (idx, offset, fields) in reg.layout() {
                if mask & (1 << idx.0) == 0 {
                    row[offset..offset + fields.len()].fill(0);
                }
            }
            s.push(NetId(id), mask, &row).expect("ascending");
        }
        s
    }

    fn view(n: usize, seed: usize) -> View {
        let mut v = View::empty(n);
        for i in (0..n).filter(|i| !(i * 31 + seed).is_multiple_of(5)) {
            v.insert(i);
        }
        v
    }

    /// `len` positions from `start` (clipped to `n`).
    fn window(n: usize, start: usize, len: usize) -> View {
        let mut v = View::empty(n);
        (start..(start + len).min(n)).for_each(|i| v.insert(i));
        v
    }

    /// One position in `every`.
    fn sparse_few(n: usize, every: usize) -> View {
        let mut v = View::empty(n);
        (0..n).step_by(every).for_each(|i| v.insert(i));
        v
    }

    /// Every position but one in `every`.
    fn sparse(n: usize, every: usize) -> View {
        let mut v = View::empty(n);
        for i in (0..n).filter(|i| !(i + 5).is_multiple_of(every)) {
            v.insert(i);
        }
        v
    }

    #[test]
    fn prepared_encoders_write_the_same_bits_as_the_plain_ones() {
        let reg = game::registry::<crate::games::arena::ArenaGame>();
        for (n, salt) in [(0, 1), (1, 2), (70, 3), (300, 4), (1_000, 5)] {
            let base = state(&reg, n, salt);
            let cur = state(&reg, n + 20, salt + 100);
            let prepared = PreparedState::new(&reg, &cur);
            let delta = PreparedDelta::new(&reg, &base, &cur);
            for (bv, cv) in [
                (View::all(base.len()), View::all(cur.len())),
                (view(base.len(), 1), view(cur.len(), 2)),
                (View::empty(base.len()), view(cur.len(), 3)),
                (view(base.len(), 4), View::empty(cur.len())),
                (sparse(base.len(), 97), sparse(cur.len(), 89)),
                (View::all(base.len()), sparse(cur.len(), 61)),
                // Small views in a big world, contiguous and scattered (a client far from most).
                (window(base.len(), 10, 30), window(cur.len(), 12, 30)),
                (sparse_few(base.len(), 13), sparse_few(cur.len(), 11)),
            ] {
                let (base_sub, cur_sub) = (base.subset(&bv.ids(&base)), cur.subset(&cv.ids(&cur)));
                let mut plain = BitWriter::default();
                encode_delta(&reg, base_sub.iter(), cur_sub.iter(), &mut plain);
                let mut fast = BitWriter::default();
                encode_delta_prepared(&reg, &cur, &prepared, &delta, &bv, &cv, &mut fast);
                let body = fast.finish();
                assert_eq!(body, plain.finish(), "delta, {n} entities");
                assert_eq!(decode_delta(&reg, &base_sub, &body), Ok(cur_sub.clone()));

                let mut plain = BitWriter::default();
                encode_full(&reg, cur_sub.iter(), &mut plain);
                let mut fast = BitWriter::default();
                encode_full_prepared(&reg, &cur, &prepared, &cv, &mut fast);
                assert_eq!(fast.finish(), plain.finish(), "full, {n} entities");
            }
        }
    }

    #[test]
    fn views_hold_what_was_inserted() {
        let mut v = View::empty(130);
        for i in [0, 63, 64, 129] {
            v.insert(i);
        }
        assert_eq!(v.iter().collect::<Vec<_>>(), vec![0, 63, 64, 129]);
        assert!(v.contains(64) && !v.contains(65) && !v.contains(1_000));
        assert_eq!(View::all(130).iter().count(), 130);
        assert_eq!(View::all(128).iter().count(), 128);
        assert_eq!(v.next_missing(0, 130), 1);
        assert_eq!(View::all(130).next_missing(3, 130), 130);
        assert_eq!(View::all(130).next_missing(3, 100), 100);
        assert_eq!(v.next_present(1, 130), 63);
        assert_eq!(v.next_present(65, 130), 129);
        assert_eq!(v.next_present(65, 100), 100);
        assert_eq!(View::empty(130).next_present(0, 130), 130);
    }
}
