//! `tickwire match`: a whole match in-process, NPC players only, as fast as the CPU allows.
//!
//! No room, no sockets, no clock in the simulation: the game's schedule is run `ticks` times on
//! one `World` set up by [`game::install`], and the game events are drained after every run
//! (as a room would) so memory stays flat however long the match. The same seed and build give
//! the same [`MatchReport::final_state_hash`] (the game's [`game::state_hash`]), which is what
//! determinism checks compare.
//!
//! ```sh
//! cargo run --release -p tickwire-server -- match --bots 8 --ticks 36000 --seed 7
//! ```

use std::time::Instant;

use bevy_ecs::prelude::*;
use serde::{Deserialize, Serialize};
use tickwire_shared::NetId;
use tickwire_shared::game::{self, GameConfig, GameEvents, Kind, Score};
use tickwire_shared::protocol::GameEvent;

/// Largest `--bots`: the arena has eight spawn points; far more NPCs than that only crowd them,
/// and the bound keeps a typo from allocating a huge world.
pub const MAX_MATCH_NPCS: usize = 1_024;

/// Ticks between progress callbacks: often enough for a smooth bar (about a hundred updates a
/// second at typical speeds), rare enough to cost nothing.
pub const PROGRESS_EVERY_TICKS: u64 = 1_024;

/// What to simulate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchConfig {
    /// NPC players.
    pub npcs: usize,
    /// Schedule runs (ticks).
    pub ticks: u64,
    /// The game's seed.
    pub seed: u64,
    /// Simulated ticks per second (sets `dt`; it does not pace the run).
    pub tick_rate: u16,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig { npcs: game::DEFAULT_NPC_COUNT, ticks: 3_600, seed: 1, tick_rate: 60 }
    }
}

/// One NPC's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NpcScore {
    /// Its entity id.
    pub id: u32,
    /// Kills (from the replicated [`Score`]).
    pub kills: u16,
    /// Deaths (from the replicated [`Score`]).
    pub deaths: u16,
}

/// The outcome of [`run_match`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchReport {
    /// NPC players.
    pub npcs: usize,
    /// Ticks simulated.
    pub ticks: u64,
    /// The game's seed.
    pub seed: u64,
    /// Simulated ticks per second.
    pub tick_rate: u16,
    /// Simulated match time, in seconds (`ticks / tick_rate`).
    pub simulated_secs: f64,
    /// Wall-clock time of the simulation (setup excluded), in seconds.
    pub elapsed_secs: f64,
    /// Ticks per wall-clock second achieved.
    pub ticks_per_sec: f64,
    /// Kill events seen over the match.
    pub kills: u64,
    /// Per NPC, in id order.
    pub scores: Vec<NpcScore>,
    /// [`game::state_hash`] of the final world, as 16 hex digits.
    pub final_state_hash: String,
}

/// Runs a match. `progress` is called with the ticks done so far every
/// [`PROGRESS_EVERY_TICKS`] ticks and at the end.
pub fn run_match(config: &MatchConfig, mut progress: impl FnMut(u64)) -> MatchReport {
    let game_config = GameConfig {
        tick_rate: config.tick_rate.max(1),
        npc_count: config.npcs.min(MAX_MATCH_NPCS),
        seed: config.seed,
        ..GameConfig::default()
    };
    let mut world = World::new();
    let mut schedule = Schedule::default();
    game::install(&mut world, &mut schedule, &game_config);

    let mut kills = 0u64;
    let started = Instant::now();
    for done in 1..=config.ticks {
        schedule.run(&mut world);
        // Drain the events like a room does, so they do not pile up.
        let mut events = world.resource_mut::<GameEvents>();
        kills += events.0.iter().filter(|e| matches!(e, GameEvent::Killed { .. })).count() as u64;
        events.0.clear();
        if done % PROGRESS_EVERY_TICKS == 0 {
            progress(done);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    progress(config.ticks);

    let mut scores: Vec<NpcScore> = world
        .query::<(&NetId, &Kind, &Score)>()
        .iter(&world)
        .filter(|(_, kind, _)| **kind == Kind::Npc)
        .map(|(id, _, s)| NpcScore { id: id.0, kills: s.kills, deaths: s.deaths })
        .collect();
    scores.sort_by_key(|s| s.id);
    let hash = game::state_hash(&mut world);
    let tick_rate = game_config.tick_rate;
    MatchReport {
        npcs: game_config.npc_count,
        ticks: config.ticks,
        seed: config.seed,
        tick_rate,
        simulated_secs: config.ticks as f64 / f64::from(tick_rate),
        elapsed_secs: elapsed,
        ticks_per_sec: config.ticks as f64 / elapsed.max(1e-9),
        kills,
        scores,
        final_state_hash: format!("{hash:016x}"),
    }
}

impl MatchReport {
    /// Parses the output of `tickwire match --json`.
    ///
    /// # Errors
    ///
    /// When the text is not such a report.
    pub fn from_json(text: &str) -> Result<MatchReport, serde_json::Error> {
        serde_json::from_str(text)
    }

    /// The human-readable report: one line per NPC, then the totals and the hash.
    #[must_use]
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "match: {} NPCs, {} ticks at {} Hz ({:.1} s of play), seed {}",
            self.npcs, self.ticks, self.tick_rate, self.simulated_secs, self.seed
        );
        let _ = writeln!(out, "{:>8} {:>6} {:>6}", "npc", "kills", "deaths");
        for s in &self.scores {
            let _ = writeln!(out, "{:>8} {:>6} {:>6}", s.id, s.kills, s.deaths);
        }
        let _ = writeln!(out, "kills: {}", self.kills);
        let _ = writeln!(
            out,
            "ticks per second: {:.0} ({:.3} s wall clock)",
            self.ticks_per_sec, self.elapsed_secs
        );
        let _ = writeln!(out, "final_state_hash: {}", self.final_state_hash);
        out
    }
}

/// `tickwire match` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct MatchArgs {
    /// NPC players in the match.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=MAX_MATCH_NPCS as u64))]
    pub bots: u64,
    /// Ticks to simulate.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub ticks: u64,
    /// The game's seed: same seed and build, same final state hash.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated ticks per second (only sets the time step; the run is not paced).
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u16).range(1..))]
    pub tick_rate: u16,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Below this many ticks no progress bar is shown: the run is over in well under a second.
const PROGRESS_BAR_MIN_TICKS: u64 = 100_000;

/// Runs `tickwire match` and prints its report on stdout.
///
/// # Errors
///
/// When the report cannot be serialized (never in practice).
pub fn cli(args: &MatchArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let config = MatchConfig {
        npcs: usize::try_from(args.bots).unwrap_or(MAX_MATCH_NPCS),
        ticks: args.ticks,
        seed: args.seed,
        tick_rate: args.tick_rate,
    };
    let bar = if args.ticks >= PROGRESS_BAR_MIN_TICKS && std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(args.ticks);
        if let Ok(style) = indicatif::ProgressStyle::with_template(
            "{spinner} match {bar:40} {pos}/{len} ticks ({per_sec}, eta {eta})",
        ) {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    let report = run_match(&config, |done| bar.set_position(done));
    bar.finish_and_clear();
    let text = if args.json {
        let mut s = serde_json::to_string(&report)?;
        s.push('\n');
        s
    } else {
        report.to_text()
    };
    crate::bots::print_stdout(&text);
    Ok(())
}
