//! Match recordings, replays and desync bisection.
//!
//! A room that records ([`crate::room::RoomCore::start_recording`]) writes everything that
//! changes its world from outside its schedule, at the point it happens: players spawned and
//! despawned, the input each player's entity was given at each tick (only when it changed) and
//! the view lag the engine set, inputs applied between ticks (a join's, a disconnect's). It
//! adds the engine's state hash after every tick ([`crate::game::state_hash`]), a small sketch
//! per replicated component that names the entity whose component changed ([`Sketch`]), and
//! every few seconds an exact save of the world ([`crate::persist`]) as a checkpoint.
//!
//! [`replay`] runs the recording again in a room of the same game with no clients: the same
//! world mutations at the same points, the game's schedule in between. A build whose rules
//! agree reproduces every hash. One that does not is stopped at the first tick whose hash
//! differs, and the sketches name the component and the entity that parted there; at the next
//! checkpoint the whole world is compared, server-only components too.
//!
//! The file is `MAGIC`, then frames: a little-endian `u32` length and that many bytes of
//! bincode (the [`Header`] first, then lists of [`Entry`]). A recording cut short (a crash, a
//! full disk) still replays up to its last whole frame.

use std::collections::HashMap;

use bevy_ecs::prelude::*;
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::fnv::Fnv64;
use crate::game::{self, Game};
use crate::ids::NetId;
use crate::persist::{self, PersistError, Persistence, WorldSave};
use crate::registry::ReplicationRegistry;
use crate::rewind::ViewLag;
use crate::room::{RoomCore, RoomSave, RoomSettings, SAVE_FORMAT};
use crate::state::ReplicatedState;
use crate::tick::Tick;

/// The first bytes of a recording.
pub const MAGIC: &[u8; 8] = b"TWREPLAY";

/// The recording format this build writes and reads.
pub const RECORDING_FORMAT: u32 = 1;

/// Entries gathered before they are framed (a frame is about a second of a busy room).
const ENTRIES_PER_FRAME: usize = 64;

/// Bytes a recorder holds for its driver at the most: a driver that stops taking them
/// ([`crate::room::RoomCore::take_recording`]) ends the recording instead of growing memory.
pub const MAX_UNTAKEN_BYTES: usize = 16 << 20;

/// Checkpoints every this many seconds by default.
pub const DEFAULT_CHECKPOINT_SECS: u32 = 10;

/// What a recording is of.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Header {
    /// [`RECORDING_FORMAT`].
    pub format: u32,
    /// The game ([`Game::NAME`]).
    pub game: String,
    /// The room's settings (its seed among them).
    pub settings: RoomSettings,
    /// The replicated components, in registry order (what [`Sketch`]es are indexed by).
    pub components: Vec<String>,
    /// Ticks between two checkpoints.
    pub checkpoint_every: u64,
    /// When the recording started, in milliseconds since the Unix epoch (the driver's clock).
    pub started_unix_ms: u64,
}

/// One thing that happened to the world, in order.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub enum Entry {
    /// A player joined and was spawned under this name (the game gave it this id).
    Spawn {
        /// Its name in the room.
        name: String,
        /// The id it was given.
        entity: NetId,
    },
    /// A player was despawned between ticks (it left for good).
    Despawn {
        /// Its entity.
        entity: NetId,
    },
    /// An input applied between ticks (a join's or a disconnect's default input).
    Apply {
        /// The player's entity.
        entity: NetId,
        /// The input, encoded.
        input: Vec<u8>,
    },
    /// One tick.
    Step(StepRecord),
    /// The whole world, exactly, after the step before it (or at the start).
    Checkpoint {
        /// The tick.
        tick: Tick,
        /// The world.
        world: WorldSave,
    },
    /// The recording ended cleanly.
    End {
        /// Why (the room closed, it was handed off, the match ended).
        reason: String,
    },
}

/// One tick of a recording.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Default)]
pub struct StepRecord {
    /// The entities whose inputs this tick applied, in order, when that changed.
    pub players: Option<Vec<NetId>>,
    /// Inputs that changed, by place in the players' list (encoded).
    pub inputs: Vec<(u16, Vec<u8>)>,
    /// View lags that changed, by place in the players' list.
    pub lags: Vec<(u16, f32)>,
    /// Players whose resume grace ran out in this tick (despawned after the schedule).
    pub expired: Vec<NetId>,
    /// [`crate::game::state_hash`] after the tick, little-endian.
    pub hash: [u8; 8],
    /// Sketches that changed, by component index.
    pub sketches: Vec<(u8, Sketch)>,
}

/// Three sums over the entities carrying one replicated component, of a hash of each one's
/// id and quantized fields: plain, times the id, and times the id squared (wrapping, 32
/// bits). Two sketches that differ by one entity's value give that entity's id back
/// ([`Sketch::single_difference`]); the third sum tells one entity from several.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Sketch(pub [u8; 12]);

impl Sketch {
    fn sums(self) -> [u32; 3] {
        let w =
            |i: usize| u32::from_le_bytes(self.0[i * 4..i * 4 + 4].try_into().unwrap_or([0; 4]));
        [w(0), w(1), w(2)]
    }

    fn from_sums(sums: [u32; 3]) -> Sketch {
        let mut out = [0u8; 12];
        for (i, s) in sums.iter().enumerate() {
            out[i * 4..i * 4 + 4].copy_from_slice(&s.to_le_bytes());
        }
        Sketch(out)
    }

    /// The id of the one entity whose value makes `self` differ from `other`, if one entity
    /// explains the difference (an entity present in only one counts as one).
    #[must_use]
    pub fn single_difference(self, other: Sketch) -> Option<NetId> {
        let [a0, a1, a2] = self.sums();
        let [b0, b1, b2] = other.sums();
        let (d0, d1, d2) = (a0.wrapping_sub(b0), a1.wrapping_sub(b1), a2.wrapping_sub(b2));
        if d0 == 0 {
            return None;
        }
        // d1 = id·d0 (mod 2³²): divide out d0's factors of two, then invert its odd part.
        let k = d0.trailing_zeros();
        let odd = d0 >> k;
        let mut inverse: u32 = 1;
        for _ in 0..5 {
            inverse = inverse.wrapping_mul(2u32.wrapping_sub(odd.wrapping_mul(inverse)));
        }
        let bits = 32 - k;
        let mask = if bits == 32 { u32::MAX } else { (1u32 << bits) - 1 };
        let id = ((d1 >> k).wrapping_mul(inverse)) & mask;
        let ok = id.wrapping_mul(d0) == d1 && id.wrapping_mul(id).wrapping_mul(d0) == d2;
        ok.then_some(NetId(id))
    }
}

/// The engine's state hash and one [`Sketch`] per replicated component (the hidden motion's
/// is left zero, as the hash leaves it out) of a captured state.
#[must_use]
pub fn fingerprint(registry: &ReplicationRegistry, state: &ReplicatedState) -> (u64, Vec<Sketch>) {
    let motion = registry.motion_index();
    let mut sums = vec![[0u32; 3]; registry.len()];
    for e in state.iter() {
        let id = e.id.0;
        for (idx, offset, fields) in registry.layout() {
            if Some(idx) == motion || e.mask & (1 << idx.0) == 0 {
                continue;
            }
            let mut h = Fnv64::new();
            h.eat(&[idx.0]);
            h.eat(&id.to_le_bytes());
            for f in &e.fields[offset..offset + fields.len()] {
                h.eat(&f.to_le_bytes());
            }
            let h = h.finish() as u32;
            let s = &mut sums[usize::from(idx.0)];
            s[0] = s[0].wrapping_add(h);
            s[1] = s[1].wrapping_add(id.wrapping_mul(h));
            s[2] = s[2].wrapping_add(id.wrapping_mul(id).wrapping_mul(h));
        }
    }
    (game::hash_state(registry, state), sums.into_iter().map(Sketch::from_sums).collect())
}

/// Writes a room's recording: the room calls it at each point its world is changed from
/// outside (see the [module documentation](self)).
#[derive(Debug)]
pub(crate) struct Recorder {
    /// Framed bytes the driver has not taken yet.
    out: Vec<u8>,
    pending: Vec<Entry>,
    step: StepRecord,
    players: Vec<NetId>,
    inputs: Vec<Vec<u8>>,
    lags: Vec<f32>,
    sketches: Vec<Sketch>,
    /// Whether the next step writes everything (after a checkpoint: a replay may start there).
    full: bool,
    checkpoint_every: u64,
    since_checkpoint: u64,
    /// Why the recording stopped early.
    pub(crate) failed: Option<String>,
}

impl Recorder {
    pub(crate) fn new(header: &Header) -> Result<Recorder, PersistError> {
        let mut out = MAGIC.to_vec();
        push_frame(&mut out, &persist::encode(header)?);
        Ok(Recorder {
            out,
            pending: Vec::new(),
            step: StepRecord::default(),
            players: Vec::new(),
            inputs: Vec::new(),
            lags: Vec::new(),
            sketches: Vec::new(),
            full: true,
            checkpoint_every: header.checkpoint_every.max(1),
            since_checkpoint: 0,
            failed: None,
        })
    }

    pub(crate) fn push(&mut self, entry: Entry) {
        if self.failed.is_some() {
            return;
        }
        self.pending.push(entry);
        if self.pending.len() >= ENTRIES_PER_FRAME {
            self.frame();
        }
    }

    pub(crate) fn checkpoint(&mut self, tick: Tick, world: WorldSave) {
        self.push(Entry::Checkpoint { tick, world });
        self.full = true;
        self.since_checkpoint = 0;
    }

    /// Whether the step just recorded ends where a checkpoint is due.
    pub(crate) fn checkpoint_due(&self) -> bool {
        self.since_checkpoint >= self.checkpoint_every
    }

    /// The inputs the step applies: `(entity, encoded input, view lag)` in order.
    pub(crate) fn inputs(&mut self, applied: Vec<(NetId, Vec<u8>, f32)>) {
        let players: Vec<NetId> = applied.iter().map(|a| a.0).collect();
        let full = self.full || players != self.players;
        if full {
            self.step.players = Some(players.clone());
            self.players = players;
            self.inputs.clear();
            self.lags.clear();
        }
        for (i, (_, input, lag)) in applied.into_iter().enumerate() {
            let at = i as u16;
            if full {
                self.step.inputs.push((at, input.clone()));
                self.step.lags.push((at, lag));
                self.inputs.push(input);
                self.lags.push(lag);
                continue;
            }
            if self.inputs[i] != input {
                self.step.inputs.push((at, input.clone()));
                self.inputs[i] = input;
            }
            if self.lags[i].to_bits() != lag.to_bits() {
                self.step.lags.push((at, lag));
                self.lags[i] = lag;
            }
        }
    }

    pub(crate) fn expired(&mut self, entity: NetId) {
        self.step.expired.push(entity);
    }

    /// Ends the step with the world's fingerprint.
    pub(crate) fn end_step(&mut self, hash: u64, sketches: Vec<Sketch>) {
        let mut step = std::mem::take(&mut self.step);
        step.hash = hash.to_le_bytes();
        let full =
            std::mem::replace(&mut self.full, false) || self.sketches.len() != sketches.len();
        for (i, s) in sketches.iter().enumerate() {
            if full || self.sketches[i] != *s {
                step.sketches.push((i as u8, *s));
            }
        }
        self.sketches = sketches;
        self.since_checkpoint += 1;
        self.push(Entry::Step(step));
    }

    fn frame(&mut self) {
        if self.pending.is_empty() || self.failed.is_some() {
            return;
        }
        match persist::encode(&self.pending) {
            Ok(bytes) => push_frame(&mut self.out, &bytes),
            Err(e) => self.failed = Some(e.to_string()),
        }
        self.pending.clear();
        if self.out.len() > MAX_UNTAKEN_BYTES {
            self.failed = Some(format!(
                "over {MAX_UNTAKEN_BYTES} bytes waited to be written: the recording stopped"
            ));
        }
    }

    /// The bytes framed so far (every pending entry framed first).
    pub(crate) fn take(&mut self) -> Vec<u8> {
        self.frame();
        std::mem::take(&mut self.out)
    }
}

fn push_frame(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    out.extend_from_slice(bytes);
}

/// Why a recording cannot be replayed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ReplayError {
    /// Not a recording.
    #[error("not a Tickwire recording (it does not start with {MAGIC:?})")]
    NotARecording,
    /// Of another format.
    #[error("recording format {0} is not one this build reads (it reads {RECORDING_FORMAT})")]
    Format(u32),
    /// A frame does not decode.
    #[error("the recording is damaged: {0}")]
    Damaged(String),
    /// It does not start with a checkpoint.
    #[error("the recording has no starting checkpoint")]
    NoStart,
    /// Its game is not this one.
    #[error("the recording is of game {recorded:?}, not {here:?}")]
    Game {
        /// The recording's.
        recorded: String,
        /// The replayer's.
        here: String,
    },
    /// Its world does not load in this build.
    #[error("the recording's world does not load: {0}")]
    Load(#[from] PersistError),
}

/// A recording read whole.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    /// What it is of.
    pub header: Header,
    /// Everything that happened, in order.
    pub entries: Vec<Entry>,
    /// Whether it ends with [`Entry::End`] (else it was cut short, and replays up to its last
    /// whole frame).
    pub complete: bool,
    /// Its size.
    pub bytes: usize,
}

impl Recording {
    /// Reads a recording. A last frame cut short is left out (`complete` is then false).
    ///
    /// # Errors
    ///
    /// When the bytes are not a recording of this format.
    pub fn parse(bytes: &[u8]) -> Result<Recording, ReplayError> {
        let rest = bytes.strip_prefix(MAGIC.as_slice()).ok_or(ReplayError::NotARecording)?;
        let mut frames = Frames(rest);
        let first = frames.next().ok_or_else(|| ReplayError::Damaged("no header".into()))?;
        let header: Header =
            persist::decode(first).map_err(|e| ReplayError::Damaged(e.to_string()))?;
        if header.format != RECORDING_FORMAT {
            return Err(ReplayError::Format(header.format));
        }
        let mut entries = Vec::new();
        for frame in frames.by_ref() {
            let list: Vec<Entry> =
                persist::decode(frame).map_err(|e| ReplayError::Damaged(e.to_string()))?;
            entries.extend(list);
        }
        let complete = frames.0.is_empty() && matches!(entries.last(), Some(Entry::End { .. }));
        Ok(Recording { header, entries, complete, bytes: bytes.len() })
    }

    /// The recording's ticks: from its first checkpoint's to its last step's.
    #[must_use]
    pub fn ticks(&self) -> (Tick, u64) {
        let start = self
            .entries
            .iter()
            .find_map(|e| match e {
                Entry::Checkpoint { tick, .. } => Some(*tick),
                _ => None,
            })
            .unwrap_or(Tick(0));
        let steps = self.entries.iter().filter(|e| matches!(e, Entry::Step(_))).count();
        (start, steps as u64)
    }
}

/// Whole frames of a byte string; what is left after the last whole one stays in `.0`.
struct Frames<'a>(&'a [u8]);

impl<'a> Iterator for Frames<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        let (len, rest) = self.0.split_first_chunk::<4>()?;
        let len = u32::from_le_bytes(*len) as usize;
        if len > persist::MAX_SAVE_BYTES || rest.len() < len {
            return None;
        }
        let (frame, rest) = rest.split_at(len);
        self.0 = rest;
        Some(frame)
    }
}

/// Watches a replay tick by tick (the browser viewer collects positions; a test injects a
/// change to see it found).
pub trait ReplayObserver {
    /// Before the tick that will be `tick` runs, with its inputs not yet applied.
    fn before_step(&mut self, _tick: Tick, _world: &mut World) {}
    /// After a tick, with the state it replicated.
    fn after_step(
        &mut self,
        _tick: Tick,
        _registry: &ReplicationRegistry,
        _state: &ReplicatedState,
    ) {
    }
}

impl ReplayObserver for () {}

/// A recorded and a replayed hash.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct HashPair {
    /// The tick.
    pub tick: u32,
    /// The recording's, 16 hex digits.
    pub recorded: String,
    /// The replay's.
    pub replayed: String,
}

/// One component found different.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Difference {
    /// The component (or resource) type.
    pub component: String,
    /// The entity, when one entity explains it (`None`: several, or a resource).
    pub entity: Option<u32>,
    /// What was found, for people.
    pub detail: String,
}

/// Where a replay parted from its recording.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Divergence {
    /// The first tick whose state differed.
    pub tick: u32,
    /// The replicated components that differed after that tick, with the entity.
    pub components: Vec<Difference>,
    /// The whole world compared at the next checkpoint (server-only state too), if the
    /// recording has one after the divergence: its tick and what differed.
    pub checkpoint: Option<(u32, Vec<Difference>)>,
}

/// What [`replay`] found.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ReplayReport {
    /// The game.
    pub game: String,
    /// The room.
    pub room: String,
    /// The seed.
    pub seed: u64,
    /// Ticks per second.
    pub tick_rate: u16,
    /// The recording's size in bytes.
    pub bytes: usize,
    /// Whether the recording ended cleanly (else it was cut short).
    pub complete: bool,
    /// The tick the recording starts at.
    pub first_tick: u32,
    /// Ticks replayed.
    pub ticks: u64,
    /// The players that joined during the recording: id and name.
    pub players: Vec<(u32, String)>,
    /// Input changes replayed.
    pub inputs: u64,
    /// Checkpoints compared (whole worlds), the first (the start) aside.
    pub checkpoints: u32,
    /// The hashes each second (every `tick_rate` ticks).
    pub intervals: Vec<HashPair>,
    /// The hashes after the last tick replayed.
    pub last: Option<HashPair>,
    /// Whether every tick's hash and every checkpoint matched.
    pub equal: bool,
    /// Where it parted, if it did.
    pub divergence: Option<Divergence>,
}

/// Replays `recording` with game `G`, stopping at the first checkpoint after a divergence.
///
/// # Errors
///
/// When the recording is of another game, has no starting checkpoint, or its world does not
/// load in this build.
pub fn replay<G: Game>(
    recording: &Recording,
    observer: &mut dyn ReplayObserver,
) -> Result<ReplayReport, ReplayError> {
    let header = &recording.header;
    if header.game != G::NAME {
        return Err(ReplayError::Game { recorded: header.game.clone(), here: G::NAME.to_owned() });
    }
    let mut entries = recording.entries.iter();
    let Some(Entry::Checkpoint { tick: start, world }) = entries.next() else {
        return Err(ReplayError::NoStart);
    };
    let mut core = RoomCore::<G>::from_save(RoomSave {
        format: SAVE_FORMAT,
        game: G::NAME.to_owned(),
        settings: header.settings.clone(),
        steps: 0,
        empty_since: 0,
        world: world.clone(),
        players: Vec::new(),
    })?;
    let mut report = ReplayReport {
        game: header.game.clone(),
        room: header.settings.id.clone(),
        seed: header.settings.seed,
        tick_rate: header.settings.tick_rate,
        bytes: recording.bytes,
        complete: recording.complete,
        first_tick: start.0,
        ticks: 0,
        players: Vec::new(),
        inputs: 0,
        checkpoints: 0,
        intervals: Vec::new(),
        last: None,
        equal: true,
        divergence: None,
    };
    let mut run = Run::<G> {
        entities: entity_map(core.world_mut()),
        players: Vec::new(),
        inputs: Vec::new(),
        lags: Vec::new(),
        recorded: Vec::new(),
        last_hash: 0,
        divergence: None,
    };
    let every = u32::from(header.settings.tick_rate.max(1));
    for entry in entries {
        match entry {
            Entry::Spawn { name, entity } => {
                let (e, id) = game::spawn_player::<G>(core.world_mut(), name);
                run.entities.insert(id, e);
                report.players.push((entity.0, name.clone()));
                if id != *entity && run.divergence.is_none() {
                    run.diverge(
                        core.tick().0,
                        vec![Difference {
                            component: "NetId".into(),
                            entity: Some(entity.0),
                            detail: format!("the player {name:?} was given id {}", id.0),
                        }],
                    );
                }
            }
            Entry::Despawn { entity } => {
                if let Some(e) = run.entities.remove(entity) {
                    G::despawn_player(core.world_mut(), e);
                }
            }
            Entry::Apply { entity, input } => {
                let input: G::Input =
                    persist::decode(input).map_err(|e| ReplayError::Damaged(e.to_string()))?;
                if let Some(&e) = run.entities.get(entity)
                    && let Ok(mut e) = core.world_mut().get_entity_mut(e)
                {
                    G::apply_input(&mut e, &input);
                }
                report.inputs += 1;
            }
            Entry::Step(step) => {
                report.inputs += step.inputs.len() as u64;
                run.step(&mut core, step, observer)?;
                report.ticks += 1;
                let tick = core.tick().0;
                let pair = HashPair {
                    tick,
                    recorded: format!("{:016x}", u64::from_le_bytes(step.hash)),
                    replayed: format!("{:016x}", run.last_hash),
                };
                if tick.is_multiple_of(every) {
                    report.intervals.push(pair.clone());
                }
                report.last = Some(pair);
            }
            Entry::Checkpoint { tick, world } => {
                report.checkpoints += 1;
                let differences = compare_worlds(core.world_mut(), world)?;
                if !differences.is_empty() && run.divergence.is_none() {
                    // The replicated state agreed every tick: the difference is server-only.
                    run.diverge(tick.0, Vec::new());
                }
                if let Some(d) = run.divergence.as_mut() {
                    d.checkpoint = Some((tick.0, differences));
                    break;
                }
            }
            Entry::End { .. } => break,
        }
    }
    report.equal = run.divergence.is_none();
    report.divergence = run.divergence;
    Ok(report)
}

struct Run<G: Game> {
    entities: HashMap<NetId, Entity>,
    players: Vec<NetId>,
    inputs: Vec<G::Input>,
    lags: Vec<f32>,
    /// The recording's sketches as of the last step.
    recorded: Vec<Sketch>,
    last_hash: u64,
    divergence: Option<Divergence>,
}

impl<G: Game> Run<G> {
    fn diverge(&mut self, tick: u32, components: Vec<Difference>) {
        self.divergence = Some(Divergence { tick, components, checkpoint: None });
    }

    fn step(
        &mut self,
        core: &mut RoomCore<G>,
        step: &StepRecord,
        observer: &mut dyn ReplayObserver,
    ) -> Result<(), ReplayError> {
        if let Some(players) = &step.players {
            self.players.clone_from(players);
            self.inputs = vec![G::Input::default(); players.len()];
            self.lags = vec![0.0; players.len()];
        }
        for (i, bytes) in &step.inputs {
            let input = persist::decode(bytes).map_err(|e| ReplayError::Damaged(e.to_string()))?;
            if let Some(slot) = self.inputs.get_mut(usize::from(*i)) {
                *slot = input;
            }
        }
        for &(i, lag) in &step.lags {
            if let Some(slot) = self.lags.get_mut(usize::from(i)) {
                *slot = lag;
            }
        }
        observer.before_step(core.tick().next(), core.world_mut());
        for (i, id) in self.players.iter().enumerate() {
            if let Some(&e) = self.entities.get(id)
                && let Ok(mut e) = core.world_mut().get_entity_mut(e)
            {
                G::apply_input(&mut e, &self.inputs[i]);
                e.insert(ViewLag(self.lags[i]));
            }
        }
        let expired: Vec<Entity> =
            step.expired.iter().filter_map(|id| self.entities.remove(id)).collect();
        core.replay_step(expired);
        while core.poll_output().is_some() {}
        let registry = core.registry().clone();
        let state = registry.capture(core.world_mut());
        let (hash, sketches) = fingerprint(&registry, &state);
        self.last_hash = hash;
        observer.after_step(core.tick(), &registry, &state);
        if self.recorded.len() != sketches.len() {
            self.recorded = vec![Sketch::default(); sketches.len()];
        }
        for &(i, s) in &step.sketches {
            if let Some(slot) = self.recorded.get_mut(usize::from(i)) {
                *slot = s;
            }
        }
        if self.divergence.is_none() && hash.to_le_bytes() != step.hash {
            let components = sketches
                .iter()
                .zip(&self.recorded)
                .enumerate()
                .filter(|(_, (mine, theirs))| mine != theirs)
                .map(|(i, (mine, theirs))| {
                    let name = registry.name(crate::registry::ComponentIdx(i as u8)).to_owned();
                    let entity = theirs.single_difference(*mine).map(|id| id.0);
                    let detail = match entity {
                        Some(id) => format!("entity {id}'s {name} differs"),
                        None => format!("{name} differs on several entities"),
                    };
                    Difference { component: name, entity, detail }
                })
                .collect();
            self.diverge(core.tick().0, components);
        }
        Ok(())
    }
}

fn entity_map(world: &mut World) -> HashMap<NetId, Entity> {
    world.query::<(Entity, &NetId)>().iter(world).map(|(e, id)| (*id, e)).collect()
}

/// Every persisted component and resource that differs between `world` and `saved`, entities
/// matched by their [`NetId`].
fn compare_worlds(world: &mut World, saved: &WorldSave) -> Result<Vec<Difference>, ReplayError> {
    let (mine, persistence_names) =
        world.resource_scope(|world, p: Mut<'_, Persistence>| -> Result<_, PersistError> {
            let save = p.save(world, &mut Vec::new())?;
            let names = Names::of(&p, &save, saved);
            Ok((save, names))
        })?;
    let names = persistence_names;
    let by_id = |save: &WorldSave| -> Vec<ById> {
        save.entities
            .iter()
            .map(|components| {
                let id = components
                    .iter()
                    .find(|(i, _)| Some(*i) == names.net_id)
                    .and_then(|(_, b)| persist::decode::<NetId>(b).ok())
                    .map(|id| id.0);
                (id, components.clone())
            })
            .collect()
    };
    let (a, b) = (by_id(saved), by_id(&mine));
    let mut out = Vec::new();
    let keyed = |list: &[ById]| -> HashMap<u32, SavedEntity> {
        list.iter().filter_map(|(id, c)| id.map(|id| (id, c.clone()))).collect()
    };
    let (ka, kb) = (keyed(&a), keyed(&b));
    let mut ids: Vec<u32> = ka.keys().chain(kb.keys()).copied().collect();
    ids.sort_unstable();
    ids.dedup();
    for id in ids {
        match (ka.get(&id), kb.get(&id)) {
            (Some(x), Some(y)) => {
                let mut indices: Vec<u16> = x.iter().chain(y).map(|(i, _)| *i).collect();
                indices.sort_unstable();
                indices.dedup();
                for i in indices {
                    let (vx, vy) = (find(x, i), find(y, i));
                    if vx != vy {
                        let detail = match (vx, vy) {
                            (Some(_), None) => "missing in the replay",
                            (None, Some(_)) => "only in the replay",
                            _ => "values differ",
                        };
                        out.push(Difference {
                            component: names.component(i),
                            entity: Some(id),
                            detail: format!("entity {id}: {detail}"),
                        });
                    }
                }
            }
            (Some(_), None) => out.push(Difference {
                component: "entity".into(),
                entity: Some(id),
                detail: format!("entity {id} is missing in the replay"),
            }),
            (None, Some(_)) => out.push(Difference {
                component: "entity".into(),
                entity: Some(id),
                detail: format!("entity {id} is only in the replay"),
            }),
            (None, None) => {}
        }
    }
    // Entities without an id are matched as a whole: the same values, whatever their order.
    let unnamed = |l: &[ById]| {
        let mut list: Vec<_> =
            l.iter().filter(|(id, _)| id.is_none()).map(|(_, c)| c.clone()).collect();
        list.sort();
        list
    };
    if unnamed(&a) != unnamed(&b) {
        out.push(Difference {
            component: "entities without a NetId".into(),
            entity: None,
            detail: "differ".into(),
        });
    }
    let mut indices: Vec<u16> =
        saved.resources.iter().chain(&mine.resources).map(|(i, _)| *i).collect();
    indices.sort_unstable();
    indices.dedup();
    for i in indices {
        if find(&saved.resources, i) != find(&mine.resources, i) {
            out.push(Difference {
                component: names.resource(i),
                entity: None,
                detail: "resource differs".into(),
            });
        }
    }
    Ok(out)
}

/// A saved entity: its components, by index in the persistence list, encoded.
type SavedEntity = Vec<(u16, Vec<u8>)>;

/// A saved entity with its id, if it has one.
type ById = (Option<u32>, SavedEntity);

fn find(list: &[(u16, Vec<u8>)], i: u16) -> Option<&[u8]> {
    list.iter().find(|(j, _)| *j == i).map(|(_, b)| b.as_slice())
}

/// The persisted types' names, for [`compare_worlds`]'s report.
struct Names {
    components: Vec<(u16, String)>,
    resources: Vec<(u16, String)>,
    net_id: Option<u16>,
}

impl Names {
    fn of(p: &Persistence, a: &WorldSave, b: &WorldSave) -> Names {
        let mut components = Vec::new();
        let mut resources = Vec::new();
        for save in [a, b] {
            for (i, _) in save.entities.iter().flatten() {
                if let Some(n) = p.component_name(*i) {
                    components.push((*i, short(n)));
                }
            }
            for (i, _) in &save.resources {
                if let Some(n) = p.resource_name(*i) {
                    resources.push((*i, short(n)));
                }
            }
        }
        Names { components, resources, net_id: p.component_index::<NetId>() }
    }

    fn component(&self, i: u16) -> String {
        self.components
            .iter()
            .find(|(j, _)| *j == i)
            .map_or(format!("component {i}"), |c| c.1.clone())
    }

    fn resource(&self, i: u16) -> String {
        self.resources
            .iter()
            .find(|(j, _)| *j == i)
            .map_or(format!("resource {i}"), |c| c.1.clone())
    }
}

/// A type's name without its module path (`tickwire_shared::games::arena::Health` → `Health`;
/// generic arguments keep theirs).
fn short(name: &str) -> String {
    let end = name.find('<').unwrap_or(name.len());
    let start = name[..end].rfind("::").map_or(0, |i| i + 2);
    name[start..].to_owned()
}

#[cfg(test)]
mod tests;
