//! Snapshot sizes in the room scenario: bits per entity of a full snapshot, and bits per
//! changed entity of a one-interval delta (two ticks at 60 Hz, as clients get at 30 snapshots/s),
//! for all entities and by kind.
//!
//! Run: `cargo run --release -p tickwire-benches --example snapshot_sizes`
//! It prints one line per group: entities, changed entities, full bits per entity, delta bits
//! per changed entity (id gaps included; the body's end marker spread over them).

use tickwire_benches::{RoomScenario, ScenarioConfig};
use tickwire_shared::bits::BitWriter;
use tickwire_shared::game;
use tickwire_shared::games::arena::{ArenaGame, Kind};
use tickwire_shared::snapshot::{self, ReplicatedState};

fn report(label: &str, base: &ReplicatedState, cur: &ReplicatedState) {
    let reg = game::registry::<ArenaGame>();
    let mut w = BitWriter::default();
    snapshot::encode_full(&reg, cur.iter(), &mut w);
    let full_bits = w.bit_len();
    let mut w = BitWriter::default();
    snapshot::encode_delta(&reg, base.iter(), cur.iter(), &mut w);
    let delta_bits = w.bit_len();
    let changed = cur.iter().filter(|e| base.get(e.id).is_none_or(|b| b != *e)).count();
    println!(
        "{label:>12}: {:>5} entities, {:>5} changed; full {:>5.1} bits/entity; delta {:>5.1} bits/changed entity",
        cur.len(),
        changed,
        full_bits as f64 / cur.len().max(1) as f64,
        delta_bits as f64 / changed.max(1) as f64,
    );
}

fn main() {
    let config = ScenarioConfig { n_players: 64, n_npcs: 32, n_drifters: 900 };
    let mut s = RoomScenario::new(config, 120);
    let reg = game::registry::<ArenaGame>();
    let base = reg.capture(s.room.core_mut().world_mut());
    s.tick();
    s.tick();
    let cur = reg.capture(s.room.core_mut().world_mut());
    report("all", &base, &cur);
    for kind in [Kind::Player, Kind::Npc, Kind::Projectile] {
        let ids: Vec<_> = cur
            .iter()
            .filter(|e| reg.get::<Kind>(*e) == Some(kind) && base.get(e.id).is_some())
            .map(|e| e.id)
            .collect();
        report(&format!("{kind:?}"), &base.subset(&ids), &cur.subset(&ids));
    }
}
