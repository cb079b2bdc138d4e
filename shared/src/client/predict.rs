//! Client-side prediction of the own player, with reconciliation against the server.
//!
//! The own player is stepped locally with the game's own rules ([`Prediction::step`], the very
//! functions the server runs), one step per input frame, so it moves the moment a key is
//! pressed. On each new snapshot the predictor restarts from the server's state for the own
//! entity (which reflects every input up to the echoed `last_input_seq`) and replays the inputs
//! the server has not applied yet. When the two sides agree, as they do on a clean network
//! (positions are on the quantization grid after every step), the replayed position equals the
//! predicted one and nothing moves; a difference is a *correction*, measured and counted.
//!
//! Sans-IO like the rest of the client: inputs and snapshots are passed in.

use glam::Vec2;

use crate::client::Client;
use crate::game::{Game, Prediction};
use crate::tick::Tick;

/// A correction shorter than this (world units) is rounding, not a misprediction: a quarter of
/// a quantization cell.
pub const CORRECTION_EPSILON: f32 = 0.25 / crate::quantize::POSITION_SCALE;

/// Corrections kept for percentiles: the most recent 1,024 (about 34 s at 30 snapshots/s).
pub const MAX_CORRECTION_SAMPLES: usize = 1_024;

/// Why a reconciliation moved the own player: what the client could not have predicted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CorrectionCause {
    /// The rules made a jump (a respawn, a kick-off; [`Prediction::is_teleport`]).
    Teleport,
    /// Something only the server applies moved or stopped the player (a hit's death or
    /// knockback, a push; [`Prediction::is_server_effect`]).
    ServerEffect,
    /// The server ran one of the player's input ticks late: a tick with no frame (the last one
    /// repeated), a frame skipped or dropped (the snapshot's `inputs_late` moved).
    LateInput,
    /// None of the above: the client's rules and the server's disagreed.
    Unexplained,
}

impl CorrectionCause {
    /// Every cause, in report order.
    pub const ALL: [CorrectionCause; 4] = [
        CorrectionCause::ServerEffect,
        CorrectionCause::LateInput,
        CorrectionCause::Teleport,
        CorrectionCause::Unexplained,
    ];

    /// Its name in reports.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            CorrectionCause::Teleport => "teleport",
            CorrectionCause::ServerEffect => "server_effect",
            CorrectionCause::LateInput => "late_input",
            CorrectionCause::Unexplained => "unexplained",
        }
    }

    /// Whether it is a misprediction (the netcode's to remove): a late input or unexplained.
    #[must_use]
    pub fn is_misprediction(self) -> bool {
        matches!(self, CorrectionCause::LateInput | CorrectionCause::Unexplained)
    }

    /// Its place in [`CorrectionCause::ALL`].
    #[must_use]
    pub fn index(self) -> usize {
        match self {
            CorrectionCause::ServerEffect => 0,
            CorrectionCause::LateInput => 1,
            CorrectionCause::Teleport => 2,
            CorrectionCause::Unexplained => 3,
        }
    }
}

/// The corrections of one cause.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CauseStats {
    /// Corrections over [`CORRECTION_EPSILON`].
    pub count: u64,
    /// The most recent distances (bounded by [`MAX_CORRECTION_SAMPLES`]).
    pub recent: Vec<f32>,
}

impl CauseStats {
    fn record(&mut self, distance: f32) {
        self.count += 1;
        if self.recent.len() >= MAX_CORRECTION_SAMPLES {
            self.recent.remove(0);
        }
        self.recent.push(distance);
    }
}

/// Prediction statistics.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct PredictionStats {
    /// Snapshots reconciled.
    pub reconciliations: u64,
    /// Reconciliations that moved the predicted position by more than [`CORRECTION_EPSILON`].
    pub corrections: u64,
    /// Sum of correction distances (world units), for the mean.
    pub correction_sum: f64,
    /// The most recent correction distances (bounded by [`MAX_CORRECTION_SAMPLES`]).
    pub recent: Vec<f32>,
    /// Every correction (teleports included) by cause, in [`CorrectionCause::ALL`]'s order.
    pub by_cause: [CauseStats; 4],
}

impl PredictionStats {
    /// Counts one reconciliation that moved the prediction by `distance`: a correction when it
    /// is over [`CORRECTION_EPSILON`] (the newest [`MAX_CORRECTION_SAMPLES`] are kept).
    pub fn record(&mut self, distance: f32) {
        self.reconciliations += 1;
        if distance > CORRECTION_EPSILON {
            self.corrections += 1;
            self.correction_sum += f64::from(distance);
            if self.recent.len() >= MAX_CORRECTION_SAMPLES {
                self.recent.remove(0);
            }
            self.recent.push(distance);
        }
    }

    /// Counts one correction of `cause` (teleports too) by `distance`, when over
    /// [`CORRECTION_EPSILON`].
    pub fn record_cause(&mut self, cause: CorrectionCause, distance: f32) {
        if distance > CORRECTION_EPSILON {
            self.by_cause[cause.index()].record(distance);
        }
    }

    /// The corrections of `cause`.
    #[must_use]
    pub fn cause(&self, cause: CorrectionCause) -> &CauseStats {
        &self.by_cause[cause.index()]
    }

    /// Mean correction distance, in world units (0 with no corrections).
    #[must_use]
    pub fn mean(&self) -> f64 {
        if self.corrections == 0 { 0.0 } else { self.correction_sum / self.corrections as f64 }
    }

    /// The `q` quantile (0..=1) of the recent corrections, in world units.
    #[must_use]
    pub fn quantile(&self, q: f64) -> f32 {
        if self.recent.is_empty() {
            return 0.0;
        }
        let mut sorted = self.recent.clone();
        sorted.sort_by(f32::total_cmp);
        let i = ((sorted.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
        sorted[i]
    }
}

/// Predicts the own player of game `G` from local inputs and reconciles with snapshots.
pub struct Predictor<G: Game> {
    rules: G::Prediction,
    state: Option<<G::Prediction as Prediction>::State>,
    reconciled: Option<Tick>,
    /// Whether the last reconciliation was a teleport ([`Prediction::is_teleport`]).
    teleported: bool,
    /// The cause of the last reconciliation's correction.
    cause: Option<CorrectionCause>,
    /// The server's count of late input ticks at the last reconciliation.
    inputs_late: Option<u32>,
    stats: PredictionStats,
}

impl<G: Game> std::fmt::Debug for Predictor<G> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Predictor")
            .field("state", &self.state)
            .field("reconciled", &self.reconciled)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<G: Game> Predictor<G> {
    /// A predictor for a server stepping `tick_rate` times a second (from `Welcome`).
    #[must_use]
    pub fn new(tick_rate: u16) -> Predictor<G> {
        Predictor {
            rules: G::Prediction::new(tick_rate),
            state: None,
            reconciled: None,
            teleported: false,
            cause: None,
            inputs_late: None,
            stats: PredictionStats::default(),
        }
    }

    /// Steps the prediction by one input frame. Call it with each frame given to
    /// [`Client::push_input`], in the same order.
    pub fn apply_input(&mut self, frame: &G::Input) {
        if let Some(state) = &mut self.state
            && G::Prediction::is_active(state)
        {
            self.rules.step(state, frame);
        }
    }

    /// Reconciles with the client's newest snapshot, if it is newer than the last one used:
    /// restarts from the server's state of the own entity and replays the inputs it has not
    /// applied. Returns the correction distance in world units when there was a snapshot to
    /// use (a teleport's too; see [`Predictor::teleported`]).
    pub fn reconcile(&mut self, client: &Client<G>) -> Option<f32> {
        let (tick, state) = client.latest()?;
        if self.reconciled == Some(tick) {
            return None;
        }
        let own = client.own_entity()?;
        let mut replayed = self.rules.read(client.registry(), state.get(own)?)?;
        self.reconciled = Some(tick);
        if G::Prediction::is_active(&replayed) {
            for (_, frame) in client.unacked_inputs() {
                self.rules.step(&mut replayed, &frame);
            }
        }
        let new = G::Prediction::position(&replayed);
        let correction = self.state.map_or(0.0, |old| G::Prediction::position(&old).distance(new));
        self.teleported = self.state.is_some_and(|old| G::Prediction::is_teleport(&old, &replayed));
        let late = client.inputs_late();
        let ran_late = self.inputs_late.is_some_and(|before| before != late);
        self.inputs_late = Some(late);
        self.cause = self.state.map(|old| {
            if self.teleported {
                CorrectionCause::Teleport
            } else if G::Prediction::is_server_effect(&old, &replayed) {
                CorrectionCause::ServerEffect
            } else if ran_late {
                CorrectionCause::LateInput
            } else {
                CorrectionCause::Unexplained
            }
        });
        self.state = Some(replayed);
        if !self.teleported {
            self.stats.record(correction);
        }
        if let Some(cause) = self.cause {
            self.stats.record_cause(cause, correction);
        }
        Some(correction)
    }

    /// Why the last reconciliation moved the player, if it did (see [`CorrectionCause`]; a
    /// first reconciliation has none).
    #[must_use]
    pub fn last_cause(&self) -> Option<CorrectionCause> {
        self.cause
    }

    /// The predicted position of the own player (`None` before the first snapshot with it).
    #[must_use]
    pub fn position(&self) -> Option<Vec2> {
        self.state.as_ref().map(G::Prediction::position)
    }

    /// The predicted state.
    #[must_use]
    pub fn state(&self) -> Option<<G::Prediction as Prediction>::State> {
        self.state
    }

    /// Whether inputs move the own player in the newest reconciled state (a dead player's do
    /// not).
    #[must_use]
    pub fn active(&self) -> bool {
        self.state.as_ref().is_none_or(G::Prediction::is_active)
    }

    /// Whether the last reconciliation was a teleport (a respawn, a kick-off: not counted in
    /// the statistics).
    #[must_use]
    pub fn teleported(&self) -> bool {
        self.teleported
    }

    /// Prediction statistics (teleports left out).
    #[must_use]
    pub fn stats(&self) -> &PredictionStats {
        &self.stats
    }
}
