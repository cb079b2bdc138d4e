//! `tickwire match`: the in-process NPC match is deterministic (same seed and build, same final
//! state hash) and seeds matter; the CLI prints the same report as one JSON object.

use std::process::Command;

use tickwire_server::matchrun::{MatchConfig, MatchReport, run_match};

fn check(npcs: usize, ticks: u64, seed: u64) -> MatchReport {
    let report = run_match(&MatchConfig { npcs, ticks, seed, tick_rate: 60 }, |_| {});
    assert_eq!(report.ticks, ticks);
    assert_eq!(report.scores.len(), npcs, "one score per NPC");
    assert_eq!(report.final_state_hash.len(), 16, "16 hex digits");
    assert!(report.ticks_per_sec > 0.0);
    report
}

#[test]
fn same_seed_same_hash() {
    let a = check(6, 1_800, 42);
    let b = check(6, 1_800, 42);
    assert_eq!(a.final_state_hash, b.final_state_hash);
    assert_eq!(a.scores, b.scores);
    assert_eq!(a.kills, b.kills);
    // Thirty seconds of six NPCs in a small arena: somebody dies.
    assert!(a.kills > 0, "no kills in {} ticks", a.ticks);
    let deaths: u64 = a.scores.iter().map(|s| u64::from(s.deaths)).sum();
    assert!(deaths >= a.kills, "every kill is a death: {deaths} deaths, {} kills", a.kills);
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
    assert_eq!(cli.scores, lib.scores);
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
}
