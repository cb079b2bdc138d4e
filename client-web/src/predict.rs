//! The own player as drawn: what only a renderer adds to the shared prediction.
//!
//! [`tickwire_shared::client::predict::Predictor`] (inside the shared
//! [`tickwire_shared::client::Session`]) does the netcode: each input the client
//! sends is applied at once with the game's own rules (the very functions the server runs),
//! and on each snapshot the prediction restarts from the server's state after the last input
//! it applied and replays the inputs it has not applied yet. Because the rules are
//! deterministic and the server re-quantizes the player's state every tick, the replay usually
//! lands exactly where the prediction already was. When it does not (a collision with
//! something the client did not know of, a lost input), [`Smoothing`] puts the difference
//! into a visual offset that fades away over a few frames instead of snapping the player, and
//! draws between the last two predicted steps so that motion is smooth at any frame rate.

use glam::Vec2;

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

/// The visual layer over a predicted position: the previous step (drawn towards the newest)
/// and a fading correction. Pure data, driven by the session's steps and reconciliations.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Smoothing {
    /// The predicted position one step before the newest.
    previous: Option<Vec2>,
    /// Visual offset added to the prediction; decays to zero.
    correction: Vec2,
    /// The largest smoothed correction so far (teleports excluded), in world units.
    pub max_error: f32,
}

impl Smoothing {
    /// The prediction stepped from `before` to a new position.
    pub fn stepped(&mut self, before: Vec2) {
        self.previous = Some(before);
    }

    /// Reconciliation moved the prediction from `old` (`None`: there was none) to `new`.
    /// The drawn position does not move on this frame: small errors go into the correction,
    /// teleports (over [`SNAP_DISTANCE`]) are taken at once.
    pub fn reconciled(&mut self, old: Option<Vec2>, new: Vec2) {
        let Some(old) = old else {
            self.previous = Some(new);
            return;
        };
        let error = old - new;
        let distance = error.length();
        if distance > SNAP_DISTANCE || !distance.is_finite() {
            self.correction = Vec2::ZERO;
            self.previous = Some(new);
        } else if distance > 0.0 {
            self.max_error = self.max_error.max(distance);
            // Shift the drawn segment with the prediction and compensate with the offset.
            self.previous = self.previous.map(|p| p - error);
            self.correction += error;
        }
    }

    /// Lets `elapsed_secs` of the correction fade.
    pub fn decay(&mut self, elapsed_secs: f32) {
        let keep = 0.5f32.powf(elapsed_secs.max(0.0) / CORRECTION_HALF_LIFE_SECS);
        self.correction *= keep;
        if self.correction.length() < NEGLIGIBLE_CORRECTION {
            self.correction = Vec2::ZERO;
        }
    }

    /// Where to draw: `alpha` (0..=1) of the way from the previous step to `current`, plus
    /// the correction.
    #[must_use]
    pub fn render(&self, current: Vec2, alpha: f32) -> Vec2 {
        self.previous.unwrap_or(current).lerp(current, alpha.clamp(0.0, 1.0)) + self.correction
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

    #[test]
    fn a_small_error_is_smoothed_not_snapped() {
        let mut s = Smoothing::default();
        let at = Vec2::new(0.0, 200.0);
        s.reconciled(None, at);
        let drawn = s.render(at, 1.0);
        let fixed = Vec2::new(10.0, 200.0);
        s.reconciled(Some(at), fixed);
        assert_eq!(s.render(fixed, 1.0), drawn, "no jump on the frame of the fix");
        assert_eq!(s.render(fixed, 0.0), drawn, "whatever the sub-tick position");
        s.decay(1.0);
        assert_eq!(s.render(fixed, 1.0), fixed);
        assert_eq!(s.max_error, 10.0);
    }

    #[test]
    fn a_teleport_snaps() {
        let mut s = Smoothing::default();
        s.reconciled(None, Vec2::new(-520.0, -320.0));
        s.reconciled(Some(Vec2::new(-520.0, -320.0)), Vec2::new(520.0, 320.0));
        assert_eq!(s.render(Vec2::new(520.0, 320.0), 0.0), Vec2::new(520.0, 320.0));
        assert_eq!(s.max_error, 0.0, "a teleport is not a misprediction");
    }

    #[test]
    fn steps_are_drawn_in_between() {
        let mut s = Smoothing::default();
        s.reconciled(None, Vec2::ZERO);
        s.stepped(Vec2::ZERO);
        assert_eq!(s.render(Vec2::new(4.0, 0.0), 0.5), Vec2::new(2.0, 0.0));
    }
}
