//! The server's fast path: the work shared by every client of a snapshot tick done once
//! ([`PreparedState`], [`PreparedDelta`]), then each client's body copied in runs from it
//! through its [`View`]. Same bits as the plain encoders of [`super::format`] (tested).

use super::ReplicatedState;
use super::format::{
    KIND_DESPAWNED, KIND_SPAWNED, KIND_UPDATED, touched_mask, write_entity_fields, write_gap,
    write_mask, write_update_fields,
};
use crate::bits::{BitRuns, BitSink, BitWriter};
use crate::ids::NetId;
use crate::registry::ReplicationRegistry;

/// Which entities of one [`ReplicatedState`] a client sees: a set of positions in the state
/// (not ids), as a bitset. Equal views of the same state compare and hash equal.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct View {
    words: Vec<u64>,
}

impl View {
    /// An empty view of a state of `n` entities.
    #[must_use]
    pub fn empty(n: usize) -> View {
        View { words: vec![0; n.div_ceil(64)] }
    }

    /// A view of every entity of a state of `n` entities.
    #[must_use]
    pub fn all(n: usize) -> View {
        let mut v = View { words: vec![u64::MAX; n.div_ceil(64)] };
        if !n.is_multiple_of(64)
            && let Some(last) = v.words.last_mut()
        {
            *last = (1u64 << (n % 64)) - 1;
        }
        v
    }

    /// A view from its words: bit `i % 64` of word `i / 64` is position `i`.
    #[must_use]
    pub fn from_words(words: Vec<u64>) -> View {
        View { words }
    }

    /// Adds position `i` (which must be within the state the view was made for).
    pub fn insert(&mut self, i: usize) {
        self.words[i / 64] |= 1 << (i % 64);
    }

    /// Whether position `i` is in the view (false past its end).
    #[inline]
    #[must_use]
    pub fn contains(&self, i: usize) -> bool {
        self.words.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 != 0)
    }

    /// The positions in the view, ascending.
    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.words.iter().enumerate().flat_map(|(wi, &word)| {
            let mut rest = word;
            std::iter::from_fn(move || {
                if rest == 0 {
                    return None;
                }
                let bit = rest.trailing_zeros() as usize;
                rest &= rest - 1;
                Some(wi * 64 + bit)
            })
        })
    }

    /// The first position at or after `from` that is not in the view, or `len` if there is none
    /// before `len`.
    #[must_use]
    pub fn next_missing(&self, from: usize, len: usize) -> usize {
        let mut wi = from / 64;
        let mut missing = !self.words.get(wi).copied().unwrap_or(0) & (u64::MAX << (from % 64));
        loop {
            if missing != 0 {
                return (wi * 64 + missing.trailing_zeros() as usize).min(len);
            }
            wi += 1;
            if wi * 64 >= len {
                return len;
            }
            missing = !self.words.get(wi).copied().unwrap_or(0);
        }
    }

    /// The first position at or after `from` that is in the view, or `len` when none is
    /// before `len`.
    #[must_use]
    pub fn next_present(&self, from: usize, len: usize) -> usize {
        let mut wi = from / 64;
        let mut present = self.words.get(wi).copied().unwrap_or(0) & (u64::MAX << (from % 64));
        loop {
            if present != 0 {
                return (wi * 64 + present.trailing_zeros() as usize).min(len);
            }
            wi += 1;
            if wi * 64 >= len {
                return len;
            }
            present = self.words.get(wi).copied().unwrap_or(0);
        }
    }

    /// The ids of `state` in the view, ascending.
    #[must_use]
    pub fn ids(&self, state: &ReplicatedState) -> Vec<NetId> {
        self.iter().filter_map(|i| state.ids.get(i).copied()).collect()
    }
}

/// A run of prepared bits: `(start, len)` in a [`BitRuns`].
type Span = (u32, u32);

/// Every entity of one state with its fields written in full, once, so that every client's full
/// snapshot copies the bits instead of encoding them again. The server prepares it on a tick
/// that sends a full snapshot (deltas do not need it).
#[derive(Debug, Default)]
pub struct PreparedState {
    runs: BitRuns,
    spans: Vec<Span>,
}

impl PreparedState {
    /// Writes the fields of every entity of `state`.
    #[must_use]
    pub fn new(registry: &ReplicationRegistry, state: &ReplicatedState) -> PreparedState {
        let mut runs = BitRuns::default();
        let mut spans = Vec::with_capacity(state.len());
        for e in state.iter() {
            let start = runs.bit_len();
            write_entity_fields(&mut runs, registry, e);
            spans.push((start as u32, (runs.bit_len() - start) as u32));
        }
        PreparedState { runs, spans }
    }
}

/// No position: the entity is not in that state.
const ABSENT: u32 = u32::MAX;

/// One id of the union of a baseline state and the current state.
#[derive(Clone, Copy, Debug)]
struct DeltaStep {
    id: NetId,
    /// Position in the baseline state, or [`ABSENT`].
    base: u32,
    /// Position in the current state, or [`ABSENT`].
    cur: u32,
    /// Components touched between the two (0: unchanged, or not in both).
    touched: u32,
    /// The update's bits after its touched-mask.
    span: Span,
}

/// The changes from one baseline state to the current state, worked out once for every client
/// that acknowledged that baseline: the union of their ids with, for each entity in both, the
/// touched-mask and the update's bits. [`encode_delta_prepared`] then only walks it with a
/// client's two views.
#[derive(Debug, Default)]
pub struct PreparedDelta {
    steps: Vec<DeltaStep>,
    runs: BitRuns,
    /// The whole delta as a client that sees every entity at both ticks gets it.
    stream: BitRuns,
    /// Where step `k`'s entry starts in `stream` and the encoder's context before it
    /// (`steps.len() + 1` of them: the last is the end of the list).
    marks: Vec<(u32, Context)>,
    /// Where step `k`'s entry continues in `stream` after its id gap: the rest depends on the
    /// context's masks only, so a client whose previous entry differs can copy it.
    after_gap: Vec<u32>,
    /// For each step `k`: how many baseline and current entities come before it, that is the
    /// position of the next baseline and current entity from step `k` on.
    next_pos: Vec<(u32, u32)>,
    /// The step of each baseline position, then of each current position.
    base_step: Vec<u32>,
    cur_step: Vec<u32>,
}

/// What an entry's bits depend on besides the entity: the previous entry's id and the masks a
/// one-bit "same as before" refers to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Context {
    previous_id: Option<NetId>,
    previous_touched: u32,
    previous_spawn_mask: u32,
}

/// What a client's body says about one step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Action {
    Nothing,
    Update,
    Despawn,
    Spawn,
}

impl DeltaStep {
    fn action(&self, in_base: bool, in_cur: bool) -> Action {
        match (in_base, in_cur) {
            (true, true) if self.touched != 0 => Action::Update,
            (true, true) | (false, false) => Action::Nothing,
            (true, false) => Action::Despawn,
            (false, true) => Action::Spawn,
        }
    }
}

impl PreparedDelta {
    /// Compares `baseline` with `current` (both whole states, ascending by id).
    #[must_use]
    pub fn new(
        registry: &ReplicationRegistry,
        baseline: &ReplicatedState,
        current: &ReplicatedState,
    ) -> PreparedDelta {
        let mut steps = Vec::with_capacity(current.len().max(baseline.len()));
        let mut runs = BitRuns::default();
        let (mut bi, mut ci) = (0, 0);
        let none = DeltaStep { id: NetId(0), base: ABSENT, cur: ABSENT, touched: 0, span: (0, 0) };
        while bi < baseline.len() || ci < current.len() {
            let b = (bi < baseline.len()).then(|| baseline.ids[bi]);
            let c = (ci < current.len()).then(|| current.ids[ci]);
            match (b, c) {
                (Some(b), c) if c.is_none_or(|c| b < c) => {
                    steps.push(DeltaStep { id: b, base: bi as u32, ..none });
                    bi += 1;
                }
                (b, Some(c)) if b.is_none_or(|b| c < b) => {
                    steps.push(DeltaStep { id: c, cur: ci as u32, ..none });
                    ci += 1;
                }
                (Some(id), Some(_)) => {
                    let (old, new) = (baseline.entity(bi), current.entity(ci));
                    let mut step = DeltaStep { id, base: bi as u32, cur: ci as u32, ..none };
                    if old.mask != new.mask || old.fields != new.fields {
                        step.touched = touched_mask(registry, old, new);
                        let start = runs.bit_len();
                        write_update_fields(&mut runs, registry, old, new, step.touched);
                        step.span = (start as u32, (runs.bit_len() - start) as u32);
                    }
                    steps.push(step);
                    bi += 1;
                    ci += 1;
                }
                // The guards above cover every remaining case.
                (None, Some(_)) | (Some(_), None) | (None, None) => {
                    unreachable!("covered by the guards")
                }
            }
        }
        let n_components = registry.len() as u32;
        let mut stream = BitRuns::default();
        let mut marks = Vec::with_capacity(steps.len() + 1);
        let mut ctx = Context::default();
        let mut after_gap = Vec::with_capacity(steps.len());
        for step in &steps {
            marks.push((stream.bit_len() as u32, ctx));
            after_gap.push(
                (stream.bit_len() as u32) + crate::bits::var_len(gap_of(ctx.previous_id, step.id)),
            );
            let action = step.action(step.base != ABSENT, step.cur != ABSENT);
            write_action(&mut stream, &mut ctx, n_components, step, action, current, &runs, |w| {
                write_entity_fields(w, registry, current.entity(step.cur as usize));
            });
        }
        marks.push((stream.bit_len() as u32, ctx));
        let mut next_pos = Vec::with_capacity(steps.len() + 1);
        let mut base_step = Vec::with_capacity(baseline.len());
        let mut cur_step = Vec::with_capacity(current.len());
        for (k, step) in steps.iter().enumerate() {
            next_pos.push((base_step.len() as u32, cur_step.len() as u32));
            if step.base != ABSENT {
                base_step.push(k as u32);
            }
            if step.cur != ABSENT {
                cur_step.push(k as u32);
            }
        }
        next_pos.push((base_step.len() as u32, cur_step.len() as u32));
        PreparedDelta { steps, runs, stream, marks, after_gap, next_pos, base_step, cur_step }
    }
}

/// The id gap an entry for `id` writes after an entry for `previous` (or first).
fn gap_of(previous: Option<NetId>, id: NetId) -> u32 {
    match previous {
        None => id.0.wrapping_add(1),
        Some(p) => id.0 - p.0,
    }
}

/// Writes one step's entry for `action`; `spawn_fields` writes a spawned entity's fields.
#[expect(clippy::too_many_arguments, reason = "one call site per encoder, all plain borrows")]
fn write_action<W: BitSink>(
    w: &mut W,
    ctx: &mut Context,
    n_components: u32,
    step: &DeltaStep,
    action: Action,
    current: &ReplicatedState,
    update_runs: &BitRuns,
    spawn_fields: impl FnOnce(&mut W),
) {
    let gap = |w: &mut W, ctx: &mut Context| {
        w.write_var(gap_of(ctx.previous_id, step.id));
        ctx.previous_id = Some(step.id);
    };
    match action {
        Action::Nothing => {}
        Action::Update => {
            gap(w, ctx);
            w.write_bits(KIND_UPDATED, 1);
            write_mask(w, step.touched, &mut ctx.previous_touched, n_components);
            let (start, len) = step.span;
            for pos in (start..start + len).step_by(32) {
                let take = (start + len - pos).min(32);
                w.write_bits(update_runs.get(pos as usize, take), take);
            }
        }
        Action::Despawn => {
            gap(w, ctx);
            w.write_bits(KIND_DESPAWNED, 2);
        }
        Action::Spawn => {
            gap(w, ctx);
            w.write_bits(KIND_SPAWNED, 2);
            let mask = current.masks[step.cur as usize];
            write_mask(w, mask, &mut ctx.previous_spawn_mask, n_components);
            spawn_fields(w);
        }
    }
}

/// Encodes the entities of `current` in `view` in full; the same bits as [`super::encode_full`] of
/// those entities. `prepared` is `current` prepared.
pub fn encode_full_prepared(
    registry: &ReplicationRegistry,
    current: &ReplicatedState,
    prepared: &PreparedState,
    view: &View,
    w: &mut BitWriter,
) {
    let n_components = registry.len() as u32;
    let mut previous_id = None;
    let mut previous_mask = 0;
    for i in view.iter().take_while(|&i| i < current.len()) {
        write_gap(w, &mut previous_id, current.ids[i]);
        write_mask(w, current.masks[i], &mut previous_mask, n_components);
        let (start, len) = prepared.spans[i];
        w.write_run(&prepared.runs, start as usize, len as usize);
    }
    w.write_var(0);
}

/// Encodes the delta from the entities of the baseline in `base_view` to the entities of
/// `current` in `view`: the same bits as [`super::encode_delta`] of those subsets. `delta` was
/// prepared from the baseline state to `current`.
pub fn encode_delta_prepared(
    registry: &ReplicationRegistry,
    current: &ReplicatedState,
    delta: &PreparedDelta,
    base_view: &View,
    view: &View,
    w: &mut BitWriter,
) {
    // Wherever this client's entries and context match the see-everything stream, its bits are
    // that stream's: copy them in runs, and write entries one by one only where they differ.
    let n_components = registry.len() as u32;
    let mut ctx = Context::default();
    let mut in_sync = true;
    let mut run_start: Option<u32> = None;
    let n_steps = delta.steps.len();
    let (base_len, cur_len) = (delta.base_step.len(), delta.cur_step.len());
    let mut k = 0;
    // The first step at or after `k` whose baseline or current entity is at view position
    // `b` / `c` (or past the end).
    let step_of = |b: usize, c: usize| {
        let end = n_steps as u32;
        delta
            .base_step
            .get(b)
            .copied()
            .unwrap_or(end)
            .min(delta.cur_step.get(c).copied().unwrap_or(end)) as usize
    };
    while k < n_steps {
        if !in_sync {
            // Steps with no entity in either view write nothing and leave the context alone:
            // skip to the next step this client has an entity in.
            let (b, c) = delta.next_pos[k];
            let event = step_of(
                base_view.next_present(b as usize, base_len),
                view.next_present(c as usize, cur_len),
            );
            if event > k {
                k = event;
                continue;
            }
        }
        if in_sync {
            // Every step before the next entity missing from a view matches the stream.
            let (b, c) = delta.next_pos[k];
            let event = step_of(
                base_view.next_missing(b as usize, base_len),
                view.next_missing(c as usize, cur_len),
            );
            if event > k {
                if run_start.is_none() && delta.marks[event].0 > delta.marks[k].0 {
                    run_start = Some(delta.marks[k].0);
                }
                k = event;
                continue;
            }
        }
        let step = &delta.steps[k];
        let (has_base, has_cur) = (step.base != ABSENT, step.cur != ABSENT);
        let in_base = has_base && base_view.contains(step.base as usize);
        let in_cur = has_cur && view.contains(step.cur as usize);
        let action = step.action(in_base, in_cur);
        if in_sync && action == step.action(has_base, has_cur) {
            if action != Action::Nothing && run_start.is_none() {
                run_start = Some(delta.marks[k].0);
            }
            k += 1;
            continue;
        }
        if let Some(start) = run_start.take() {
            let end = delta.marks[k].0;
            w.write_run(&delta.stream, start as usize, (end - start) as usize);
            ctx = delta.marks[k].1;
        }
        let (_, stream_ctx) = delta.marks[k];
        if action != Action::Nothing
            && action == step.action(has_base, has_cur)
            && ctx.previous_touched == stream_ctx.previous_touched
            && ctx.previous_spawn_mask == stream_ctx.previous_spawn_mask
        {
            // The stream's entry with this client's id gap: after it, the client's context is
            // the stream's again.
            w.write_var(gap_of(ctx.previous_id, step.id));
            let (from, to) = (delta.after_gap[k], delta.marks[k + 1].0);
            w.write_run(&delta.stream, from as usize, (to - from) as usize);
            ctx = delta.marks[k + 1].1;
            in_sync = true;
            k += 1;
            continue;
        }
        // A spawn the stream does not have (the entity came into this client's view): its
        // fields, written for this client. Rare, so the full state is not prepared for it.
        write_action(w, &mut ctx, n_components, step, action, current, &delta.runs, |w| {
            write_entity_fields(w, registry, current.entity(step.cur as usize));
        });
        in_sync = ctx == delta.marks[k + 1].1;
        k += 1;
    }
    if let Some(start) = run_start.take() {
        let end = delta.marks[delta.steps.len()].0;
        w.write_run(&delta.stream, start as usize, (end - start) as usize);
    }
    w.write_var(0);
}
