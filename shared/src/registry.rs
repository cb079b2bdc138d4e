//! The replication registry: the one place where a game says which components are replicated
//! and how each one quantizes. The server and every client build the registry with the same
//! calls in the same order; the snapshot codec, the server's capture and the client's reads are
//! driven by it, so a new replicated component needs no change to the codec or the server.
//!
//! A replicated component is a fixed list of integer fields (its quantized form). The codec
//! deltas each field on its own, so only the fields that changed are sent.

use std::any::TypeId;

use bevy_ecs::component::{Component, Mutable};
use bevy_ecs::world::World;
use glam::Vec2;
use thiserror::Error;

use crate::ids::NetId;
use crate::state::{EntityView, ReplicatedState};

/// `#[derive(Replicate)]`: writes a component's [`Replicate`] impl from per-field
/// `#[quantize(...)]` attributes (see the macro's documentation in `tickwire-derive`).
pub use tickwire_derive::Replicate;

/// At most this many replicated component types: a presence mask is a `u32`.
pub const MAX_COMPONENTS: usize = 32;

/// At most this many fields per entity across all components: bounds a state row (4 bytes
/// each), which keeps the server's state ring small.
pub const MAX_FIELDS: usize = 64;

/// How a field is compared and sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FieldKind {
    /// Any `i32`. Sent in full as a zigzag varint, as a delta as the zigzag of the wrapping
    /// difference.
    Int,
    /// A 16-bit angle from [`crate::quantize::angle`], stored as `0..=65535`. Deltas wrap around
    /// the circle, so turning through 0 costs a small delta rather than a full turn.
    Angle,
}

/// One field of a replicated component.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FieldSpec {
    /// The field's name (documentation and the registry fingerprint).
    pub name: &'static str,
    /// How it is compared and sent.
    pub kind: FieldKind,
    /// How the component's value becomes the field, for people (`"u8 in 0..=255"`, `"f32 on
    /// the 1/64 position grid"`; the derive writes it) and the registry fingerprint: two sides
    /// that quantize a field differently do not pass for the same.
    pub quantization: &'static str,
}

impl FieldSpec {
    /// An [`FieldKind::Int`] field.
    #[must_use]
    pub const fn int(name: &'static str) -> FieldSpec {
        FieldSpec { name, kind: FieldKind::Int, quantization: "i32" }
    }

    /// An [`FieldKind::Angle`] field.
    #[must_use]
    pub const fn angle(name: &'static str) -> FieldSpec {
        FieldSpec { name, kind: FieldKind::Angle, quantization: "16-bit angle" }
    }

    /// The field, described as quantized by `how`.
    #[must_use]
    pub const fn quantized(self, how: &'static str) -> FieldSpec {
        FieldSpec { quantization: how, ..self }
    }
}

/// A component that can be replicated: its quantized form is `FIELDS.len()` integers.
///
/// `dequantize(quantize(c))` need not equal `c` (quantization is lossy), but
/// `quantize(dequantize(q)) == q` must hold, so that what the client reconstructs quantizes back
/// to exactly what the server sent.
pub trait Replicate: Component<Mutability = Mutable> + Sized {
    /// A stable name, part of the registry fingerprint.
    const NAME: &'static str;
    /// The quantized fields, in wire order. At least one.
    const FIELDS: &'static [FieldSpec];
    /// Writes the quantized fields into `out` (`out.len() == FIELDS.len()`).
    fn quantize(&self, out: &mut [i32]);
    /// Rebuilds a component from quantized fields (`fields.len() == FIELDS.len()`).
    fn dequantize(fields: &[i32]) -> Self;
}

/// What a game's replicated components are registered with ([`crate::game::Game::replicate`]):
/// the [`ReplicationRegistry`] (the wire layout, on every side) or the engine's set-up of a
/// server world (which adds each component's re-quantizing system). Generic, so a client links
/// none of the server's scheduling code.
pub trait Registrar {
    /// Registers `C` (see [`ReplicationRegistry::register`]).
    ///
    /// # Errors
    ///
    /// See [`ReplicationRegistry::register`].
    fn component<C: Replicate>(&mut self) -> Result<(), RegistryError>;

    /// Declares `C` the position (see [`ReplicationRegistry::register_position`]).
    ///
    /// # Errors
    ///
    /// See [`ReplicationRegistry::register_position`].
    fn position<C: Replicate>(&mut self) -> Result<(), RegistryError>;
}

impl Registrar for ReplicationRegistry {
    fn component<C: Replicate>(&mut self) -> Result<(), RegistryError> {
        self.register::<C>().map(|_| ())
    }

    fn position<C: Replicate>(&mut self) -> Result<(), RegistryError> {
        self.register_position::<C>()
    }
}

/// Checks the [`Replicate`] contract on quantized values: each of `samples` (one value per
/// field) must come back unchanged through `dequantize` then `quantize`. Returns the first
/// sample that does not, with what it became. Games test their components with it.
///
/// # Errors
///
/// The first failing sample and its round trip (or a sample of the wrong length).
pub fn check_round_trips<C: Replicate>(samples: &[&[i32]]) -> Result<(), (Vec<i32>, Vec<i32>)> {
    let mut out = vec![0i32; C::FIELDS.len()];
    for q in samples {
        if q.len() != out.len() {
            return Err((q.to_vec(), Vec::new()));
        }
        C::dequantize(q).quantize(&mut out);
        if out[..] != q[..] {
            return Err((q.to_vec(), out));
        }
    }
    Ok(())
}

/// A registered component's index: its bit in presence masks and its place in a state row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ComponentIdx(pub u8);

/// Why a registration was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RegistryError {
    /// More than [`MAX_COMPONENTS`] components.
    #[error("at most {MAX_COMPONENTS} replicated components")]
    TooManyComponents,
    /// More than [`MAX_FIELDS`] fields in all.
    #[error("at most {MAX_FIELDS} replicated fields per entity")]
    TooManyFields,
    /// The component type (or its name) is registered already.
    #[error("component {0} is registered twice")]
    Duplicate(&'static str),
    /// The component declares no fields.
    #[error("component {0} has no fields")]
    NoFields(&'static str),
    /// The position component is not registered, or a second one is declared.
    #[error("position component {0}: register it first, once")]
    Position(&'static str),
    /// The position component does not start with two integer fields (x and y on the grid).
    #[error("position component {0} must start with two int fields (x, y on the 1/64 grid)")]
    PositionFields(&'static str),
}

type CaptureFn = fn(&mut World, &[u32], usize, usize, &mut ReplicatedState);

#[derive(Clone)]
struct Entry {
    name: &'static str,
    fields: &'static [FieldSpec],
    offset: usize,
    type_id: TypeId,
    capture: CaptureFn,
}

/// The registered replicated components, in registration order.
#[derive(Clone, Default)]
pub struct ReplicationRegistry {
    entries: Vec<Entry>,
    stride: usize,
    /// The component whose first two fields are the entity's position on the grid.
    position: Option<ComponentIdx>,
    /// The hidden component the engine adds with the position: its motion
    /// ([`crate::motion`]).
    motion: Option<ComponentIdx>,
}

/// The type id of the hidden motion component (no type of a game's can be it).
struct MotionEntry;

/// The motion's fields: x and y in grid cells per tick ([`crate::motion::MOTION_SCALE`]).
const MOTION_FIELDS: &[FieldSpec] = &[FieldSpec::int("x"), FieldSpec::int("y")];

/// The motion is never captured from a world: the server's room estimates it.
fn no_capture(_: &mut World, _: &[u32], _: usize, _: usize, _: &mut ReplicatedState) {}

impl std::fmt::Debug for ReplicationRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|e| e.name)).finish()
    }
}

/// Writes every `C` of the entities in `rows` into `state`: its fields at `offset` of the
/// entity's row and bit `bit` of its mask. `rows[i]` is the row of the entity whose index is
/// `i` ([`NO_ROW`]: not replicated). One pass over `C`'s archetypes, not a lookup per entity.
fn capture_component<C: Replicate>(
    world: &mut World,
    rows: &[u32],
    bit: usize,
    offset: usize,
    state: &mut ReplicatedState,
) {
    let stride = state.stride;
    let mut query = world.query::<(bevy_ecs::entity::Entity, &C)>();
    for (entity, c) in query.iter(world) {
        let Some(&row) = rows.get(entity.index_u32() as usize) else { continue };
        if row == NO_ROW {
            continue;
        }
        let start = row as usize * stride + offset;
        c.quantize(&mut state.fields[start..start + C::FIELDS.len()]);
        state.masks[row as usize] |= 1 << bit;
    }
}

/// In a capture's entity-to-row table: the entity is not replicated.
const NO_ROW: u32 = u32::MAX;

impl ReplicationRegistry {
    /// An empty registry.
    #[must_use]
    pub fn new() -> ReplicationRegistry {
        ReplicationRegistry::default()
    }

    /// Registers `C`; from now on every entity with a [`NetId`] and a `C` replicates it.
    pub fn register<C: Replicate>(&mut self) -> Result<ComponentIdx, RegistryError> {
        let type_id = TypeId::of::<C>();
        if self.entries.iter().any(|e| e.type_id == type_id || e.name == C::NAME) {
            return Err(RegistryError::Duplicate(C::NAME));
        }
        if C::FIELDS.is_empty() {
            return Err(RegistryError::NoFields(C::NAME));
        }
        if self.entries.len() == MAX_COMPONENTS {
            return Err(RegistryError::TooManyComponents);
        }
        if self.stride + C::FIELDS.len() > MAX_FIELDS {
            return Err(RegistryError::TooManyFields);
        }
        Ok(self.push_entry(C::NAME, C::FIELDS, type_id, capture_component::<C>))
    }

    fn push_entry(
        &mut self,
        name: &'static str,
        fields: &'static [FieldSpec],
        type_id: TypeId,
        capture: CaptureFn,
    ) -> ComponentIdx {
        let idx = ComponentIdx(self.entries.len() as u8);
        self.entries.push(Entry { name, fields, offset: self.stride, type_id, capture });
        self.stride += fields.len();
        idx
    }

    /// Declares the registered component `C` as the entities' position: its first two fields
    /// are `x` and `y` on the [`crate::quantize::POSITION_SCALE`] grid. Interest management
    /// (the server sends each client the entities near it) and interpolation use it, and the
    /// registry adds the hidden motion component after the last one registered
    /// ([`crate::motion`]), so it takes a component index and two fields.
    ///
    /// # Errors
    ///
    /// When `C` is not registered, a position was declared already, `C` does not start with
    /// two int fields, or there is no room left for the motion.
    pub fn register_position<C: Replicate>(&mut self) -> Result<(), RegistryError> {
        let idx = self.index_of::<C>().ok_or(RegistryError::Position(C::NAME))?;
        if self.position.is_some() {
            return Err(RegistryError::Position(C::NAME));
        }
        match C::FIELDS {
            [x, y, ..] if x.kind == FieldKind::Int && y.kind == FieldKind::Int => {}
            _ => return Err(RegistryError::PositionFields(C::NAME)),
        }
        if self.entries.len() == MAX_COMPONENTS {
            return Err(RegistryError::TooManyComponents);
        }
        if self.stride + MOTION_FIELDS.len() > MAX_FIELDS {
            return Err(RegistryError::TooManyFields);
        }
        self.position = Some(idx);
        self.motion = Some(self.push_entry(
            "tickwire.motion",
            MOTION_FIELDS,
            TypeId::of::<MotionEntry>(),
            no_capture,
        ));
        Ok(())
    }

    /// The hidden motion component's index ([`crate::motion`]), if a position is declared.
    #[must_use]
    pub fn motion_index(&self) -> Option<ComponentIdx> {
        self.motion
    }

    /// The position component's index, if a position is declared.
    #[must_use]
    pub fn position_index(&self) -> Option<ComponentIdx> {
        self.position
    }

    /// Where the position's `x` and `y` grid values sit in a row, if a position is declared.
    #[must_use]
    pub fn position_offset(&self) -> Option<usize> {
        self.position.map(|idx| self.offset(idx))
    }

    /// The position of one entity of a replicated state, if it has one.
    #[must_use]
    pub fn position(&self, entity: EntityView<'_>) -> Option<Vec2> {
        let idx = self.position?;
        if entity.mask & (1 << idx.0) == 0 {
            return None;
        }
        let o = self.offset(idx);
        Some(crate::quantize::position2_value([entity.fields[o], entity.fields[o + 1]]))
    }

    /// How many components are registered.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no component is registered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Fields per entity row across all components.
    #[must_use]
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// The mask with a bit for every registered component.
    #[must_use]
    pub fn full_mask(&self) -> u32 {
        if self.entries.len() == MAX_COMPONENTS {
            u32::MAX
        } else {
            (1u32 << self.entries.len()) - 1
        }
    }

    /// The index `C` was registered at.
    #[must_use]
    pub fn index_of<C: Replicate>(&self) -> Option<ComponentIdx> {
        let type_id = TypeId::of::<C>();
        self.entries.iter().position(|e| e.type_id == type_id).map(|i| ComponentIdx(i as u8))
    }

    /// The fields of component `idx`.
    #[must_use]
    pub fn fields(&self, idx: ComponentIdx) -> &'static [FieldSpec] {
        self.entries[usize::from(idx.0)].fields
    }

    /// Where component `idx`'s fields start in a row.
    #[must_use]
    pub fn offset(&self, idx: ComponentIdx) -> usize {
        self.entries[usize::from(idx.0)].offset
    }

    /// The name of component `idx`.
    #[must_use]
    pub fn name(&self, idx: ComponentIdx) -> &'static str {
        self.entries[usize::from(idx.0)].name
    }

    /// `(index, offset, fields)` of every component, in order.
    pub fn layout(&self) -> impl Iterator<Item = (ComponentIdx, usize, &'static [FieldSpec])> + '_ {
        self.entries.iter().enumerate().map(|(i, e)| (ComponentIdx(i as u8), e.offset, e.fields))
    }

    /// A 64-bit FNV-1a hash of the names, fields and order: two sides that registered the same
    /// components in the same order have the same fingerprint. The server sends it in `Welcome`.
    #[must_use]
    pub fn fingerprint(&self) -> u64 {
        let mut h = crate::fnv::Fnv64::new();
        // Each item is followed by a 0xff byte, which no name contains, so that names cannot
        // run into each other.
        let mut eat = |bytes: &[u8]| {
            h.eat(bytes);
            h.eat(&[0xff]);
        };
        for e in &self.entries {
            eat(e.name.as_bytes());
            for f in e.fields {
                eat(f.name.as_bytes());
                eat(&[f.kind as u8]);
                eat(f.quantization.as_bytes());
            }
        }
        eat(&[self.position.map_or(0xfe, |i| i.0)]);
        h.finish()
    }

    /// Reads component `C` of one entity of a replicated state, dequantized.
    #[must_use]
    pub fn get<C: Replicate>(&self, entity: EntityView<'_>) -> Option<C> {
        let idx = self.index_of::<C>()?;
        if entity.mask & (1 << idx.0) == 0 {
            return None;
        }
        let offset = self.offset(idx);
        Some(C::dequantize(&entity.fields[offset..offset + C::FIELDS.len()]))
    }

    /// Captures the replicated, quantized state of every entity that has a [`NetId`], in id
    /// order. An entity whose id repeats an earlier one is left out (ids must be unique).
    #[must_use]
    pub fn capture(&self, world: &mut World) -> ReplicatedState {
        let mut query = world.query::<(bevy_ecs::entity::Entity, &NetId)>();
        let mut ids: Vec<(NetId, bevy_ecs::entity::Entity)> =
            query.iter(world).map(|(e, id)| (*id, e)).collect();
        ids.sort_unstable_by_key(|&(id, _)| id);
        ids.dedup_by_key(|&mut (id, _)| id);
        // Ids are sorted and deduplicated: the rows, zeroed, then filled a component at a time.
        let n = ids.len();
        let mut state = ReplicatedState {
            stride: self.stride,
            ids: ids.iter().map(|&(id, _)| id).collect(),
            masks: vec![0; n],
            fields: vec![0; n * self.stride],
        };
        let top = ids.iter().map(|&(_, e)| e.index_u32() as usize + 1).max().unwrap_or(0);
        let mut rows = vec![NO_ROW; top];
        for (row, &(_, entity)) in ids.iter().enumerate() {
            rows[entity.index_u32() as usize] = row as u32;
        }
        for (bit, e) in self.entries.iter().enumerate() {
            (e.capture)(world, &rows, bit, e.offset, &mut state);
        }
        state
    }
}
