//! Match recordings on disk (`tickwire serve --record DIR`, `tickwire match --record FILE`),
//! their replay (`tickwire replay FILE`) and what the browser's replay viewer is sent.
//!
//! The room core writes the recording ([`tickwire_shared::replay`]); a room hands its bytes
//! once a second to a writer thread of its own through a bounded queue, so the tick never
//! waits on the disk. A disk that falls [`RECORD_QUEUE_CHUNKS`] seconds behind ends the
//! recording (what was written replays up to there) rather than the room's memory growing.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use anyhow::Context as _;
use serde::Serialize;
use tickwire_shared::game::Game;
use tickwire_shared::games::{self, GameVisitor};
use tickwire_shared::registry::ReplicationRegistry;
use tickwire_shared::replay::{self, Recording, ReplayObserver, ReplayReport};
use tickwire_shared::state::ReplicatedState;
use tickwire_shared::tick::Tick;

/// Chunks (a second each) waiting for the disk at the most.
pub const RECORD_QUEUE_CHUNKS: usize = 64;

/// A recording's file name ends so.
pub const EXTENSION: &str = "twrec";

/// A recording a browser may upload or have read, at the most.
pub const MAX_RECORDING_BYTES: usize = 256 << 20;

/// Positions a replay shown in the browser carries at the most: a long match is shown every
/// few ticks instead of every tick.
pub const MAX_VIEWER_POINTS: usize = 4_000_000;

/// A recording being written by its own thread.
pub struct RecordingFile {
    path: PathBuf,
    tx: Option<SyncSender<Vec<u8>>>,
    thread: Option<JoinHandle<()>>,
}

impl RecordingFile {
    /// Creates `dir/{room}-{unix_ms}.twrec` (the room id made file-safe) and its writer.
    ///
    /// # Errors
    ///
    /// When the file cannot be created.
    pub fn create(dir: &Path, room: &str, unix_ms: u64) -> std::io::Result<RecordingFile> {
        let path = dir.join(format!("{}-{unix_ms}.{EXTENSION}", file_safe(room)));
        RecordingFile::create_at(path)
    }

    /// Creates the file at `path` and its writer.
    ///
    /// # Errors
    ///
    /// When the file cannot be created.
    pub fn create_at(path: PathBuf) -> std::io::Result<RecordingFile> {
        let file = std::fs::File::create(&path)?;
        let (tx, rx) = sync_channel::<Vec<u8>>(RECORD_QUEUE_CHUNKS);
        let shown = path.display().to_string();
        let thread =
            std::thread::Builder::new().name("tickwire-record".into()).spawn(move || {
                let mut out = std::io::BufWriter::new(file);
                for chunk in rx {
                    if let Err(e) = out.write_all(&chunk) {
                        tracing::warn!(file = %shown, error = %e, "recording: write failed");
                        return;
                    }
                }
                if let Err(e) = out.flush() {
                    tracing::warn!(file = %shown, error = %e, "recording: write failed");
                }
            })?;
        Ok(RecordingFile { path, tx: Some(tx), thread: Some(thread) })
    }

    /// Where it is written.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Queues bytes for the file; `false` when the writer is behind by the whole queue or
    /// gone (the recording must then stop).
    pub fn send(&mut self, bytes: Vec<u8>) -> bool {
        if bytes.is_empty() {
            return true;
        }
        match self.tx.as_ref().map(|tx| tx.try_send(bytes)) {
            Some(Ok(())) => true,
            Some(Err(TrySendError::Full(_) | TrySendError::Disconnected(_))) | None => false,
        }
    }

    /// Queues bytes for the file, waiting for room (for drivers with no tick to keep).
    pub fn send_blocking(&mut self, bytes: Vec<u8>) {
        if let Some(tx) = self.tx.as_ref()
            && !bytes.is_empty()
        {
            let _ = tx.send(bytes);
        }
    }

    /// Queues the last bytes and waits for the writer to finish the file.
    pub fn finish(mut self, last: Vec<u8>) {
        if let Some(tx) = self.tx.take()
            && !last.is_empty()
        {
            // The last chunk may wait for room: the room is ending, and the queue is bounded.
            let _ = tx.send(last);
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for RecordingFile {
    fn drop(&mut self) {
        self.tx.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Milliseconds since the Unix epoch (a recording's start, its file name).
#[must_use]
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `room` with everything but letters, digits, `-` and `_` made `_`, at most 64 characters.
#[must_use]
pub fn file_safe(room: &str) -> String {
    room.chars()
        .take(64)
        .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect()
}

/// A recording in the directory, for the viewer's list.
#[derive(Serialize, Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its file name.
    pub name: String,
    /// Its size.
    pub bytes: u64,
}

/// The recordings in `dir`, newest name last.
#[must_use]
pub fn list(dir: &Path) -> Vec<Listed> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<Listed> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let bytes = e.metadata().ok()?.len();
            name.ends_with(&format!(".{EXTENSION}")).then_some(Listed { name, bytes })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// The recording `name` of `dir`, if `name` is a plain recording file name there (no path).
#[must_use]
pub fn resolve(dir: &Path, name: &str) -> Option<PathBuf> {
    let plain = !name.is_empty()
        && name.len() <= 200
        && name.ends_with(&format!(".{EXTENSION}"))
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    plain.then(|| dir.join(name))
}

/// Replays a recording with the game it names.
///
/// # Errors
///
/// A game this build does not have, or one of [`replay::ReplayError`].
pub fn replay_bytes(
    bytes: &[u8],
    observer: &mut dyn ReplayObserver,
) -> anyhow::Result<(Recording, ReplayReport)> {
    let recording = Recording::parse(bytes)?;
    let report = games::visit(&recording.header.game, Visit { recording: &recording, observer })??;
    Ok((recording, report))
}

struct Visit<'a> {
    recording: &'a Recording,
    observer: &'a mut dyn ReplayObserver,
}

impl GameVisitor for Visit<'_> {
    type Output = Result<ReplayReport, replay::ReplayError>;

    fn visit<G: Game>(self) -> Self::Output {
        replay::replay::<G>(self.recording, self.observer)
    }
}

/// A replay as the browser viewer plays it: the report, and where every entity was.
#[derive(Serialize, Debug)]
pub struct Viewer {
    /// What the replay found.
    pub report: ReplayReport,
    /// Ticks between two frames (1 unless the match is long).
    pub stride: u32,
    /// Every `stride` ticks: the tick and each positioned entity's `[id, x, y, kind]`, `kind`
    /// being which of `kinds` its set of components is.
    pub frames: Vec<(u32, Vec<[f32; 4]>)>,
    /// The sets of replicated components entities had (their presence masks' names): the
    /// viewer colours each set its own way, so any game shows without a renderer.
    pub kinds: Vec<Vec<String>>,
    /// The world's extent: `[min x, min y, max x, max y]` over every frame.
    pub bounds: [f32; 4],
}

/// Collects [`Viewer`] frames while a recording replays.
struct Frames {
    stride: u32,
    frames: Vec<(u32, Vec<[f32; 4]>)>,
    masks: Vec<u32>,
    names: Vec<String>,
    bounds: [f32; 4],
}

impl ReplayObserver for Frames {
    fn after_step(&mut self, tick: Tick, registry: &ReplicationRegistry, state: &ReplicatedState) {
        if self.names.is_empty() {
            self.names = registry.layout().map(|(i, _, _)| registry.name(i).to_owned()).collect();
        }
        if !tick.0.is_multiple_of(self.stride) {
            return;
        }
        let mut points = Vec::new();
        for e in state.iter() {
            let Some(p) = registry.position(e) else { continue };
            let mask = e.mask & !registry.motion_index().map_or(0, |m| 1 << m.0);
            let kind = match self.masks.iter().position(|&m| m == mask) {
                Some(k) => k,
                None => {
                    self.masks.push(mask);
                    self.masks.len() - 1
                }
            };
            self.bounds = [
                self.bounds[0].min(p.x),
                self.bounds[1].min(p.y),
                self.bounds[2].max(p.x),
                self.bounds[3].max(p.y),
            ];
            points.push([e.id.0 as f32, round1(p.x), round1(p.y), kind as f32]);
        }
        self.frames.push((tick.0, points));
    }
}

fn round1(v: f32) -> f32 {
    (v * 10.0).round() / 10.0
}

/// Replays a recording for the browser viewer.
///
/// # Errors
///
/// See [`replay_bytes`].
pub fn viewer(bytes: &[u8]) -> anyhow::Result<Viewer> {
    let recording = Recording::parse(bytes)?;
    let (_, steps) = recording.ticks();
    // Entities a tick, guessed from the first checkpoint, bound the frames kept.
    let entities = recording
        .entries
        .iter()
        .find_map(|e| match e {
            replay::Entry::Checkpoint { world, .. } => Some(world.entities.len()),
            _ => None,
        })
        .unwrap_or(1)
        .max(1);
    let every = (steps as usize * entities).div_ceil(MAX_VIEWER_POINTS).max(1);
    let mut frames = Frames {
        stride: u32::try_from(every).unwrap_or(u32::MAX),
        frames: Vec::new(),
        masks: Vec::new(),
        names: Vec::new(),
        bounds: [f32::MAX, f32::MAX, f32::MIN, f32::MIN],
    };
    let report = games::visit(
        &recording.header.game,
        Visit { recording: &recording, observer: &mut frames },
    )??;
    let kinds = frames
        .masks
        .iter()
        .map(|m| {
            frames
                .names
                .iter()
                .enumerate()
                .filter(|(i, _)| m & (1 << i) != 0)
                .map(|(_, n)| n.clone())
                .collect()
        })
        .collect();
    if frames.frames.iter().all(|(_, p)| p.is_empty()) {
        frames.bounds = [0.0; 4];
    }
    Ok(Viewer {
        report,
        stride: frames.stride,
        frames: frames.frames,
        kinds,
        bounds: frames.bounds,
    })
}

/// `tickwire replay` flags.
#[derive(clap::Args, Debug, Clone)]
pub struct ReplayArgs {
    /// The recording (`serve --record DIR` writes one per room, `match --record FILE` one).
    pub file: PathBuf,
    /// Print one JSON object instead of the summary.
    #[arg(long)]
    pub json: bool,
}

/// `tickwire replay`: replays a recording and prints what it found. Exits with an error when
/// the replay parted from the recording (after printing where).
///
/// # Errors
///
/// An unreadable file, a recording this build cannot replay, or a divergence.
pub fn cli(args: &ReplayArgs) -> anyhow::Result<()> {
    let bytes = read_bounded(&args.file)?;
    let (_, report) = replay_bytes(&bytes, &mut ())
        .with_context(|| format!("replaying {}", args.file.display()))?;
    let text = if args.json { serde_json::to_string(&report)? + "\n" } else { to_text(&report) };
    crate::bots::print_stdout(&text);
    if let Some(d) = &report.divergence {
        anyhow::bail!("the replay parted from the recording at tick {}", d.tick);
    }
    Ok(())
}

/// Reads a recording, refusing one over [`MAX_RECORDING_BYTES`].
///
/// # Errors
///
/// When the file cannot be read or is too large.
pub fn read_bounded(path: &Path) -> anyhow::Result<Vec<u8>> {
    let size =
        std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?.len();
    if size > MAX_RECORDING_BYTES as u64 {
        anyhow::bail!(
            "{} is {size} bytes, over the {MAX_RECORDING_BYTES} a recording may be",
            path.display()
        );
    }
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// The human summary of a replay.
#[must_use]
pub fn to_text(r: &ReplayReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "replay: {} room {:?}, seed {}, {} ticks at {} Hz from tick {} ({:.1} s), {} bytes{}",
        r.game,
        r.room,
        r.seed,
        r.ticks,
        r.tick_rate,
        r.first_tick,
        r.ticks as f64 / f64::from(r.tick_rate.max(1)),
        r.bytes,
        if r.complete { "" } else { " (cut short: replayed up to its last whole frame)" }
    );
    let names: Vec<String> = r.players.iter().map(|(id, n)| format!("{n} ({id})")).collect();
    let _ = writeln!(
        out,
        "players joined: {}; input changes: {}; checkpoints compared: {}",
        if names.is_empty() { "none".to_owned() } else { names.join(", ") },
        r.inputs,
        r.checkpoints
    );
    let matched = r.intervals.iter().filter(|p| p.recorded == p.replayed).count();
    let _ = writeln!(out, "hashes each second: {matched} of {} equal", r.intervals.len());
    if let Some(last) = &r.last {
        let _ = writeln!(
            out,
            "last tick {}: recorded {} replayed {}",
            last.tick, last.recorded, last.replayed
        );
    }
    match &r.divergence {
        None => {
            let _ = writeln!(out, "the replay matches the recording at every tick");
        }
        Some(d) => {
            let _ = writeln!(out, "DIVERGED at tick {}", d.tick);
            for c in &d.components {
                let _ = writeln!(out, "  {}", c.detail);
            }
            if let Some((tick, diffs)) = &d.checkpoint {
                let _ =
                    writeln!(out, "at the checkpoint of tick {tick}, {} differences:", diffs.len());
                for x in diffs.iter().take(40) {
                    let _ = writeln!(out, "  {}: {}", x.component, x.detail);
                }
            }
        }
    }
    out
}
