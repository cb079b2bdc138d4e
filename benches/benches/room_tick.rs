//! One room tick with clients acking like real clients (`tickwire_benches::RoomScenario`):
//! every client sends a four-frame input batch with the ack of its newest snapshot each tick,
//! so snapshots are deltas. Interest radius is the server default (1,200 units).
//!
//! One iteration = one tick of the server, every other one: the drifters move, then
//! `Room::step` drains inputs, applies them, runs the game schedule, and captures, filters by
//! interest, encodes and queues a snapshot for the clients whose turn it is (clients are spread
//! over the two ticks of a 30 Hz snapshot interval, so every tick serves about half of them).
//! The tick in between and the clients' side (sending inputs, draining outboxes) run untimed.
//!
//! - `room_tick/32p_2000e`: 32 players, 64 NPCs, 1,904 drifters, 4 pickups (+ projectiles).
//! - `room_tick/200p_2000e`: 200 players, 64 NPCs, 1,736 drifters (DESIGN target p99 ≤ 4 ms).
//! - `room_tick/64p_1000e`: 64 players, 32 NPCs, 900 drifters (DESIGN target p99 ≤ 2 ms).
//! - `room_tick/64p_1000e_recorded`: the same, recording the match (`--record`): what a state
//!   hash, the sketches and the inputs as applied add to a tick (the bytes are taken untimed,
//!   as the server's writer thread takes them).
//!
//! Run: `cargo bench -p tickwire-benches --bench room_tick`. Percentiles over thousands of ticks:
//! `cargo run --release -p tickwire-benches --example tick_percentiles`.

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use tickwire_benches::{Drift, RoomScenario, ScenarioConfig};
use tickwire_shared::persist::Persistence;

fn bench_room(c: &mut Criterion) {
    let mut g = c.benchmark_group("room_tick");
    let cases = [
        ("32p_2000e", ScenarioConfig { n_players: 32, n_npcs: 64, n_drifters: 1_904 }),
        ("200p_2000e", ScenarioConfig { n_players: 200, n_npcs: 64, n_drifters: 1_736 }),
        ("64p_1000e", ScenarioConfig { n_players: 64, n_npcs: 32, n_drifters: 900 }),
    ];
    let recorded = ("64p_1000e_recorded", cases[2].1);
    for (name, config) in cases.into_iter().chain([recorded]) {
        let mut s = RoomScenario::new(config, 60);
        let record = name.ends_with("_recorded");
        if record {
            let core = s.room.core_mut();
            // The drifters are the bench's, moved from outside the game: not part of a save.
            core.world_mut().resource_mut::<Persistence>().transient::<Drift>();
            core.start_recording(600, 0).expect("the world saves");
        }
        eprintln!("{name}: {} replicated entities after warm-up", s.replicated());
        g.bench_function(name, |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    if !s.next_is_snapshot_tick() {
                        s.tick();
                    }
                    s.send_inputs();
                    let start = Instant::now();
                    s.server_tick();
                    total += start.elapsed();
                    s.receive();
                    if record {
                        drop(s.room.core_mut().take_recording());
                    }
                }
                total
            });
        });
        eprintln!("{name}: mean snapshot message {:.0} bytes", s.mean_snapshot_bytes());
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = bench_room
}
criterion_main!(benches);
