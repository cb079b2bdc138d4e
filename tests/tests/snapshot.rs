//! The snapshot format: full and delta round trips (as properties over random worlds and random
//! changes), capture from a bevy `World`, pinned sizes, and hostile bodies.

use bevy_ecs::world::World;
use glam::Vec2;
use proptest::prelude::*;
use tickwire_shared::NetId;
use tickwire_shared::bits::BitWriter;
use tickwire_shared::quantize;
use tickwire_shared::registry::ReplicationRegistry;
use tickwire_shared::snapshot::{self, ReplicatedState, SnapshotError};
use tickwire_tests::fixtures::{Heading, Hp, Pos, Tally, registry};

/// One entity of a generated world, in simulation (f32) terms.
#[derive(Clone, Debug)]
struct Ent {
    id: u32,
    pos: Option<Vec2>,
    heading: Option<f32>,
    hp: Option<f32>,
    tally: Option<(u16, u16, u8)>,
}

fn capture(reg: &ReplicationRegistry, ents: &[Ent]) -> ReplicatedState {
    let mut world = World::new();
    for e in ents {
        let mut entity = world.spawn(NetId(e.id));
        if let Some(p) = e.pos {
            entity.insert(Pos(p));
        }
        if let Some(h) = e.heading {
            entity.insert(Heading(h));
        }
        if let Some(h) = e.hp {
            entity.insert(Hp(h));
        }
        if let Some((kills, deaths, team)) = e.tally {
            entity.insert(Tally { kills, deaths, team });
        }
    }
    reg.capture(&mut world)
}

fn encode_full(reg: &ReplicationRegistry, s: &ReplicatedState) -> Vec<u8> {
    let mut w = BitWriter::default();
    snapshot::encode_full(reg, s.iter(), &mut w);
    w.finish()
}

fn encode_delta(reg: &ReplicationRegistry, base: &ReplicatedState, s: &ReplicatedState) -> Vec<u8> {
    let mut w = BitWriter::default();
    snapshot::encode_delta(reg, base.iter(), s.iter(), &mut w);
    w.finish()
}

fn coord() -> impl Strategy<Value = f32> {
    -1000.0f32..1000.0
}

fn ent(id: u32) -> impl Strategy<Value = Ent> {
    (
        proptest::option::weighted(0.9, (coord(), coord()).prop_map(|(x, y)| Vec2::new(x, y))),
        proptest::option::of(-10.0f32..10.0),
        proptest::option::of(0.0f32..300.0),
        proptest::option::of(any::<(u16, u16, u8)>()),
    )
        .prop_map(move |(pos, heading, hp, tally)| Ent { id, pos, heading, hp, tally })
}

/// A world of up to 40 entities with distinct ids below 5,000.
fn world() -> impl Strategy<Value = Vec<Ent>> {
    proptest::collection::btree_set(0u32..5_000, 0..40)
        .prop_flat_map(|ids| ids.into_iter().map(ent).collect::<Vec<_>>())
}

/// What can happen to one entity between two snapshots.
#[derive(Clone, Debug)]
enum Change {
    Keep,
    Despawn,
    Move(Vec2),
    Turn(f32),
    Hurt(f32),
    Replace(Ent),
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        3 => Just(Change::Keep),
        1 => Just(Change::Despawn),
        4 => (-20.0f32..20.0, -20.0f32..20.0).prop_map(|(x, y)| Change::Move(Vec2::new(x, y))),
        1 => (-7.0f32..7.0).prop_map(Change::Turn),
        1 => (0.0f32..300.0).prop_map(Change::Hurt),
        1 => ent(0).prop_map(Change::Replace),
    ]
}

fn apply_changes(base: &[Ent], changes: &[Change], spawns: &[Ent]) -> Vec<Ent> {
    let mut out: Vec<Ent> = Vec::new();
    for (e, c) in base.iter().zip(changes.iter().cycle()) {
        let mut e = e.clone();
        match c {
            Change::Keep => {}
            Change::Despawn => continue,
            Change::Move(d) => e.pos = Some(e.pos.unwrap_or_default() + *d),
            Change::Turn(a) => e.heading = Some(e.heading.unwrap_or_default() + a),
            Change::Hurt(h) => e.hp = Some(*h),
            Change::Replace(r) => e = Ent { id: e.id, ..r.clone() },
        }
        out.push(e);
    }
    let taken: Vec<u32> = base.iter().map(|e| e.id).collect();
    for s in spawns {
        if !taken.contains(&s.id) && !out.iter().any(|e| e.id == s.id) {
            out.push(s.clone());
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_000, ..ProptestConfig::default() })]

    #[test]
    fn delta_applied_to_its_baseline_gives_the_quantized_current_world(
        base in world(),
        changes in proptest::collection::vec(change(), 1..40),
        spawns in world(),
    ) {
        let reg = registry();
        let current = apply_changes(&base, &changes, &spawns);
        let base_q = capture(&reg, &base);
        let current_q = capture(&reg, &current);

        let body = encode_delta(&reg, &base_q, &current_q);
        prop_assert_eq!(snapshot::decode_delta(&reg, &base_q, &body), Ok(current_q.clone()));

        let full = encode_full(&reg, &current_q);
        prop_assert_eq!(snapshot::decode_full(&reg, &full), Ok(current_q.clone()));

        // The decoded state dequantizes to within quantization error of the simulation.
        for e in &current {
            let view = current_q.get(NetId(e.id)).expect("captured");
            let pos: Option<Pos> = reg.get(view);
            prop_assert_eq!(pos.is_some(), e.pos.is_some());
            if let (Some(Pos(got)), Some(want)) = (pos, e.pos) {
                prop_assert!((got - want).abs().max_element() <= quantize::POSITION_PRECISION);
            }
        }
    }

    #[test]
    fn random_bodies_never_panic_the_decoders(
        base in world(),
        body in proptest::collection::vec(any::<u8>(), 0..96),
    ) {
        let reg = registry();
        let base_q = capture(&reg, &base);
        let _ = snapshot::decode_full(&reg, &body);
        let _ = snapshot::decode_delta(&reg, &base_q, &body);
    }
}

#[test]
fn an_unchanged_world_costs_nothing_per_entity() {
    let reg = registry();
    let ents: Vec<Ent> = (1..=100)
        .map(|i| Ent {
            id: i,
            pos: Some(Vec2::new(i as f32, -(i as f32))),
            heading: Some(0.5),
            hp: Some(100.0),
            tally: None,
        })
        .collect();
    let s = capture(&reg, &ents);
    // Only the end-of-list marker: 4 bits, one byte.
    assert_eq!(encode_delta(&reg, &s, &s), vec![0]);
}

/// The reference arena: 100 entities with a position and health, on a grid inside ±600 units.
fn reference_world() -> Vec<Ent> {
    (1..=100u32)
        .map(|i| Ent {
            id: i,
            pos: Some(Vec2::new((i % 10) as f32 * 117.3 - 550.0, (i / 10) as f32 * 109.9 - 520.0)),
            heading: None,
            hp: Some(100.0),
            tally: None,
        })
        .collect()
}

#[test]
fn pinned_sizes_of_reference_snapshots() {
    let reg = registry();
    let base = reference_world();
    let base_q = capture(&reg, &base);

    // 10 of 100 entities moved by what a running player covers in 1/30 s at 6 units/s.
    let mut moved = base.clone();
    for e in moved.iter_mut().step_by(10) {
        e.pos = e.pos.map(|p| p + Vec2::new(0.2, -0.15));
    }
    let moved_q = capture(&reg, &moved);

    let full = encode_full(&reg, &base_q);
    let delta = encode_delta(&reg, &base_q, &moved_q);
    let full_bits_per_entity = full.len() * 8 / 100;
    let delta_bits_per_moved = (delta.len() * 8) as f64 / 10.0;
    println!(
        "full: {} bytes ({full_bits_per_entity} bits/entity); delta: {} bytes ({delta_bits_per_moved} bits/moved entity)",
        full.len(),
        delta.len()
    );
    assert_eq!(full.len(), 776, "full snapshot size changed");
    assert_eq!(delta.len(), 37, "delta snapshot size changed");
    assert!(full_bits_per_entity <= 80, "full: {full_bits_per_entity} bits per entity");
    assert!(delta_bits_per_moved <= 32.0, "delta: {delta_bits_per_moved} bits per moved entity");
}

#[test]
fn hostile_deltas_are_refused_with_a_reason() {
    let reg = registry();
    let base_q = capture(&reg, &reference_world());
    let empty = ReplicatedState::new(reg.stride());

    // A delta built against a baseline the client does not hold names entities it lacks.
    let body = encode_delta(&reg, &base_q, &empty);
    assert_eq!(
        snapshot::decode_delta(&reg, &empty, &body),
        Err(SnapshotError::NotInBaseline(NetId(1)))
    );
    // Spawning what the baseline already has.
    let body = encode_delta(&reg, &empty, &base_q);
    assert_eq!(
        snapshot::decode_delta(&reg, &base_q, &body),
        Err(SnapshotError::AlreadyInBaseline(NetId(1)))
    );
    // Truncation and trailing bytes.
    let full = encode_full(&reg, &base_q);
    assert_eq!(snapshot::decode_full(&reg, &full[..full.len() / 2]), Err(SnapshotError::Truncated));
    let mut long = full.clone();
    long.push(0);
    assert_eq!(snapshot::decode_full(&reg, &long), Err(SnapshotError::TrailingData));
    // A huge id gap overflows.
    let mut w = BitWriter::default();
    w.write_var(u32::MAX);
    w.write_bool(false);
    w.write_bits(0, reg.len() as u32);
    w.write_var(u32::MAX);
    assert_eq!(snapshot::decode_full(&reg, &w.finish()), Err(SnapshotError::IdOverflow));
}
