//! What a soccer client predicts: its own player's position, facing and stamina, stepped with
//! the very [`step_player`] the server's movement system runs. The ball is not predicted (it
//! is interpolated like everyone else): its bounces off other players cannot be known ahead.

use glam::Vec2;

use super::components::{Facing, Position, Stamina};
use super::input::{SoccerControl, SoccerInput};
use super::movement::{PlayerState, step_player};
use crate::game::Prediction;
use crate::registry::ReplicationRegistry;
use crate::snapshot::EntityView;

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
}
