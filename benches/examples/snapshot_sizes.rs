//! Snapshot sizes in the room scenario: bits per entity of a full snapshot, and bits per
//! changed entity of a delta one snapshot interval back (two ticks at 60 Hz, as clients get at
//! 30 snapshots/s) and six ticks back (a baseline 100 ms old, as a client 100 ms away
//! acknowledges), for all entities and by kind.
//!
//! Run: `cargo run --release -p tickwire-benches --example snapshot_sizes [-- PLAYERS NPCS
//! DRIFTERS]` (default 64 32 900).
//!
//! The states are captured every tick and given their motion as the room gives it
//! ([`motion::estimate`]); each delta is taken against the baseline moved on by its motion
//! ([`motion::predicted`]), as the room and its clients take it. The `plain` columns are the
//! same deltas against the baseline as it is (the format before motion). Id gaps are included;
//! the body's end marker is spread over the entities.

use tickwire_benches::{RoomScenario, ScenarioConfig};
use tickwire_shared::bits::BitWriter;
use tickwire_shared::game;
use tickwire_shared::games::arena::{ArenaGame, Kind};
use tickwire_shared::motion;
use tickwire_shared::registry::ReplicationRegistry;
use tickwire_shared::snapshot::{self, ReplicatedState};
use tickwire_shared::{NetId, Tick};

/// Ticks the states span: the newest is compared with the ones `BACKS` before it.
const TICKS: usize = 8;
const BACKS: [usize; 2] = [2, 6];

fn delta_bits(reg: &ReplicationRegistry, base: &ReplicatedState, cur: &ReplicatedState) -> usize {
    let mut w = BitWriter::default();
    snapshot::encode_delta(reg, base.iter(), cur.iter(), &mut w);
    w.bit_len()
}

fn report(label: &str, states: &[ReplicatedState], ids: Option<&[NetId]>) {
    let reg = game::registry::<ArenaGame>();
    let pick = |s: &ReplicatedState| ids.map_or_else(|| s.clone(), |ids| s.subset(ids));
    let cur = pick(&states[TICKS]);
    let mut w = BitWriter::default();
    snapshot::encode_full(&reg, cur.iter(), &mut w);
    let mut line = format!(
        "{label:>12}: {:>5} entities; full {:>5.1} bits/entity",
        cur.len(),
        w.bit_len() as f64 / cur.len().max(1) as f64
    );
    for back in BACKS {
        let base = pick(&states[TICKS - back]);
        let changed = cur.iter().filter(|e| base.get(e.id).is_none_or(|b| b != *e)).count();
        let predicted = motion::predicted(&reg, &base, back as u32);
        let with_motion = delta_bits(&reg, predicted.as_ref().unwrap_or(&base), &cur);
        let plain = delta_bits(&reg, &base, &cur);
        let per = |bits: usize| bits as f64 / changed.max(1) as f64;
        line += &format!(
            "; {back} back: {changed:>5} changed, {:>5.1} bits/changed (plain {:>5.1})",
            per(with_motion),
            per(plain)
        );
    }
    println!("{line}");
}

fn main() {
    let args: Vec<usize> =
        std::env::args().skip(1).map(|a| a.parse().expect("numeric arguments")).collect();
    let get = |i: usize, default: usize| args.get(i).copied().unwrap_or(default);
    let config =
        ScenarioConfig { n_players: get(0, 64), n_npcs: get(1, 32), n_drifters: get(2, 900) };
    let mut s = RoomScenario::new(config, 120);
    let reg = game::registry::<ArenaGame>();
    let mut states: Vec<ReplicatedState> = Vec::new();
    for t in 0..=TICKS {
        let mut state = reg.capture(s.room.core_mut().world_mut());
        let back = |n: usize| {
            let i = states.len().checked_sub(n)?;
            Some((Tick(i as u32), &states[i]))
        };
        motion::estimate(&reg, back(1), back(2), Tick(t as u32), &mut state);
        states.push(state);
        if t < TICKS {
            s.tick();
        }
    }
    report("all", &states, None);
    for kind in [Kind::Player, Kind::Npc, Kind::Projectile] {
        let first = &states[TICKS - BACKS[BACKS.len() - 1]];
        let ids: Vec<_> = states[TICKS]
            .iter()
            .filter(|e| reg.get::<Kind>(*e) == Some(kind) && first.get(e.id).is_some())
            .map(|e| e.id)
            .collect();
        report(&format!("{kind:?}"), &states, Some(&ids));
    }
}
