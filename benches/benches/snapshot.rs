//! Snapshot body encode and decode (`tickwire_shared::snapshot`) over states captured from a
//! real game world (`tickwire_benches::captured_pair`: NPCs, drifters and pickups after 30
//! ticks of play), the arena's registry.
//!
//! - `snapshot/encode_full/N`: one iteration = `encode_full` of N entities into a fresh
//!   `BitWriter` (256-byte initial buffer, as the room does) and `finish`.
//! - `snapshot/encode_delta/N`: one iteration = `encode_delta` of N entities against a baseline
//!   where 10% of them moved (`with_changes(base, 0.1)`), into a fresh writer, and `finish`.
//! - `snapshot/decode_full/N`, `snapshot/decode_delta/N`: one iteration = decoding those bodies
//!   into a new `ReplicatedState`.
//! - `snapshot/per_client_30/{full,delta}`: one iteration = encoding one client's snapshot of 30
//!   entities (the first 30 of a captured world, every combatant and drifter moving as in two
//!   real ticks) into a fresh writer with the plain encoders.
//! - `snapshot/per_client_30_prepared/{full,delta}`: one iteration = what the room pays per
//!   client for the same 30 entities out of a 200-entity world: `encode_full_prepared` /
//!   `encode_delta_prepared` with that client's views, into a fresh writer. The shared work
//!   (`PreparedState`, `PreparedDelta`: once per snapshot tick, or once per acknowledged baseline,
//!   for all clients) is done outside the loop — the DESIGN's ≤ 1 µs encode target. `*_scattered`:
//!   the client sees every 7th entity (29) instead of the first 30.
//!
//! Run: `cargo bench -p tickwire-benches --bench snapshot`

use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use tickwire_benches::{captured_pair, with_changes};
use tickwire_shared::bits::BitWriter;
use tickwire_shared::game;
use tickwire_shared::games::arena::ArenaGame;
use tickwire_shared::snapshot::{self, PreparedDelta, PreparedState, ReplicatedState, View};

fn encode_full(
    reg: &tickwire_shared::registry::ReplicationRegistry,
    s: &ReplicatedState,
) -> Vec<u8> {
    let mut w = BitWriter::new(Vec::with_capacity(256));
    snapshot::encode_full(reg, s.iter(), &mut w);
    w.finish()
}

fn encode_delta(
    reg: &tickwire_shared::registry::ReplicationRegistry,
    base: &ReplicatedState,
    s: &ReplicatedState,
) -> Vec<u8> {
    let mut w = BitWriter::new(Vec::with_capacity(256));
    snapshot::encode_delta(reg, base.iter(), s.iter(), &mut w);
    w.finish()
}

fn bench_codec(c: &mut Criterion) {
    let reg = game::registry::<ArenaGame>();
    let mut g = c.benchmark_group("snapshot");
    for n in [100usize, 1_000, 5_000] {
        let (base, _) = captured_pair(n);
        let current = with_changes(&base, 0.1);
        let full = encode_full(&reg, &current);
        let delta = encode_delta(&reg, &base, &current);
        eprintln!(
            "{n} entities ({} captured): full {} bytes ({:.1} bits/entity), 10% delta {} bytes ({:.1} bits/moved entity)",
            current.len(),
            full.len(),
            (full.len() * 8) as f64 / current.len() as f64,
            delta.len(),
            (delta.len() * 8) as f64 / (current.len() as f64 / 10.0),
        );
        g.throughput(Throughput::Elements(current.len() as u64));
        g.bench_with_input(BenchmarkId::new("encode_full", n), &n, |b, _| {
            b.iter(|| encode_full(&reg, black_box(&current)));
        });
        g.bench_with_input(BenchmarkId::new("encode_delta", n), &n, |b, _| {
            b.iter(|| encode_delta(&reg, black_box(&base), black_box(&current)));
        });
        g.bench_with_input(BenchmarkId::new("decode_full", n), &n, |b, _| {
            b.iter(|| snapshot::decode_full(&reg, black_box(&full)).expect("valid"));
        });
        g.bench_with_input(BenchmarkId::new("decode_delta", n), &n, |b, _| {
            b.iter(|| {
                snapshot::decode_delta(&reg, black_box(&base), black_box(&delta)).expect("valid")
            });
        });
    }
    g.finish();

    let mut g = c.benchmark_group("snapshot/per_client_30");
    let (base, current) = captured_pair(200);
    let ids: Vec<_> = current.ids()[..30].to_vec();
    let base30 = base.subset(&ids);
    let cur30 = current.subset(&ids);
    let changed = base30.iter().zip(cur30.iter()).filter(|(a, b)| a != b).count();
    let delta = encode_delta(&reg, &base30, &cur30);
    eprintln!(
        "per-client 30: full {} bytes, delta {} bytes with {changed} of 30 changed ({:.1} bits/changed entity)",
        encode_full(&reg, &cur30).len(),
        delta.len(),
        (delta.len() * 8) as f64 / changed.max(1) as f64
    );
    g.throughput(Throughput::Elements(30));
    g.bench_function("full", |b| b.iter(|| encode_full(&reg, black_box(&cur30))));
    g.bench_function("delta", |b| {
        b.iter(|| encode_delta(&reg, black_box(&base30), black_box(&cur30)))
    });
    g.finish();

    let mut g = c.benchmark_group("snapshot/per_client_30_prepared");
    let prepared = PreparedState::new(&reg, &current);
    let prepared_delta = PreparedDelta::new(&reg, &base, &current);
    let view_of = |n: usize, positions: &mut dyn Iterator<Item = usize>| {
        let mut v = View::empty(n);
        positions.filter(|&i| i < n).for_each(|i| v.insert(i));
        v
    };
    let full = |view: &View| {
        let mut w = BitWriter::new(Vec::with_capacity(256));
        snapshot::encode_full_prepared(&reg, &current, &prepared, view, &mut w);
        w.finish()
    };
    let delta_of = |base_view: &View, view: &View| {
        let mut w = BitWriter::new(Vec::with_capacity(256));
        snapshot::encode_delta_prepared(&reg, &current, &prepared_delta, base_view, view, &mut w);
        w.finish()
    };
    g.throughput(Throughput::Elements(30));
    // The first 30 entities (neighbours), then every 7th (about 30, scattered over the ids).
    for (suffix, positions) in
        [("", (0..30).step_by(1)), ("_scattered", (0..usize::MAX).step_by(7))]
    {
        let base_view = view_of(base.len(), &mut positions.clone().take_while(|&i| i < base.len()));
        let view = view_of(current.len(), &mut positions.take_while(|&i| i < current.len()));
        if suffix.is_empty() {
            // The same bits as the plain encoders of the 30-entity subsets.
            assert_eq!(full(&view), encode_full(&reg, &cur30));
            assert_eq!(delta_of(&base_view, &view), delta);
        }
        g.bench_function(format!("full{suffix}"), |b| b.iter(|| full(black_box(&view))));
        g.bench_function(format!("delta{suffix}"), |b| {
            b.iter(|| delta_of(black_box(&base_view), black_box(&view)));
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_codec
}
criterion_main!(benches);
