//! The body format itself: full and delta bodies, written entry by entry and read back with
//! every check (see the [module documentation](super) for the grammar).

use super::{EntityView, MAX_SNAPSHOT_ENTITIES, ReplicatedState, SnapshotError};
use crate::bits::{BitReader, BitSink, BitWriter};
use crate::ids::NetId;
use crate::registry::{FieldKind, ReplicationRegistry};

pub(super) const KIND_UPDATED: u32 = 0b0;
pub(super) const KIND_SPAWNED: u32 = 0b01; // "10" read low bit first
pub(super) const KIND_DESPAWNED: u32 = 0b11;

/// Writes a mask, or one bit when it equals `previous` (then updates `previous`).
pub(super) fn write_mask(w: &mut impl BitSink, mask: u32, previous: &mut u32, n_components: u32) {
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

pub(super) fn write_absolute(w: &mut impl BitSink, kind: FieldKind, value: i32) {
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
pub(super) fn write_entity_fields(
    w: &mut impl BitSink,
    registry: &ReplicationRegistry,
    e: EntityView<'_>,
) {
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
#[inline]
pub(super) fn touched_mask(
    registry: &ReplicationRegistry,
    old: EntityView<'_>,
    new: EntityView<'_>,
) -> u32 {
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
pub(super) fn write_update_fields(
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
#[inline]
pub(super) fn write_gap(w: &mut impl BitSink, previous: &mut Option<NetId>, id: NetId) {
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

/// Counts bits instead of keeping them.
#[derive(Default)]
struct Counter(u64);

impl BitSink for Counter {
    fn write_bits(&mut self, _value: u32, n_bits: u32) {
        self.0 += u64::from(n_bits);
    }
}

/// The bits of one entity's entry in a delta after its id gap, with its mask written in full
/// (an upper bound on the one-bit "same mask"): an update from `old`, or a spawn when there is
/// none. What the bandwidth governor ranks entities' costs by.
pub(crate) fn entry_bits(
    registry: &ReplicationRegistry,
    old: Option<EntityView<'_>>,
    new: EntityView<'_>,
) -> u64 {
    let n_components = registry.len() as u32;
    let mut w = Counter::default();
    match old {
        Some(old) => {
            let touched = touched_mask(registry, old, new);
            w.write_bits(KIND_UPDATED, 1);
            write_mask(&mut w, touched, &mut !touched, n_components);
            write_update_fields(&mut w, registry, old, new, touched);
        }
        None => {
            w.write_bits(KIND_SPAWNED, 2);
            write_mask(&mut w, new.mask, &mut !new.mask, n_components);
            write_entity_fields(&mut w, registry, new);
        }
    }
    w.0
}

/// What [`encode_delta`] from `baseline` to `current` writes, attributed: the bits each
/// registered component takes (registry order), and last the rest (ids, kinds, masks, the end
/// mark). They add up to the delta's length. For the live inspector: where a snapshot's bytes
/// go.
#[must_use]
pub fn delta_bits_by_component(
    registry: &ReplicationRegistry,
    baseline: &ReplicatedState,
    current: &ReplicatedState,
) -> Vec<u64> {
    let n_components = registry.len() as u32;
    let mut per = vec![0u64; registry.len() + 1];
    let mut rest = Counter::default();
    let (mut previous_id, mut previous_spawn_mask, mut previous_touched) = (None, 0, 0);
    let (mut base, mut cur) = (baseline.iter().peekable(), current.iter().peekable());
    loop {
        match (base.peek().copied(), cur.peek().copied()) {
            (None, None) => break,
            (Some(b), c) if c.is_none_or(|c| b.id < c.id) => {
                write_gap(&mut rest, &mut previous_id, b.id);
                rest.write_bits(KIND_DESPAWNED, 2);
                base.next();
            }
            (b, Some(c)) if b.is_none_or(|b| c.id < b.id) => {
                write_gap(&mut rest, &mut previous_id, c.id);
                rest.write_bits(KIND_SPAWNED, 2);
                write_mask(&mut rest, c.mask, &mut previous_spawn_mask, n_components);
                for (idx, offset, fields) in registry.layout() {
                    if c.mask & (1 << idx.0) != 0 {
                        let mut w = Counter::default();
                        for (i, f) in fields.iter().enumerate() {
                            write_absolute(&mut w, f.kind, c.fields[offset + i]);
                        }
                        per[usize::from(idx.0)] += w.0;
                    }
                }
                cur.next();
            }
            (Some(b), Some(c)) => {
                if b.mask != c.mask || b.fields != c.fields {
                    write_gap(&mut rest, &mut previous_id, c.id);
                    rest.write_bits(KIND_UPDATED, 1);
                    let touched = touched_mask(registry, b, c);
                    write_mask(&mut rest, touched, &mut previous_touched, n_components);
                    for (idx, _, _) in registry.layout() {
                        let bit = 1u32 << idx.0;
                        if touched & bit != 0 {
                            let mut w = Counter::default();
                            write_update_fields(&mut w, registry, b, c, bit);
                            per[usize::from(idx.0)] += w.0;
                        }
                    }
                }
                base.next();
                cur.next();
            }
            (None, Some(_)) | (Some(_), None) => unreachable!("covered by the guards"),
        }
    }
    rest.write_var(0);
    per[registry.len()] = rest.0;
    per
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
