//! Records the server's duration of every tick of a [`RoomScenario`] and prints percentiles.
//!
//! Run: `cargo run --release -p tickwire-benches --example tick_percentiles -- 64 50 946 6000`
//! (players, NPCs, drifters, ticks, and optionally the interest radius, default 1200). It prints one line per tick kind (all ticks, snapshot ticks)
//! with p50, p99, p99.9 and max in microseconds, and the mean snapshot message size.

use std::time::Duration;

use tickwire_benches::{RoomScenario, ScenarioConfig};

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx].as_secs_f64() * 1e6
}

fn report(label: &str, mut d: Vec<Duration>) {
    d.sort_unstable();
    println!(
        "{label:>15}: n={:>5}  p50 {:>7.1} us  p99 {:>7.1} us  p99.9 {:>7.1} us  max {:>7.1} us",
        d.len(),
        percentile(&d, 0.5),
        percentile(&d, 0.99),
        percentile(&d, 0.999),
        d.last().map_or(0.0, |m| m.as_secs_f64() * 1e6),
    );
}

fn main() {
    let args: Vec<usize> =
        std::env::args().skip(1).map(|a| a.parse().expect("numeric arguments")).collect();
    let get = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let config =
        ScenarioConfig { n_players: get(0, 64), n_npcs: get(1, 50), n_drifters: get(2, 946) };
    let ticks = get(3, 6_000);
    let radius = get(4, tickwire_benches::INTEREST_RADIUS as usize) as f32;
    let mut s = RoomScenario::with_radius(config, 120, radius);
    println!(
        "{} players, {} NPCs, {} drifters, interest radius {radius}: {} replicated entities now; {ticks} ticks",
        config.n_players,
        config.n_npcs,
        config.n_drifters,
        s.replicated()
    );
    let mut all = Vec::with_capacity(ticks);
    let mut snap = Vec::with_capacity(ticks / 2);
    let mut sim = Vec::with_capacity(ticks / 2);
    for _ in 0..ticks {
        let is_snapshot = s.next_is_snapshot_tick();
        let took = s.tick();
        all.push(took);
        if is_snapshot { snap.push(took) } else { sim.push(took) }
    }
    report("all ticks", all);
    report("snapshot ticks", snap);
    report("sim-only ticks", sim);
    println!(
        "mean snapshot message: {:.0} bytes; replicated entities at the end: {}",
        s.mean_snapshot_bytes(),
        s.replicated()
    );
}
