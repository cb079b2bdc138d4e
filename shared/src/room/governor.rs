//! The bandwidth governor (`RoomSettings::client_kbps`): each client's snapshots fit a byte
//! budget, the entities of its view ranked by accumulated priority.
//!
//! A governed client's snapshot is made from a state of its own, the *sent state*: the current
//! row of each entity chosen, the row the client already holds (its acknowledged baseline moved
//! on by its motion, what the client works out itself) of each entity left out, and no row for a
//! new entity left out (it is spawned later). That state is delta-encoded against the client's
//! baseline as usual, so a left-out entity is simply an unchanged one in the delta: no wire
//! change, and the client keeps its last value. The room records the sent state as what the
//! client has (the next delta is taken against it once acknowledged), so nothing it leaves out
//! can corrupt a later delta.
//!
//! An entity sent in a snapshot the client has not acknowledged yet is sent again (current)
//! until one that carries it is acknowledged: left out, it would go back on the client to its
//! row in the older acknowledged state. So at a round trip of `k` snapshot intervals an update
//! costs about `k` entries, and fewer entities fit the budget: the price of deltas against
//! acknowledged states.
//!
//! Ranking: the client's own entity always goes first, and is always sent. Every other entity
//! whose row differs from what the client holds gains priority each snapshot it is left out, by
//! a weight from its nearness to the client and its speed ([`NEAR_WEIGHT`], [`FAST_WEIGHT`]);
//! sent, its priority goes back to zero. Entities are taken by priority while their estimated
//! entries fit the budget (a token bucket: the budget per snapshot, a little of what was not
//! used carried, [`CARRY`]); an entity left out for [`MAX_STALE_SNAPSHOTS`] snapshots is sent
//! whatever the budget, so no value a client holds of an entity in its view is older than that.
//! What was sent beyond the budget is owed: the bucket goes negative and the next snapshots
//! send less.
//!
//! Clients of a room without a budget never reach this module: their snapshots are made and
//! shared exactly as before.

use std::collections::HashMap;

use crate::ids::NetId;
use crate::registry::ReplicationRegistry;
use crate::snapshot::{self, View};
use crate::state::ReplicatedState;
use crate::tick::Tick;

/// An entity in a governed client's view is left out of at most this many snapshots in a row
/// minus one: the snapshot this many after the one it was last sent in (or entered the view at)
/// carries it, over budget if need be. 16 snapshots are about half a second at 30 Hz: the least
/// important entity still moves twice a second, while the priorities send near and fast ones
/// far more often. Measured at a third of the unconstrained rate (soccer, 40 NPCs, over
/// sockets): 8 snapshots cost 0.4 % over the budget in updates forced by the bound, 16 none
/// (the priorities alone kept every entity within 11 snapshots). A room whose entities all
/// change at every snapshot (the arena's shooting NPCs: ~75 in view, most of them short-lived
/// projectiles to spawn) needs about 2 s at a third of its rate; there the bound wins and the
/// budget is exceeded, which `GovernorStats::forced` counts.
pub const MAX_STALE_SNAPSHOTS: u32 = 16;

/// Share of a snapshot's budget that unused budget may carry over to the next: a snapshot with
/// little to say lets the next say more, but no snapshot takes more than 1.5 budgets.
pub const CARRY: f64 = 0.5;

/// A debt (bytes sent over budget: the own entity, updates in flight, entities at their
/// staleness limit) is paid off over at most this many snapshots' budgets, about a second at
/// 30 Hz, so that the rate over a second stays within the budget; older debt is forgiven, so
/// the bucket stays bounded (and a client whose mandatory updates alone exceed the budget is
/// not starved of everything else forever).
const MAX_DEBT_SNAPSHOTS: i64 = 30;

/// Bytes of every snapshot message besides its body (the envelope: tick, baseline, echo, late
/// count, margin, lengths), set aside from the budget before entities are chosen.
const ENVELOPE_BYTES: i64 = 16;

/// Weight of nearness: an entity at the client's position gains this much more priority per
/// snapshot than one at the edge of the interest radius (which gains 1).
pub const NEAR_WEIGHT: f32 = 3.0;

/// Weight of speed: an entity moving [`FAST_CELLS_PER_TICK`] or faster (or drifting as far from
/// what the client predicts) gains this much more priority per snapshot than a still one.
pub const FAST_WEIGHT: f32 = 2.0;

/// The speed counted as fast, in position grid cells (1/64 world unit) per tick: 4 world units a
/// tick, 240 units/s at 60 Hz, about a running player.
pub const FAST_CELLS_PER_TICK: f32 = 256.0;

/// In a plan: the client's row of the entity is current (no candidate).
const CURRENT: usize = usize::MAX;

/// What the governor of one client has done so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GovernorStats {
    /// The byte budget of each snapshot (the room's `client_kbps` at its snapshot rate).
    pub budget_bytes: u32,
    /// Entity updates left out of a snapshot for want of budget.
    pub left_out: u64,
    /// Entity updates sent over budget because they had waited [`MAX_STALE_SNAPSHOTS`].
    pub forced: u64,
    /// The oldest value the client held of an entity in its view, in ticks: how long the
    /// longest-waiting update waited (bounded by [`MAX_STALE_SNAPSHOTS`] snapshots).
    pub max_stale_ticks: u32,
    /// Entities left out of the newest snapshot.
    pub left_out_last: u32,
}

/// Where one entity of the client's view stands.
#[derive(Clone, Copy, Debug)]
struct Track {
    priority: f32,
    /// The tick of the last snapshot that brought the client this entity's current row (or at
    /// which it came into view).
    current_at: Tick,
    /// The snapshot tick it was last in the view at (entities no longer in view are forgotten).
    seen: Tick,
    /// The newest snapshot it was sent in (with a row that differed from the client's).
    sent_at: Option<Tick>,
}

/// One entity whose row differs from what the client holds.
struct Candidate {
    /// Its position in the current state.
    cur: usize,
    /// Its entry's estimated bits.
    bits: i64,
    priority: f32,
    /// Ticks since the client got its current row.
    age: u32,
    /// The own entity, or one sent in a snapshot the client has not acknowledged yet (left
    /// out now, it would go back to its acknowledged row on the client): always sent.
    must: bool,
    /// Snapshots after this one it may still be left out of (0: it must go now).
    slack: u32,
    take: bool,
}

/// One client's governor: its budget, bucket and each entity's priority.
#[derive(Debug)]
pub(crate) struct Governor {
    /// Bytes per snapshot.
    budget: i64,
    /// Bytes the next snapshot may take (may be negative: a debt).
    tokens: i64,
    tracks: HashMap<NetId, Track>,
    stats: GovernorStats,
    /// Whether the newest snapshot left nothing out (then a repeat of it can be skipped, as for
    /// an ungoverned client).
    pub(crate) complete: bool,
}

impl Governor {
    pub(crate) fn new(budget: u32) -> Governor {
        let budget = i64::from(budget.max(1));
        Governor {
            budget,
            tokens: 0,
            tracks: HashMap::new(),
            stats: GovernorStats { budget_bytes: budget as u32, ..GovernorStats::default() },
            complete: false,
        }
    }

    pub(crate) fn stats(&self) -> GovernorStats {
        self.stats
    }

    /// The sent state of a snapshot at `tick`: `current` seen through `view`, where entities
    /// that do not fit the budget keep their row in `base` (what the client holds: its
    /// state of snapshot `acked` moved on by its motion; `None` for a client that holds
    /// nothing) or are not there yet. `own` is the client's entity's position in `current`,
    /// `center` its grid position, `radius` the interest radius in grid units.
    #[expect(clippy::too_many_arguments, reason = "one call site, all plain borrows")]
    pub(crate) fn select(
        &mut self,
        registry: &ReplicationRegistry,
        tick: Tick,
        current: &ReplicatedState,
        view: &View,
        base: Option<&ReplicatedState>,
        acked: Option<Tick>,
        own: Option<usize>,
        center: [i32; 2],
        radius: i32,
        ticks_per_snapshot: u32,
    ) -> ReplicatedState {
        let carry_cap = self.budget + (self.budget as f64 * CARRY) as i64;
        self.tokens = (self.tokens + self.budget).min(carry_cap);
        let mut bits_left = (self.tokens - ENVELOPE_BYTES).max(0) * 8 - 8;
        let stride = registry.stride();
        let pos = registry.position_offset();
        let pos_bit = registry.position_index().map_or(0, |i| 1u32 << i.0);
        let motion = registry.motion_index().map(|m| (1u32 << m.0, registry.offset(m)));
        let max_age = MAX_STALE_SNAPSHOTS.saturating_mul(ticks_per_snapshot.max(1));
        let radius = radius.max(1) as f32;
        // Walk the view and the client's state together, in id order.
        let empty = ReplicatedState::new(stride);
        let base = base.unwrap_or(&empty);
        let mut candidates: Vec<Candidate> = Vec::new();
        // Per view entity, in order: its position in `current`, in `base`, and the index of its
        // candidate ([`CURRENT`] when the client's row is current already).
        let mut plan: Vec<(usize, Option<usize>, usize)> = Vec::new();
        let mut j = 0;
        let mut previous_id: Option<NetId> = None;
        let gap_bits = |previous: Option<NetId>, id: NetId| {
            let gap = previous.map_or(id.0.wrapping_add(1), |p| id.0.wrapping_sub(p.0));
            i64::from(crate::bits::var_len(gap))
        };
        for i in view.iter().take_while(|&i| i < current.len()) {
            let e = current.entity(i);
            // The client's entities before this one are no longer in view: despawned (a gap
            // and two bits each, always sent).
            while j < base.len() && base.ids()[j] < e.id {
                bits_left -= gap_bits(previous_id, base.ids()[j]) + 2;
                previous_id = Some(base.ids()[j]);
                j += 1;
            }
            let old = (j < base.len() && base.ids()[j] == e.id).then(|| {
                j += 1;
                j - 1
            });
            let track = self.tracks.entry(e.id).or_insert(Track {
                priority: 0.0,
                current_at: tick,
                seen: tick,
                sent_at: None,
            });
            track.seen = tick;
            let held = old.map(|b| base.entity(b));
            if held.is_some_and(|h| h.mask == e.mask && h.fields == e.fields) {
                // The client's row is current (unchanged, or moving as predicted).
                track.priority = 0.0;
                track.current_at = tick;
                plan.push((i, old, CURRENT));
                continue;
            }
            let bits = gap_bits(previous_id, e.id) + snapshot::entry_bits(registry, held, e) as i64;
            previous_id = Some(e.id);
            // Nearness to the client, speed, and how far off the client's copy is.
            let (near, fast) = match pos.filter(|_| e.mask & pos_bit != 0) {
                Some(po) => {
                    let (dx, dy) = (
                        f64::from(e.fields[po]) - f64::from(center[0]),
                        f64::from(e.fields[po + 1]) - f64::from(center[1]),
                    );
                    let near = (1.0 - (dx.hypot(dy) as f32) / radius).clamp(0.0, 1.0);
                    let speed =
                        motion.filter(|(bit, _)| e.mask & bit != 0).map_or(0.0, |(_, mo)| {
                            (f64::from(e.fields[mo])).hypot(f64::from(e.fields[mo + 1])) as f32
                        });
                    let drift = held.filter(|h| h.mask & pos_bit != 0).map_or(0.0, |h| {
                        let (ex, ey) = (
                            f64::from(e.fields[po]) - f64::from(h.fields[po]),
                            f64::from(e.fields[po + 1]) - f64::from(h.fields[po + 1]),
                        );
                        ex.hypot(ey) as f32 / ticks_per_snapshot.max(1) as f32
                    });
                    (near, ((speed + drift) / FAST_CELLS_PER_TICK).min(1.0))
                }
                // Entities without a position (a score) are everyone's: halfway near.
                None => (0.5, 0.0),
            };
            track.priority += 1.0 + NEAR_WEIGHT * near + FAST_WEIGHT * fast;
            let age = u32::try_from(tick.diff(track.current_at)).unwrap_or(0);
            let in_flight =
                track.sent_at.is_some_and(|sent| acked.is_none_or(|acked| sent.is_after(acked)));
            plan.push((i, old, candidates.len()));
            candidates.push(Candidate {
                cur: i,
                bits,
                priority: track.priority,
                age,
                must: Some(i) == own || in_flight,
                slack: max_age.saturating_sub(age) / ticks_per_snapshot.max(1),
                take: false,
            });
        }
        while j < base.len() {
            bits_left -= gap_bits(previous_id, base.ids()[j]) + 2;
            previous_id = Some(base.ids()[j]);
            j += 1;
        }
        // The own entity and those in flight first, then by priority while the budget lasts.
        let mut order: Vec<usize> = (0..candidates.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&candidates[a], &candidates[b]);
            b.must.cmp(&a.must).then(b.priority.total_cmp(&a.priority)).then(a.cur.cmp(&b.cur))
        });
        for &k in &order {
            let c = &mut candidates[k];
            if c.must || c.bits <= bits_left {
                c.take = true;
                bits_left -= c.bits;
            }
        }
        // Then, over budget, as few of the rest as keep every deadline: earliest deadline
        // first, at the lowest steady rate that sends each within its slack (the entities due
        // within `s` more snapshots, spread over those `s + 1`), so that entities that came
        // into view together are not all due at once later.
        let mut due = vec![0u32; MAX_STALE_SNAPSHOTS as usize + 1];
        for c in candidates.iter().filter(|c| !c.take) {
            due[(c.slack as usize).min(MAX_STALE_SNAPSHOTS as usize)] += 1;
        }
        // Those due now, and enough that no later snapshot has more than one due per
        // snapshot left on average: just in time, never a herd.
        let mut within = 0;
        let mut needed = due[0];
        for (s, n) in due.iter().enumerate() {
            within += n;
            needed = needed.max(within / (s as u32 + 1));
        }
        order.sort_by_key(|&k| (candidates[k].take, candidates[k].slack, candidates[k].cur));
        for &k in order.iter().take(needed as usize) {
            let c = &mut candidates[k];
            c.take = true;
            self.stats.forced += 1;
        }
        let mut left_out = 0u32;
        for c in &candidates {
            left_out += u32::from(!c.take);
            self.stats.max_stale_ticks = self.stats.max_stale_ticks.max(c.age);
        }
        // The sent state, and every chosen entity's track reset.
        let mut sent = ReplicatedState::with_capacity(stride, plan.len());
        for (i, old, k) in plan {
            let e = current.entity(i);
            let row = match candidates.get(k) {
                Some(c) if !c.take => old.map(|b| base.entity(b)),
                Some(_) => {
                    if let Some(track) = self.tracks.get_mut(&e.id) {
                        track.priority = 0.0;
                        track.current_at = tick;
                        track.sent_at = Some(tick);
                    }
                    Some(e)
                }
                None => Some(e),
            };
            if let Some(row) = row {
                // Ascending ids and the registry's stride: cannot fail.
                let _ = sent.push(row.id, row.mask, row.fields);
            }
        }
        self.tracks.retain(|_, t| t.seen == tick);
        self.stats.left_out += u64::from(left_out);
        self.stats.left_out_last = left_out;
        self.complete = left_out == 0;
        sent
    }

    /// Takes a snapshot's `bytes` out of the bucket.
    pub(crate) fn spend(&mut self, bytes: usize) {
        let bytes = i64::try_from(bytes).unwrap_or(i64::MAX);
        self.tokens = self.tokens.saturating_sub(bytes).max(-MAX_DEBT_SNAPSHOTS * self.budget);
    }
}

/// The byte budget of one snapshot for `kbps` (kilobits per second, 1,000 bits) at
/// `tick_rate / ticks_per_snapshot` snapshots a second; `None` for 0 (no limit).
#[must_use]
pub fn snapshot_budget(kbps: u32, tick_rate: u32, ticks_per_snapshot: u32) -> Option<u32> {
    if kbps == 0 {
        return None;
    }
    let bytes =
        u64::from(kbps) * 125 * u64::from(ticks_per_snapshot.max(1)) / u64::from(tick_rate.max(1));
    Some(u32::try_from(bytes).unwrap_or(u32::MAX).max(1))
}
