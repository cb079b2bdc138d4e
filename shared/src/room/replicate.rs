//! Snapshots: each snapshot tick the room captures its replicated state into a history ring,
//! and every client due gets a delta against the newest snapshot it acknowledged, limited to
//! its area of interest.
//!
//! The work shared by all clients is done once: the state's entities are written in full once
//! ([`PreparedState`], for full snapshots and spawns), and the changes from each acknowledged
//! baseline once ([`PreparedDelta`], however many clients acked it). Per client only the
//! interest test (a pass over the positions) and a walk of the prepared steps with its two
//! views remain, and clients with the same baseline and views share the body.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use crate::bits::BitWriter;
use crate::codec;
use crate::ids::{ClientId, NetId};
use crate::motion;
use crate::protocol::{DisconnectReason, SnapshotHeader};
use crate::registry::ReplicationRegistry;
use crate::snapshot::{self, PreparedDelta, PreparedState, ReplicatedState, View};
use crate::tick::Tick;

use super::Output;
use super::governor::{Governor, GovernorStats};

/// Snapshots kept per client for delta baselines at the most: 32 snapshots is about a second
/// at 30 Hz, more than any playable round trip. An ack older than the history gets a full
/// snapshot. The room keeps the states of the same span of ticks (clients are spread over the
/// ticks of an interval, so a state is captured on each of them).
pub const HISTORY_LEN: usize = 32;

/// Snapshots kept at the least, however slow the snapshot rate.
pub const MIN_HISTORY: usize = 4;

/// Interest cells per interest radius. A client sees what is within the radius of any point of
/// the cell (side: radius / 8) it stands in: everything within the radius of itself, and at
/// most `radius × (1 + 1/(8·√2))` ≈ 1.09 radius away. Every client in one cell shares one view,
/// so a tick makes a view per occupied cell, not per client, and clients that stand together
/// and acknowledged the same snapshot share one encoded body.
pub const INTEREST_CELLS_PER_RADIUS: i32 = 8;

/// Snapshots kept for delta baselines at `snapshots_per_sec`: the span [`HISTORY_LEN`] covers
/// at 30 Hz (about a second), at least [`MIN_HISTORY`] and at most [`HISTORY_LEN`] snapshots. A
/// slow room (an idle one ticking at 1 Hz, say) keeps a few, not half a minute of states.
#[must_use]
pub fn history_snapshots(snapshots_per_sec: f64) -> usize {
    let span = (HISTORY_LEN as f64 * snapshots_per_sec / 30.0).ceil();
    if span.is_finite() && span >= 0.0 {
        (span as usize).clamp(MIN_HISTORY, HISTORY_LEN)
    } else {
        HISTORY_LEN
    }
}

/// What the room remembers of one client's snapshots. It outlives a dropped connection: the
/// room parks it with the detached player and a resume takes it over
/// ([`ClientReplica::resume`]), so the first snapshot on the new connection is a delta against
/// the same baseline.
///
/// The baseline is used while the client is sure to still have its state: while it is among
/// the snapshots in `sent` (a client keeps at least as many states,
/// [`crate::client::DEFAULT_MAX_STORED_STATES`]), so a client that stops acknowledging gets
/// full snapshots after a second.
#[derive(Debug)]
pub(crate) struct ClientReplica {
    /// The newest snapshot tick the client acknowledged.
    pub(crate) acked: Option<Tick>,
    /// The state and view of `acked`, taken from the room's history and from `sent` when the
    /// ack arrived (`None` if the history no longer had it). Held here so that the baseline
    /// outlives the history's span (about a second): a resume within the grace period still
    /// finds it. It is one state per client or parked player at the most, and the same `Arc`
    /// as the history's while that still has it.
    baseline: Option<(Arc<ReplicatedState>, Arc<View>)>,
    /// The snapshots sent (the room's [`Replicator::snapshots`] newest), with the view
    /// (positions in that tick's state) each one showed and, for a governed client, the state
    /// it was sent (entities left out at the rows it already had, [`super::governor`]).
    sent: VecDeque<Sent>,
    /// Which tick of each snapshot interval this client's snapshots are made on.
    pub(crate) phase: u32,
    /// Where the client's interest was centred last (its entity's grid position).
    last_position: [i32; 2],
    /// The header fields of the newest snapshot sent that the client cannot work out itself:
    /// the input echo, late count and margin. A snapshot that would repeat them, the same
    /// entities and the same state is not sent ([`Replicator::replicate`]).
    last_report: Option<Report>,
    /// With a bandwidth budget (`RoomSettings::client_kbps`): the client's governor, made at
    /// its first snapshot.
    governor: Option<Box<Governor>>,
}

/// One snapshot sent: its tick, the view of the room's state it showed, and for a governed
/// client the state it was sent (its own, not the room's).
type Sent = (Tick, Arc<View>, Option<Arc<ReplicatedState>>);

/// The per-client header fields of a snapshot: echo, late input ticks, margin.
type Report = (Option<u32>, u32, Option<i16>);

impl ClientReplica {
    /// The state the client acknowledged, and its tick, while the replica holds it.
    pub(crate) fn baseline_state(&self) -> Option<(Tick, &ReplicatedState)> {
        Some((self.acked?, &*self.baseline.as_ref()?.0))
    }

    pub(crate) fn new(phase: u32, snapshots: usize) -> ClientReplica {
        ClientReplica {
            acked: None,
            baseline: None,
            sent: VecDeque::with_capacity(snapshots),
            phase,
            last_position: [0, 0],
            last_report: None,
            governor: None,
        }
    }

    /// What the bandwidth governor has done for this client (`None`: no budget).
    pub(crate) fn governor_stats(&self) -> Option<GovernorStats> {
        self.governor.as_ref().map(|g| g.stats())
    }

    /// Takes the replica over for a resumed session whose snapshots go on tick `phase` of each
    /// interval. Of the snapshots sent only the acknowledged one is kept: the client kept its
    /// states and has received nothing since its old connection failed, however many snapshots
    /// the room sent into that connection before it noticed. So the baseline is usable for the
    /// next [`Replicator::snapshots`] snapshots, and an acknowledgement of a snapshot sent
    /// after it on the old connection (a state the room no longer has) is ignored.
    pub(crate) fn resume(&mut self, phase: u32) {
        self.phase = phase;
        self.sent.clear();
        // The new connection has been sent nothing: its first snapshot always goes.
        self.last_report = None;
        match (self.acked, &self.baseline) {
            // A governed client's baseline is a state of its own, under a view of all of it.
            (Some(acked), Some((state, view))) => {
                let own = self.governor.is_some().then(|| state.clone());
                self.sent.push_back((acked, view.clone(), own));
            }
            _ => {
                self.acked = None;
                self.baseline = None;
            }
        }
    }

    /// Snapshots remembered.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> usize {
        self.sent.len()
    }

    /// The view of the newest snapshot sent.
    #[cfg(test)]
    pub(crate) fn last_view(&self) -> Option<&Arc<View>> {
        self.sent.back().map(|(_, view, _)| view)
    }
}

/// One client due a snapshot this tick.
pub(crate) struct Due<'a> {
    pub(crate) client: ClientId,
    pub(crate) replica: &'a mut ClientReplica,
    /// Its entity, if it has one in the world.
    pub(crate) own: Option<NetId>,
    /// The last input sequence applied for it (echoed for reconciliation).
    pub(crate) last_applied: Option<u32>,
    /// Its input ticks run late so far ([`crate::protocol::SnapshotMessage::inputs_late`]).
    pub(crate) inputs_late: u32,
    /// Its time-sync report ([`crate::protocol::SnapshotMessage::input_margin`]).
    pub(crate) input_margin: Option<i16>,
    /// Arrival stamps of the inputs this snapshot is the first to reflect.
    pub(crate) arrivals: Vec<u64>,
}

/// Caches encoded bodies within one snapshot tick: clients with the same baseline and the same
/// views share the bytes.
type BodyKey = (Option<Tick>, Arc<View>, Arc<View>);

/// The room's replication state: the history of captured states and reusable buffers.
pub(crate) struct Replicator {
    history: VecDeque<(Tick, Arc<ReplicatedState>)>,
    history_len: usize,
    /// Snapshots each client's replica keeps.
    snapshots: usize,
    /// Interest radius, in grid units.
    radius: i32,
    /// Side of an interest cell, in grid units: [`INTEREST_CELLS_PER_RADIUS`] to the radius.
    cell: i32,
    /// This tick's view of each interest cell a client stood in.
    cell_views: HashMap<(i32, i32), Arc<View>>,
    body_cache: HashMap<BodyKey, Arc<Vec<u8>>>,
    /// This tick's distinct views: clients that see the same entities share one, so what each
    /// client remembers of its last [`HISTORY_LEN`] snapshots is mostly shared too.
    views: HashSet<Arc<View>>,
    /// The largest body of the last snapshot tick: the writer's initial capacity.
    body_capacity: usize,
    /// The first tick of the run of identical states the newest one belongs to: a client sent a
    /// snapshot at or after it already has this state.
    unchanged_since: Option<Tick>,
    /// Snapshots not sent because they would have told the client nothing new.
    skipped: u64,
    /// Ticks between two snapshots to one client.
    ticks_per_snapshot: u32,
    /// Each client's byte budget per snapshot (`None`: unlimited, [`super::governor`]).
    budget: Option<u32>,
}

impl Replicator {
    /// Keeps [`history_snapshots`] × `ticks_per_snapshot` states; interest within
    /// `interest_radius` world units.
    /// With `client_kbps` (0: none) each client's snapshots fit that rate.
    pub(crate) fn new(
        tick_rate: u32,
        ticks_per_snapshot: u32,
        interest_radius: f32,
        client_kbps: u32,
    ) -> Replicator {
        let ticks_per_snapshot = ticks_per_snapshot.max(1);
        let snapshots = history_snapshots(f64::from(tick_rate) / f64::from(ticks_per_snapshot));
        let history_len = snapshots * ticks_per_snapshot as usize;
        let radius = crate::quantize::position(interest_radius).max(0);
        Replicator {
            history: VecDeque::with_capacity(history_len),
            history_len,
            snapshots,
            radius,
            cell: (radius / INTEREST_CELLS_PER_RADIUS).max(1),
            cell_views: HashMap::new(),
            body_cache: HashMap::new(),
            views: HashSet::new(),
            body_capacity: 256,
            unchanged_since: None,
            skipped: 0,
            ticks_per_snapshot,
            budget: super::governor::snapshot_budget(client_kbps, tick_rate, ticks_per_snapshot),
        }
    }

    /// Snapshots not sent so far because they would have repeated the client's newest one:
    /// the same state of the same entities, the same echo, late count and margin. An idle
    /// client (it sends nothing) in a still room is sent nothing but heartbeats.
    pub(crate) fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Takes a client's acknowledgement (the newest state it holds, from an input message).
    ///
    /// `Some(tick)` is accepted if it names a snapshot this client was sent and is newer than
    /// the one acknowledged before; its state is taken from the history (if the history no
    /// longer has it, the client gets a full snapshot next). `None` says that the client holds
    /// no state at all (a new client, or one that dropped what it had after a resume), so the
    /// baseline is forgotten and the next snapshot is full: a client never gets stuck with
    /// deltas against a state it does not have.
    pub(crate) fn ack(&self, replica: &mut ClientReplica, ack: Option<Tick>) {
        let Some(ack) = ack else {
            replica.acked = None;
            replica.baseline = None;
            return;
        };
        let Some((_, view, own)) = replica.sent.iter().find(|(t, _, _)| *t == ack) else { return };
        if replica.acked.is_none_or(|a| ack.is_after(a)) {
            replica.acked = Some(ack);
            replica.baseline = match own {
                // A governed client holds the state it was sent, all of it.
                Some(own) => Some((own.clone(), Arc::new(View::all(own.len())))),
                None => {
                    let state =
                        self.history.iter().find(|(t, _)| *t == ack).map(|(_, s)| s.clone());
                    state.map(|state| (state, view.clone()))
                }
            };
        }
    }

    /// The newest captured state (with its motion) and its tick.
    pub(crate) fn newest(&self) -> Option<(Tick, &ReplicatedState)> {
        self.history.back().map(|(t, s)| (*t, &**s))
    }

    /// The captured state of `tick`, while the history holds it.
    pub(crate) fn state_at(&self, tick: Tick) -> Option<&ReplicatedState> {
        self.history.iter().find(|(t, _)| *t == tick).map(|(_, s)| &**s)
    }

    /// Snapshots each client's replica keeps.
    pub(crate) fn snapshots(&self) -> usize {
        self.snapshots
    }

    /// Records `state` as the state of `tick` and sends every client in `due` its snapshot.
    pub(crate) fn replicate<'a>(
        &mut self,
        registry: &ReplicationRegistry,
        tick: Tick,
        mut state: ReplicatedState,
        due: impl Iterator<Item = Due<'a>>,
        out: &mut VecDeque<Output>,
    ) {
        let newest = |back: usize| {
            let at = self.history.len().checked_sub(back)?;
            self.history.get(at).map(|(t, s)| (*t, &**s))
        };
        motion::estimate(registry, newest(1), newest(2), tick, &mut state);
        let state = Arc::new(state);
        let unchanged = self.history.back().is_some_and(|(_, newest)| **newest == *state);
        if !unchanged {
            self.unchanged_since = Some(tick);
        }
        let unchanged_since = self.unchanged_since;
        if self.history.len() >= self.history_len {
            self.history.pop_front();
        }
        self.history.push_back((tick, state.clone()));
        self.body_cache.clear();
        self.views.clear();
        // Only a full snapshot needs every entity's fields written: prepared on the first.
        let mut prepared: Option<PreparedState> = None;
        let mut deltas: Vec<(Tick, PreparedDelta)> = Vec::new();
        // Positions as two flat arrays, for a tight interest loop. Without a registered
        // position, everything is visible.
        let n = state.len();
        // `f64` holds these integer distances exactly (grid values below 2^26) and vectorizes.
        let (xs, ys): (Vec<f64>, Vec<f64>) = match registry.position_offset() {
            Some(o) => {
                state.iter().map(|e| (f64::from(e.fields[o]), f64::from(e.fields[o + 1]))).unzip()
            }
            None => (Vec::new(), Vec::new()),
        };
        // Entities without a position (a match's score, say) are everyone's.
        let mut global = vec![0u64; n.div_ceil(64)];
        if let Some(idx) = registry.position_index() {
            for (i, e) in state.iter().enumerate() {
                global[i / 64] |= u64::from(e.mask & (1 << idx.0) == 0) << (i % 64);
            }
        }
        // A cell's view is everything within the radius of any point of the cell: the radius
        // of its centre plus half its diagonal.
        let reach = f64::from(self.radius) + f64::from(self.cell) * std::f64::consts::FRAC_1_SQRT_2;
        let r2 = reach * reach;
        self.cell_views.clear();
        let mut body_capacity = self.body_capacity;
        for Due { client, replica, own, last_applied, inputs_late, input_margin, arrivals } in due {
            let own_idx = own.and_then(|id| state.ids().binary_search(&id).ok());
            let center = match own_idx {
                Some(i) if !xs.is_empty() => [xs[i] as i32, ys[i] as i32],
                _ => replica.last_position,
            };
            // The client is sure to still have the acknowledged state while it is among the
            // last snapshots sent (it keeps at least as many), whatever the history holds.
            let baseline = replica.acked.and_then(|acked| {
                let (base_state, base_view) = replica.baseline.as_ref()?;
                replica
                    .sent
                    .iter()
                    .any(|(t, _, _)| *t == acked)
                    .then(|| (acked, base_state.clone(), base_view.clone()))
            });
            // Views are made per interest cell, once a tick, and shared by the clients that
            // stand in the cell: they share the encoded body too when their baselines match.
            let at = (center[0].div_euclid(self.cell), center[1].div_euclid(self.cell));
            let cell_view = if xs.is_empty() {
                intern(&mut self.views, View::all(n))
            } else {
                let cell = self.cell;
                self.cell_views
                    .entry(at)
                    .or_insert_with(|| {
                        let half = f64::from(cell) / 2.0;
                        let cx = f64::from(at.0) * f64::from(cell) + half;
                        let cy = f64::from(at.1) * f64::from(cell) + half;
                        intern(&mut self.views, view_within(&xs, &ys, &global, cx, cy, r2))
                    })
                    .clone()
            };
            // The client's own entity is in its cell, so in view: unless it has no position.
            let view = match own_idx {
                Some(i) if !cell_view.contains(i) => {
                    let mut view = (*cell_view).clone();
                    view.insert(i);
                    intern(&mut self.views, view)
                }
                _ => cell_view,
            };
            // Nothing new for this client: its newest snapshot has this state (nothing changed
            // since), the same entities and the same report, and no input arrived since. Such
            // a snapshot is not sent; the next change is, as a delta or full as usual.
            let report = (last_applied, inputs_late, input_margin);
            let repeat = replica.last_report == Some(report)
                && arrivals.is_empty()
                && replica.governor.as_ref().is_none_or(|g| g.complete)
                && replica.sent.back().is_some_and(|(sent, sent_view, _)| {
                    unchanged_since.is_some_and(|since| !since.is_after(*sent))
                        && **sent_view == *view
                });
            if repeat {
                self.skipped += 1;
                continue;
            }
            // A governed client's body is its own: made from the state it is sent.
            let governed = self.budget.map(|budget| {
                let governor =
                    replica.governor.get_or_insert_with(|| Box::new(Governor::new(budget)));
                let predicted = baseline.as_ref().and_then(|(acked, base_state, _)| {
                    motion::predicted(registry, base_state, tick.0.wrapping_sub(acked.0))
                });
                let base = predicted
                    .as_ref()
                    .or_else(|| baseline.as_ref().map(|(_, base_state, _)| &**base_state));
                let sent = governor.select(
                    registry,
                    tick,
                    &state,
                    &view,
                    base,
                    baseline.as_ref().map(|(acked, _, _)| *acked),
                    own_idx,
                    center,
                    self.radius,
                    self.ticks_per_snapshot,
                );
                let mut w = BitWriter::new(Vec::with_capacity(body_capacity));
                match base {
                    Some(base) => {
                        snapshot::encode_delta(registry, base.iter(), sent.iter(), &mut w)
                    }
                    None => snapshot::encode_full(registry, sent.iter(), &mut w),
                }
                (Arc::new(w.finish()), Arc::new(sent))
            });
            let key: BodyKey = (
                baseline.as_ref().map(|(t, _, _)| *t),
                baseline.as_ref().map_or_else(|| Arc::new(View::default()), |(_, _, v)| v.clone()),
                view.clone(),
            );
            let cached = match &governed {
                Some((body, _)) => Some(body.clone()),
                None => self.body_cache.get(&key).cloned(),
            };
            let body = match cached {
                Some(body) => body,
                None => {
                    // Room for a body as big as the last one, so it never grows while written.
                    let mut w = BitWriter::new(Vec::with_capacity(body_capacity));
                    match &baseline {
                        Some((acked, base_state, base_view)) => {
                            let at = match deltas.iter().position(|(t, _)| t == acked) {
                                Some(at) => at,
                                None => {
                                    // Against the baseline moved on by its motion.
                                    let ticks = tick.0.wrapping_sub(acked.0);
                                    let predicted = motion::predicted(registry, base_state, ticks);
                                    let base = predicted.as_ref().unwrap_or(base_state);
                                    deltas
                                        .push((*acked, PreparedDelta::new(registry, base, &state)));
                                    deltas.len() - 1
                                }
                            };
                            snapshot::encode_delta_prepared(
                                registry,
                                &state,
                                &deltas[at].1,
                                base_view,
                                &view,
                                &mut w,
                            );
                        }
                        None => {
                            let prepared = prepared
                                .get_or_insert_with(|| PreparedState::new(registry, &state));
                            snapshot::encode_full_prepared(
                                registry, &state, prepared, &view, &mut w,
                            );
                        }
                    }
                    let body = Arc::new(w.finish());
                    body_capacity = body_capacity.max(body.len() + 64);
                    self.body_cache.insert(key, body.clone());
                    body
                }
            };
            replica.last_position = center;
            let mut bytes = Vec::with_capacity(body.len() + 32);
            let base_tick = baseline.as_ref().map(|(t, _, _)| *t);
            let header = SnapshotHeader {
                tick,
                baseline: base_tick,
                last_input_seq: last_applied,
                inputs_late,
                input_margin,
            };
            let encoded = codec::encode_snapshot_into(header, &body, &mut bytes);
            if encoded.is_err() {
                out.push_back(Output::Close {
                    client,
                    reason: DisconnectReason::Internal,
                    message: "snapshot too large".to_owned(),
                });
                continue;
            }
            if let Some(governor) = &mut replica.governor {
                governor.spend(bytes.len());
            }
            out.push_back(Output::Snapshot { client, bytes, full: baseline.is_none(), arrivals });
            while replica.sent.len() >= self.snapshots {
                replica.sent.pop_front();
            }
            replica.sent.push_back((tick, view, governed.map(|(_, sent)| sent)));
            replica.last_report = Some(report);
        }
        self.body_capacity = body_capacity;
    }
}

/// The view in `views` equal to `view`, added if there is none: clients that see the same
/// entities hold one view.
fn intern(views: &mut HashSet<Arc<View>>, view: View) -> Arc<View> {
    if let Some(shared) = views.get(&view) {
        return shared.clone();
    }
    let view = Arc::new(view);
    views.insert(view.clone());
    view
}

/// The entities (as positions in `xs`/`ys`) within `sqrt(r2)` of (`cx`, `cy`), and those set in
/// `global`, 64 to a word.
fn view_within(xs: &[f64], ys: &[f64], global: &[u64], cx: f64, cy: f64, r2: f64) -> View {
    let words = xs
        .chunks(64)
        .zip(ys.chunks(64))
        .zip(global)
        .map(|((xs, ys), &global)| {
            let mut word = global;
            for (bit, (&x, &y)) in xs.iter().zip(ys).enumerate() {
                let d2 = (x - cx) * (x - cx) + (y - cy) * (y - cy);
                word |= u64::from(d2 <= r2) << bit;
            }
            word
        })
        .collect();
    View::from_words(words)
}
