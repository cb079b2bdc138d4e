//! `tickwire match`: a whole match in-process, NPC players only, as fast as the CPU allows.
//!
//! No sockets, no clock: the room core ([`RoomCore`], the same one the server's room threads
//! drive) is stepped `ticks` times with no clients. The same seed and build give the same
//! [`MatchReport::final_state_hash`] (the engine's state hash), which is what determinism checks
//! compare. Any game plays: `--game NAME`.
//!
//! ```sh
//! cargo run --release -p tickwire-server -- match --bots 8 --ticks 36000 --seed 7
//! ```

use std::collections::BTreeMap;
use std::time::Instant;

use anyhow::Context as _;

use serde::{Deserialize, Serialize};
use tickwire_shared::game::{DEFAULT_NPC_COUNT, DEFAULT_TICK_RATE, Game};
use tickwire_shared::games::{self, GameVisitor, UnknownGame};
use tickwire_shared::room::{RoomCore, RoomSettings};

/// Largest `--bots`: far more NPCs than a game's spawn points only crowd them, and the bound
/// keeps a typo from allocating a huge world.
pub const MAX_MATCH_NPCS: usize = 1_024;

/// Ticks between progress callbacks: often enough for a smooth bar (about a hundred updates a
/// second at typical speeds), rare enough to cost nothing.
pub const PROGRESS_EVERY_TICKS: u64 = 1_024;

/// What to simulate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MatchConfig {
    /// The game ([`games::ALL`]).
    pub game: String,
    /// NPC players.
    pub npcs: usize,
    /// Schedule runs (ticks).
    pub ticks: u64,
    /// The game's seed.
    pub seed: u64,
    /// Simulated ticks per second (sets `dt`; it does not pace the run).
    pub tick_rate: u16,
    /// Where to write the match's recording (`tickwire replay` replays it).
    pub record: Option<std::path::PathBuf>,
}

impl Default for MatchConfig {
    fn default() -> Self {
        MatchConfig {
            game: games::default_name().to_owned(),
            npcs: DEFAULT_NPC_COUNT,
            ticks: 3_600,
            seed: 1,
            tick_rate: DEFAULT_TICK_RATE,
            record: None,
        }
    }
}

/// One competitor's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    /// Its entity id.
    pub id: u32,
    /// What it is (`npc`, a team, …).
    pub label: String,
    /// The game's columns (`kills`, `deaths`, `goals`, …).
    #[serde(flatten)]
    pub values: BTreeMap<String, i64>,
}

/// The outcome of [`run_match`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MatchReport {
    /// The game.
    pub game: String,
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
    /// The game's standing columns, in its order.
    pub columns: Vec<String>,
    /// Per competitor, in id order.
    pub standings: Vec<Standing>,
    /// Each column summed over the competitors.
    pub totals: BTreeMap<String, i64>,
    /// The engine's state hash of the final world, as 16 hex digits.
    pub final_state_hash: String,
}

/// Runs a match. `progress` is called with the ticks done so far every
/// [`PROGRESS_EVERY_TICKS`] ticks and at the end.
///
/// # Errors
///
/// When no game has the configured name, or the recording cannot be written.
pub fn run_match(config: &MatchConfig, progress: impl FnMut(u64)) -> anyhow::Result<MatchReport> {
    games::visit(&config.game, RunMatch { config, progress })?
}

struct RunMatch<'a, F> {
    config: &'a MatchConfig,
    progress: F,
}

impl<F: FnMut(u64)> GameVisitor for RunMatch<'_, F> {
    type Output = anyhow::Result<MatchReport>;

    fn visit<G: Game>(mut self) -> anyhow::Result<MatchReport> {
        let config = self.config;
        let tick_rate = config.tick_rate.max(1);
        let npcs = config.npcs.min(MAX_MATCH_NPCS);
        let settings = RoomSettings {
            id: "match".to_owned(),
            tick_rate,
            ticks_per_snapshot: 1,
            capacity: 0,
            interest_radius: 1.0,
            resume_grace_ticks: 0,
            idle_close_ticks: u64::MAX,
            npcs,
            seed: config.seed,
            max_rewind_ms: tickwire_shared::rewind::DEFAULT_MAX_REWIND_MS,
            client_kbps: 0,
        };
        let mut core = RoomCore::<G>::new(settings);
        let mut file = match &config.record {
            Some(path) => {
                let file = crate::recording::RecordingFile::create_at(path.clone())
                    .with_context(|| format!("creating {}", path.display()))?;
                let checkpoint = u64::from(tick_rate)
                    * u64::from(tickwire_shared::replay::DEFAULT_CHECKPOINT_SECS);
                core.start_recording(checkpoint, crate::recording::unix_ms())?;
                Some(file)
            }
            None => None,
        };
        let started = Instant::now();
        for done in 1..=config.ticks {
            core.step();
            // No clients: nothing is produced, but a driver drains what there is.
            while core.poll_output().is_some() {}
            if done % PROGRESS_EVERY_TICKS == 0 {
                (self.progress)(done);
                if let Some(file) = file.as_mut() {
                    // A full queue here only means the disk is slower than the simulation:
                    // a match run has no tick to keep, so it waits.
                    file.send_blocking(core.take_recording());
                }
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        if let Some(file) = file.take() {
            if let Some(why) = core.recording_failed() {
                anyhow::bail!("the recording failed: {why}");
            }
            let mut last = core.take_recording();
            last.extend(core.stop_recording("the match ended"));
            file.finish(last);
        }
        (self.progress)(config.ticks);

        let table = core.standings();
        let columns: Vec<String> = table.columns.iter().map(|c| (*c).to_owned()).collect();
        let mut totals: BTreeMap<String, i64> = columns.iter().map(|c| (c.clone(), 0)).collect();
        let standings = table
            .rows
            .into_iter()
            .map(|row| {
                let values: BTreeMap<String, i64> =
                    columns.iter().cloned().zip(row.values.iter().copied()).collect();
                for (c, v) in &values {
                    *totals.entry(c.clone()).or_default() += v;
                }
                Standing { id: row.entity.0, label: row.label, values }
            })
            .collect();
        let hash = core.state_hash();
        Ok(MatchReport {
            game: G::NAME.to_owned(),
            npcs,
            ticks: config.ticks,
            seed: config.seed,
            tick_rate,
            simulated_secs: config.ticks as f64 / f64::from(tick_rate),
            elapsed_secs: elapsed,
            ticks_per_sec: config.ticks as f64 / elapsed.max(1e-9),
            columns,
            standings,
            totals,
            final_state_hash: format!("{hash:016x}"),
        })
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

    /// The human-readable report: one line per competitor, then the totals and the hash.
    #[must_use]
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "match: {}, {} NPCs, {} ticks at {} Hz ({:.1} s of play), seed {}",
            self.game, self.npcs, self.ticks, self.tick_rate, self.simulated_secs, self.seed
        );
        let _ = write!(out, "{:>8} {:>8}", "id", "");
        for c in &self.columns {
            let _ = write!(out, " {c:>8}");
        }
        out.push('\n');
        for s in &self.standings {
            let _ = write!(out, "{:>8} {:>8}", s.id, s.label);
            for c in &self.columns {
                let _ = write!(out, " {:>8}", s.values.get(c).copied().unwrap_or(0));
            }
            out.push('\n');
        }
        let _ = write!(out, "{:>17}", "total");
        for c in &self.columns {
            let _ = write!(out, " {:>8}", self.totals.get(c).copied().unwrap_or(0));
        }
        out.push('\n');
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
    /// The game, from `tickwire games`.
    #[arg(long, default_value_t = games::default_name().to_owned(), value_parser = parse_game)]
    pub game: String,
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
    /// Write the match's recording to FILE (`tickwire replay FILE` replays it).
    #[arg(long, value_name = "FILE")]
    pub record: Option<std::path::PathBuf>,
}

/// A game name, checked against [`games::ALL`].
///
/// # Errors
///
/// When no game has that name.
pub fn parse_game(name: &str) -> Result<String, UnknownGame> {
    if games::exists(name) { Ok(name.to_owned()) } else { Err(UnknownGame(name.to_owned())) }
}

/// Below this many ticks no progress bar is shown: the run is over in well under a second.
const PROGRESS_BAR_MIN_TICKS: u64 = 100_000;

/// Runs `tickwire match` and prints its report on stdout.
///
/// # Errors
///
/// An unknown game, or a report that cannot be serialized (never in practice).
pub fn cli(args: &MatchArgs) -> anyhow::Result<()> {
    use std::io::IsTerminal as _;
    let config = MatchConfig {
        game: args.game.clone(),
        npcs: usize::try_from(args.bots).unwrap_or(MAX_MATCH_NPCS),
        ticks: args.ticks,
        seed: args.seed,
        tick_rate: args.tick_rate,
        record: args.record.clone(),
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
    let report = run_match(&config, |done| bar.set_position(done))?;
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
