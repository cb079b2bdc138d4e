//! Client-side prediction of the own player, with reconciliation against the server.
//!
//! The own player is stepped locally with the very function the server uses
//! ([`crate::game::step_mover`]), one step per input frame, so it moves the moment a key is
//! pressed. On each new snapshot the predictor restarts from the server's state for the own
//! entity (which reflects every input up to the echoed `last_input_seq`) and replays the inputs
//! the server has not applied yet. When the two sides agree, as they do on a clean network
//! (positions are on the quantization grid after every step), the replayed position equals the
//! predicted one and nothing moves; a difference is a *correction*, measured and counted.
//!
//! Sans-IO like the rest of the client: inputs and snapshots are passed in.

use glam::Vec2;

use crate::client::Client;
use crate::game::{Arena, Dash, Health, MoverState, PlayerInput, Position, step_mover};
use crate::protocol::InputFrame;
use crate::tick::Tick;

/// A correction shorter than this (world units) is rounding, not a misprediction: a quarter of
/// a quantization cell.
pub const CORRECTION_EPSILON: f32 = 0.25 / crate::quantize::POSITION_SCALE;

/// Corrections kept for percentiles: the most recent 1,024 (about 34 s at 30 snapshots/s).
pub const MAX_CORRECTION_SAMPLES: usize = 1_024;

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
}

impl PredictionStats {
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

/// Predicts the own player from local inputs and reconciles with snapshots.
#[derive(Debug)]
pub struct Predictor {
    arena: Arena,
    dt: f32,
    state: Option<MoverState>,
    alive: bool,
    reconciled: Option<Tick>,
    stats: PredictionStats,
}

impl Predictor {
    /// A predictor for the standard arena at `tick_rate` (from `Welcome`).
    #[must_use]
    pub fn new(arena: Arena, tick_rate: u16) -> Predictor {
        Predictor {
            arena,
            dt: 1.0 / f32::from(tick_rate.max(1)),
            state: None,
            alive: true,
            reconciled: None,
            stats: PredictionStats::default(),
        }
    }

    /// Steps the prediction by one input frame. Call it with each frame given to
    /// [`Client::push_input`], in the same order.
    pub fn apply_input(&mut self, frame: &InputFrame) {
        if !self.alive {
            return;
        }
        if let Some(state) = &mut self.state {
            step_mover(state, &PlayerInput::from_frame(frame), &self.arena, self.dt);
        }
    }

    /// Reconciles with the client's newest snapshot, if it is newer than the last one used.
    /// Returns the correction distance in world units when there was a snapshot to use.
    pub fn reconcile(&mut self, client: &Client) -> Option<f32> {
        let (tick, state) = client.latest()?;
        if self.reconciled == Some(tick) {
            return None;
        }
        let own = client.own_entity()?;
        let entity = state.get(own)?;
        let registry = client.registry();
        let position = registry.get::<Position>(entity)?.0;
        let dash = registry.get::<Dash>(entity).unwrap_or_default();
        self.alive = registry.get::<Health>(entity).is_none_or(|h| h.0 > 0.0);
        self.reconciled = Some(tick);
        let mut replayed =
            MoverState { position, dash_cooldown: dash.cooldown, dash_ticks_left: dash.ticks_left };
        if self.alive {
            for (_, frame) in client.unacked_inputs() {
                step_mover(&mut replayed, &PlayerInput::from_frame(&frame), &self.arena, self.dt);
            }
        }
        let correction = self.state.map_or(0.0, |old| old.position.distance(replayed.position));
        self.state = Some(replayed);
        self.stats.reconciliations += 1;
        if correction > CORRECTION_EPSILON {
            self.stats.corrections += 1;
            self.stats.correction_sum += f64::from(correction);
            if self.stats.recent.len() == MAX_CORRECTION_SAMPLES {
                self.stats.recent.remove(0);
            }
            self.stats.recent.push(correction);
        }
        Some(correction)
    }

    /// The predicted position of the own player (`None` before the first snapshot with it).
    #[must_use]
    pub fn position(&self) -> Option<Vec2> {
        self.state.map(|s| s.position)
    }

    /// The predicted mover state.
    #[must_use]
    pub fn state(&self) -> Option<MoverState> {
        self.state
    }

    /// Whether the own player is alive in the newest snapshot.
    #[must_use]
    pub fn alive(&self) -> bool {
        self.alive
    }

    /// Prediction statistics.
    #[must_use]
    pub fn stats(&self) -> &PredictionStats {
        &self.stats
    }
}
