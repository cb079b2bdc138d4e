//! Unit tests of the snapshot format and the prepared fast path.

use super::*;
use crate::bits::BitWriter;
use crate::game;
use crate::registry::ReplicationRegistry;

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
            encode_delta_prepared(&reg, &cur, &delta, &bv, &cv, &mut fast);
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

/// The inspector's attribution of a delta's bits to components adds up to the delta itself,
/// and a component that did not change costs nothing.
#[test]
fn a_deltas_bits_are_attributed_to_its_components_exactly() {
    let reg = game::registry::<crate::games::arena::ArenaGame>();
    for (n, salt) in [(0, 1), (1, 2), (70, 3), (300, 4)] {
        let base = state(&reg, n, salt);
        let cur = state(&reg, n + 20, salt + 100);
        let mut w = BitWriter::default();
        encode_delta(&reg, base.iter(), cur.iter(), &mut w);
        let parts = delta_bits_by_component(&reg, &base, &cur);
        assert_eq!(parts.len(), reg.len() + 1);
        assert_eq!(parts.iter().sum::<u64>(), w.bit_len() as u64, "{n} entities: {parts:?}");
    }
    let same = state(&reg, 50, 9);
    let parts = delta_bits_by_component(&reg, &same, &same);
    assert!(parts[..reg.len()].iter().all(|&b| b == 0), "{parts:?}");
}
