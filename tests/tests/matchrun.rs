//! `tickwire match`: the in-process NPC match is deterministic (same seed and build, same final
//! state hash) and seeds matter, for every game; the CLI prints the same report as one JSON
//! object.

use std::process::Command;

use tickwire_server::matchrun::{MatchConfig, MatchReport, run_match};
use tickwire_shared::games;

fn check_game(game: &str, npcs: usize, ticks: u64, seed: u64) -> MatchReport {
    let config = MatchConfig { game: game.into(), npcs, ticks, seed, tick_rate: 60, record: None };
    let report = run_match(&config, |_| {}).expect("a known game");
    assert_eq!((report.game.as_str(), report.ticks), (game, ticks));
    assert_eq!(report.final_state_hash.len(), 16, "16 hex digits");
    assert!(report.ticks_per_sec > 0.0);
    report
}

fn check(npcs: usize, ticks: u64, seed: u64) -> MatchReport {
    let report = check_game("arena", npcs, ticks, seed);
    assert_eq!(report.standings.len(), npcs, "one line per NPC");
    report
}

#[test]
fn same_seed_same_hash() {
    let a = check(6, 1_800, 42);
    let b = check(6, 1_800, 42);
    assert_eq!(a.final_state_hash, b.final_state_hash);
    assert_eq!(a.standings, b.standings);
    // Thirty seconds of six NPCs in a small arena: somebody dies.
    let kills = a.totals["kills"];
    assert!(kills > 0, "no kills in {} ticks", a.ticks);
    assert!(a.totals["deaths"] >= kills, "every kill is a death: {:?}", a.totals);
}

/// The README's example: four NPCs, ten minutes, seed 7. The hash pins the arena's rules and
/// the engine's order of systems: a change to either shows here first.
#[test]
fn the_readme_match_is_unchanged() {
    let a = check(4, 36_000, 7);
    assert_eq!(a.final_state_hash, "92d21d90001c195a", "{}", a.to_text());
}

#[test]
fn every_game_is_deterministic_by_seed() {
    for info in games::ALL {
        let a = check_game(info.name, 4, 1_200, 5);
        let b = check_game(info.name, 4, 1_200, 5);
        let c = check_game(info.name, 4, 1_200, 6);
        assert_eq!(a.final_state_hash, b.final_state_hash, "{}", info.name);
        assert_eq!(a.standings, b.standings, "{}", info.name);
        assert_ne!(a.final_state_hash, c.final_state_hash, "{}: the seed matters", info.name);
    }
}

#[test]
fn different_seeds_different_hashes() {
    let a = check(6, 1_800, 1);
    let b = check(6, 1_800, 2);
    assert_ne!(a.final_state_hash, b.final_state_hash);
}

#[test]
fn cli_prints_the_same_report_as_json() {
    let run = |seed: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_tickwire-test-server"))
            .args(["match", "--bots", "4", "--ticks", "1200", "--seed", seed, "--json"])
            .output()
            .expect("the CLI runs");
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        assert_eq!(text.lines().count(), 1, "one JSON object on one line: {text}");
        MatchReport::from_json(&text).expect("the report parses")
    };
    let cli = run("9");
    let lib = check(4, 1_200, 9);
    assert_eq!(cli.final_state_hash, lib.final_state_hash, "same build, same seed");
    assert_eq!(cli.standings, lib.standings);
    assert_eq!(run("9").final_state_hash, cli.final_state_hash);
    assert_ne!(run("10").final_state_hash, cli.final_state_hash);
}

#[test]
fn cli_refuses_bad_flags() {
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire-test-server"))
        .args(["match", "--bots", "0", "--ticks", "10"])
        .output()
        .expect("the CLI runs");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--bots"));
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire-test-server"))
        .args(["match", "--game", "chess", "--bots", "2", "--ticks", "10"])
        .output()
        .expect("the CLI runs");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("unknown game \"chess\"") && err.contains("arena"), "{err}");
}

#[test]
fn games_lists_every_game_as_json() {
    let out = Command::new(env!("CARGO_BIN_EXE_tickwire-test-server"))
        .args(["games", "--json"])
        .output()
        .expect("the CLI runs");
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let names: Vec<&str> = games::ALL.iter().map(|g| g.name).collect();
    let want = games::ALL
        .iter()
        .map(|g| format!(r#"{{"description":"{}","name":"{}"}}"#, g.description, g.name))
        .collect::<Vec<_>>()
        .join(",");
    assert_eq!(text.trim(), format!("[{want}]"), "{names:?}");
}
