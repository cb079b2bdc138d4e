use super::*;
use crate::bits::BitWriter;
use crate::game;
use crate::games::arena::{ArenaGame, Position};
use crate::ids::NetId;
use crate::snapshot;

fn registry() -> ReplicationRegistry {
    game::registry::<ArenaGame>()
}

/// A state of entities at grid positions (`None`: an entity without a position).
fn state(reg: &ReplicationRegistry, entities: &[(u32, Option<[i32; 2]>)]) -> ReplicatedState {
    let pos = reg.index_of::<Position>().expect("arena registers a position");
    let o = reg.offset(pos);
    let mut s = ReplicatedState::new(reg.stride());
    for &(id, p) in entities {
        let mut row = vec![0; reg.stride()];
        let mut mask = 0;
        if let Some([x, y]) = p {
            row[o] = x;
            row[o + 1] = y;
            mask |= 1 << pos.0;
        }
        s.push(NetId(id), mask, &row).expect("ascending ids");
    }
    s
}

fn motion_of(reg: &ReplicationRegistry, s: &ReplicatedState, id: u32) -> Option<[i32; 2]> {
    let idx = reg.motion_index().expect("a position brings a motion");
    let e = s.get(NetId(id))?;
    let o = reg.offset(idx);
    (e.mask & (1 << idx.0) != 0).then(|| [e.fields[o], e.fields[o + 1]])
}

fn delta_bits(
    reg: &ReplicationRegistry,
    base: &ReplicatedState,
    cur: &ReplicatedState,
    ticks: u32,
) -> usize {
    let predicted = predicted(reg, base, ticks);
    let against = predicted.as_ref().unwrap_or(base);
    let mut w = BitWriter::default();
    snapshot::encode_delta(reg, against.iter(), cur.iter(), &mut w);
    let bits = w.bit_len();
    let body = w.finish();
    assert_eq!(snapshot::decode_delta(reg, against, &body).as_ref(), Ok(cur), "lossless");
    bits
}

#[test]
fn the_registry_adds_a_hidden_motion_after_the_position() {
    let reg = registry();
    let motion = reg.motion_index().expect("motion registered");
    assert_eq!(reg.name(motion), "tickwire.motion");
    assert_eq!(reg.fields(motion).len(), 2);
    assert_eq!(usize::from(motion.0), reg.len() - 1);
}

#[test]
fn advance_rounds_to_the_nearest_cell_and_never_overflows() {
    let s = MOTION_SCALE as i32;
    assert_eq!(advance(100, 5 * s, 3), 115);
    assert_eq!(advance(100, -5 * s, 3), 85);
    assert_eq!(measured(100, 111, 2), 6 * MOTION_SCALE - MOTION_SCALE / 2, "5.5 rounds up");
    assert_eq!(measured(111, 100, 2), -5 * MOTION_SCALE - MOTION_SCALE / 2, "-5.5 rounds up");
    // Past the longest span, no prediction; within it, extreme values wrap and never panic.
    assert_eq!(advance(100, 5, MAX_PREDICTED_TICKS + 1), 100);
    let _ = advance(i32::MAX, i32::MAX, MAX_PREDICTED_TICKS);
    let _ = advance(i32::MIN, i32::MIN, MAX_PREDICTED_TICKS);
}

/// Each state given its motion from the two before it, as the room does.
fn chain(reg: &ReplicationRegistry, states: Vec<(u32, ReplicatedState)>) -> Vec<ReplicatedState> {
    let mut done: Vec<(Tick, ReplicatedState)> = Vec::new();
    for (t, mut s) in states {
        let at = |back: usize| done.len().checked_sub(back).map(|i| (done[i].0, &done[i].1));
        estimate(reg, at(1), at(2), Tick(t), &mut s);
        done.push((Tick(t), s));
    }
    done.into_iter().map(|(_, s)| s).collect()
}

#[test]
fn a_steady_walker_gets_its_motion_once_and_keeps_it() {
    let reg = registry();
    let s = MOTION_SCALE as i32;
    // Entity 1 walks 166 cells a tick along x (one cell off at tick 13), then stops; entity 2
    // stands still.
    let plan = [(10, 0), (12, 332), (13, 332 + 166 + 1), (14, 332 + 2 * 166), (16, 665), (17, 665)];
    let states = chain(
        &reg,
        plan.iter()
            .map(|&(t, x)| (t, state(&reg, &[(1, Some([x, 0])), (2, Some([500, 500]))])))
            .collect(),
    );
    let motions: Vec<_> = states.iter().map(|st| motion_of(&reg, st, 1)).collect();
    assert_eq!(motions[0], None, "nothing before: no motion");
    assert_eq!(motions[1], None, "one step is not yet a steady walk");
    assert_eq!(motions[2], Some([167 * s, 0]), "the second step continues the first");
    assert_eq!(motions[3], Some([167 * s, 0]), "a cell off: the motion stays");
    assert_eq!(motions[4], None, "it stopped at tick 15: the step to 16 continues nothing");
    assert_eq!(motions[5], None);
    assert!(states.iter().all(|st| motion_of(&reg, st, 2).is_none()), "a still entity has none");
}

#[test]
fn a_circling_entity_gets_no_motion() {
    let reg = registry();
    // 2,000 cells from the centre, a quarter turn in 30 ticks: each step bends by ~100 cells.
    let states = chain(
        &reg,
        (0..30u32)
            .map(|t| {
                let a = f64::from(t) * std::f64::consts::FRAC_PI_2 / 30.0;
                let p = [(2000.0 * a.cos()) as i32, (2000.0 * a.sin()) as i32];
                (t, state(&reg, &[(1, Some(p))]))
            })
            .collect(),
    );
    assert!(states.iter().all(|st| motion_of(&reg, st, 1).is_none()));
}

#[test]
fn a_jump_is_not_motion_and_entities_without_a_position_get_none() {
    let reg = registry();
    let far = 100 * 64 * 64;
    // Steady, then a respawn across the arena in one tick, then steady from there.
    let plan = [(1, 0), (2, far), (3, 2 * far), (4, 2 * far + 5)];
    let states = chain(
        &reg,
        plan.iter().map(|&(t, x)| (t, state(&reg, &[(1, Some([x, 0])), (3, None)]))).collect(),
    );
    assert!(states.iter().all(|st| motion_of(&reg, st, 1).is_none()));
    assert!(states.iter().all(|st| motion_of(&reg, st, 3).is_none()));
    // A state too old to measure from gives none either.
    let states = chain(
        &reg,
        vec![
            (0, state(&reg, &[(1, Some([0, 0]))])),
            (1, state(&reg, &[(1, Some([5, 0]))])),
            (2 + MAX_PREDICTED_TICKS, state(&reg, &[(1, Some([10, 0]))])),
        ],
    );
    assert_eq!(motion_of(&reg, &states[2], 1), None);
}

#[test]
fn a_walker_that_keeps_its_motion_costs_nothing_in_a_delta_however_old_the_baseline() {
    let reg = registry();
    let states = chain(
        &reg,
        (0..=12)
            .map(|t| (t as u32, state(&reg, &[(1, Some([166 * t, -83 * t])), (2, Some([7, 7]))])))
            .collect(),
    );
    // Baseline 2, 4 and 10 ticks back: nothing but the end of the list.
    for back in [2usize, 4, 10] {
        assert_eq!(
            delta_bits(&reg, &states[12 - back], &states[12], back as u32),
            4,
            "{back} back: only the end marker"
        );
    }
    // Without the prediction the same delta names the walker and both coordinates.
    let mut w = BitWriter::default();
    snapshot::encode_delta(&reg, states[2].iter(), states[12].iter(), &mut w);
    assert!(w.bit_len() > 40, "{} bits unpredicted", w.bit_len());
}

#[test]
fn a_walker_off_its_motion_costs_only_the_error() {
    let reg = registry();
    // Steps of 5.5 cells a tick: a grid walk alternates 5 and 6.
    let states = chain(
        &reg,
        (0..=30).map(|t| (t as u32, state(&reg, &[(1, Some([(11 * t) / 2, 0]))]))).collect(),
    );
    for back in [2usize, 6] {
        let bits = delta_bits(&reg, &states[30 - back], &states[30], back as u32);
        // Gap 4, kind 1, a first touched-mask 9, removed 1, changed 2, a residual of 4 bits,
        // end 4: the residual stays one small number whatever the distance walked.
        assert!(bits <= 25, "{back} back: {bits} bits");
    }
}

#[test]
fn prediction_leaves_a_state_without_motion_alone_and_refuses_a_foreign_stride() {
    let reg = registry();
    let s = state(&reg, &[(1, Some([1, 2]))]);
    assert!(predicted(&reg, &s, 5).is_none());
    let foreign = ReplicatedState::new(reg.stride() + 1);
    assert!(predicted(&reg, &foreign, 5).is_none());
}
