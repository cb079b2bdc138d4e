//! What a soccer client predicts: its own player's position, facing and stamina, stepped with
//! the very [`step_player`] the server's movement system runs. The ball is not predicted (it
//! is interpolated like everyone else): its bounces off other players cannot be known ahead.

use glam::Vec2;

use super::components::{Facing, Position, Stamina};
use super::input::{SoccerControl, SoccerInput};
use super::movement::{PlayerState, SPRINT_SPEED, step_player};
use crate::game::Prediction;
use crate::registry::ReplicationRegistry;
use crate::snapshot::EntityView;

/// Farther than a sprint covers in this long, a correction is the kick-off putting the player
/// back on its formation spot, not a misprediction: half a second is more than any round trip
/// a match is playable at.
pub const KICKOFF_JUMP_SECS: f32 = 0.5;

/// Soccer's [`Prediction`]: the tick length.
#[derive(Clone, Debug)]
pub struct SoccerPrediction {
    dt: f32,
}

impl Prediction for SoccerPrediction {
    type Input = SoccerInput;
    type State = PlayerState;

    fn new(tick_rate: u16) -> SoccerPrediction {
        SoccerPrediction { dt: 1.0 / f32::from(tick_rate.max(1)) }
    }

    fn read(&self, registry: &ReplicationRegistry, entity: EntityView<'_>) -> Option<PlayerState> {
        Some(PlayerState {
            position: registry.get::<Position>(entity)?.0,
            facing: registry.get::<Facing>(entity)?.0,
            stamina: registry.get::<Stamina>(entity)?.0,
        })
    }

    fn step(&self, state: &mut PlayerState, input: &SoccerInput) {
        step_player(state, &SoccerControl::from_frame(input), self.dt);
    }

    fn position(state: &PlayerState) -> Vec2 {
        state.position
    }

    /// A kick-off: the player moved farther than it could run (`KICKOFF_JUMP_SECS` of running).
    fn is_teleport(old: &PlayerState, new: &PlayerState) -> bool {
        old.position.distance(new.position) > SPRINT_SPEED * KICKOFF_JUMP_SECS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_kickoff_jump_is_a_teleport_and_a_run_is_not() {
        let at = |x: f32| PlayerState { position: Vec2::new(x, 0.0), facing: 0.0, stamina: 50.0 };
        assert!(SoccerPrediction::is_teleport(&at(-300.0), &at(0.0)), "back to the centre");
        assert!(!SoccerPrediction::is_teleport(&at(0.0), &at(20.0)), "a few ticks of running");
    }
}
