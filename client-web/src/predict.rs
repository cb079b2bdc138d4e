//! Prediction of the player's own entity, with reconciliation and visual smoothing.
//!
//! Each input the client sends is applied at once with the shared [`step_mover`] (the very
//! function the server's movement system runs). On each snapshot the prediction restarts from
//! the server's state after the last input it applied and replays the inputs it has not applied
//! yet ([`tickwire_shared::client::Client::unacked_inputs`]). Because `step_mover` is
//! deterministic and ends on the quantization grid, the replay usually lands exactly where the
//! prediction already was; when it does not (a collision with something the client did not
//! know of, a lost input), the difference goes into a visual offset that fades away over a few
//! frames instead of snapping the player.

use glam::Vec2;
use tickwire_shared::game::{Arena, MoverState, PlayerInput, step_mover};
use tickwire_shared::protocol::InputFrame;

/// Half-life of the visual correction, in seconds: 60 ms hides a small correction within four
/// frames at 60 fps, quick enough that the drawn player never feels detached from the input.
pub const CORRECTION_HALF_LIFE_SECS: f32 = 0.06;

/// A prediction error larger than this (in world units) is a teleport (a respawn, a resumed
/// session), not a misprediction: it is applied at once instead of smoothed. 120 units is
/// more than a dash covers in a round trip of 100 ms.
pub const SNAP_DISTANCE: f32 = 120.0;

/// A correction shorter than this (world units) is dropped: a sixteenth of the quantization
/// grid, far below a pixel.
const NEGLIGIBLE_CORRECTION: f32 = 1.0 / 1024.0;

/// The own player's predicted state; see the [module documentation](self).
#[derive(Clone, Debug)]
pub struct Predictor {
    arena: Arena,
    dt: f32,
    state: Option<MoverState>,
    /// The predicted position one step before `state` (drawn between the two).
    previous: Vec2,
    /// Visual offset added to the prediction; decays to zero.
    correction: Vec2,
    alive: bool,
    /// Reconciliations that changed the prediction (for diagnostics).
    pub mispredictions: u64,
    /// The size of the last misprediction, in world units.
    pub last_error: f32,
    /// The largest smoothed misprediction so far (teleports excluded), in world units.
    pub max_error: f32,
}

impl Predictor {
    /// A predictor for a server stepping `tick_rate` times a second (zero counts as one).
    #[must_use]
    pub fn new(tick_rate: u16) -> Predictor {
        Predictor {
            arena: Arena::standard(),
            dt: 1.0 / f32::from(tick_rate.max(1)),
            state: None,
            previous: Vec2::ZERO,
            correction: Vec2::ZERO,
            alive: true,
            mispredictions: 0,
            last_error: 0.0,
            max_error: 0.0,
        }
    }

    /// Applies one input the client has just sent. Before the first snapshot, and while the
    /// player is dead (the server does not move the dead), nothing moves.
    pub fn step(&mut self, frame: &InputFrame) {
        let Some(state) = self.state.as_mut() else { return };
        self.previous = state.position;
        if self.alive {
            step_mover(state, &PlayerInput::from_frame(frame), &self.arena, self.dt);
        }
    }

    /// Restarts from the server's `server` state (after the last input it applied) and
    /// replays `unacked`, oldest first. A difference from the previous prediction is smoothed
    /// unless it is over [`SNAP_DISTANCE`].
    pub fn reconcile(
        &mut self,
        server: MoverState,
        alive: bool,
        unacked: impl IntoIterator<Item = InputFrame>,
    ) {
        self.alive = alive;
        let mut state = server;
        let mut before_last = state.position;
        if alive {
            for frame in unacked {
                before_last = state.position;
                step_mover(&mut state, &PlayerInput::from_frame(&frame), &self.arena, self.dt);
            }
        }
        match self.state {
            Some(old) => {
                let error = old.position - state.position;
                let distance = error.length();
                if distance > 0.0 {
                    self.mispredictions += 1;
                    self.last_error = distance;
                }
                if distance > SNAP_DISTANCE || !distance.is_finite() {
                    self.correction = Vec2::ZERO;
                    self.previous = state.position;
                } else {
                    self.max_error = self.max_error.max(distance);
                    // Shift the drawn segment with the prediction and compensate with the
                    // offset, so the drawn position does not move this frame.
                    self.previous -= error;
                    self.correction += error;
                }
            }
            None => self.previous = before_last,
        }
        self.state = Some(state);
    }

    /// Lets `elapsed_secs` of the visual correction fade.
    pub fn decay(&mut self, elapsed_secs: f32) {
        let keep = 0.5f32.powf(elapsed_secs.max(0.0) / CORRECTION_HALF_LIFE_SECS);
        self.correction *= keep;
        if self.correction.length() < NEGLIGIBLE_CORRECTION {
            self.correction = Vec2::ZERO;
        }
    }

    /// The predicted position after the newest input (no smoothing), once known.
    #[must_use]
    pub fn position(&self) -> Option<Vec2> {
        self.state.map(|s| s.position)
    }

    /// Where to draw the player: `alpha` (0..=1) of the way from the previous step to the
    /// newest, plus the fading correction.
    #[must_use]
    pub fn render_position(&self, alpha: f32) -> Option<Vec2> {
        let state = self.state?;
        Some(self.previous.lerp(state.position, alpha.clamp(0.0, 1.0)) + self.correction)
    }

    /// The current visual correction (world units).
    #[must_use]
    pub fn correction(&self) -> Vec2 {
        self.correction
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tickwire_shared::protocol::Buttons;
    use tickwire_shared::quantize;

    fn right() -> InputFrame {
        InputFrame { movement: [quantize::axis(1.0), 0], aim: 0, buttons: Buttons::default() }
    }

    fn at(x: f32, y: f32) -> MoverState {
        MoverState { position: Vec2::new(x, y), ..MoverState::default() }
    }

    #[test]
    fn replaying_what_the_server_will_apply_matches_exactly() {
        let mut p = Predictor::new(60);
        p.reconcile(at(-520.0, -320.0), true, []);
        for _ in 0..10 {
            p.step(&right());
        }
        let predicted = p.position().unwrap();
        // The server applied 4 of the 10 inputs; the client replays the other 6.
        let mut server = at(-520.0, -320.0);
        for _ in 0..4 {
            step_mover(
                &mut server,
                &PlayerInput::from_frame(&right()),
                &Arena::standard(),
                1.0 / 60.0,
            );
        }
        p.reconcile(server, true, std::iter::repeat_n(right(), 6));
        assert_eq!(p.position().unwrap(), predicted);
        assert_eq!(p.correction(), Vec2::ZERO);
        assert!(predicted.x > -520.0, "moved right: {predicted}");
    }

    #[test]
    fn a_small_error_is_smoothed_not_snapped() {
        let mut p = Predictor::new(60);
        p.reconcile(at(0.0, 200.0), true, []);
        let drawn = p.render_position(1.0).unwrap();
        p.reconcile(at(10.0, 200.0), true, []);
        assert_eq!(p.render_position(1.0).unwrap(), drawn, "no jump on the frame of the fix");
        p.decay(1.0);
        assert_eq!(p.render_position(1.0).unwrap(), Vec2::new(10.0, 200.0));
    }

    #[test]
    fn a_teleport_snaps() {
        let mut p = Predictor::new(60);
        p.reconcile(at(-520.0, -320.0), true, []);
        p.reconcile(at(520.0, 320.0), true, []);
        assert_eq!(p.render_position(0.0).unwrap(), Vec2::new(520.0, 320.0));
    }

    #[test]
    fn the_dead_do_not_move() {
        let mut p = Predictor::new(60);
        p.reconcile(at(0.0, 200.0), false, [right()]);
        p.step(&right());
        assert_eq!(p.position().unwrap(), Vec2::new(0.0, 200.0));
    }
}
