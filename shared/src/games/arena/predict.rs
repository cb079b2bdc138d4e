//! What an arena client predicts: its own player's movement and dash, stepped with the very
//! [`step_mover`] the server's movement system runs.

use glam::Vec2;

use super::components::{Dash, Health, Position};
use super::input::{ArenaInput, PlayerInput};
use super::layout::Arena;
use super::movement::{MoverState, step_mover};
use crate::game::Prediction;
use crate::registry::ReplicationRegistry;
use crate::snapshot::EntityView;

/// The arena's [`Prediction`]: the standard arena and the tick length.
#[derive(Clone, Debug)]
pub struct ArenaPrediction {
    arena: Arena,
    dt: f32,
}

/// The predicted part of the own player.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ArenaPredicted {
    /// Position and dash state.
    pub mover: MoverState,
    /// Whether it is alive (a dead player does not move).
    pub alive: bool,
}

impl Prediction for ArenaPrediction {
    type Input = ArenaInput;
    type State = ArenaPredicted;

    fn new(tick_rate: u16) -> ArenaPrediction {
        ArenaPrediction { arena: Arena::standard(), dt: 1.0 / f32::from(tick_rate.max(1)) }
    }

    fn read(
        &self,
        registry: &ReplicationRegistry,
        entity: EntityView<'_>,
    ) -> Option<ArenaPredicted> {
        let position = registry.get::<Position>(entity)?.0;
        let dash = registry.get::<Dash>(entity).unwrap_or_default();
        let alive = registry.get::<Health>(entity).is_none_or(|h| h.0 > 0.0);
        Some(ArenaPredicted {
            mover: MoverState {
                position,
                dash_cooldown: dash.cooldown,
                dash_ticks_left: dash.ticks_left,
            },
            alive,
        })
    }

    fn step(&self, state: &mut ArenaPredicted, input: &ArenaInput) {
        if state.alive {
            step_mover(&mut state.mover, &PlayerInput::from_frame(input), &self.arena, self.dt);
        }
    }

    fn position(state: &ArenaPredicted) -> Vec2 {
        state.mover.position
    }

    fn is_active(state: &ArenaPredicted) -> bool {
        state.alive
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_respawn_is_a_teleport_and_a_step_is_not() {
        let at = |x: f32, alive| ArenaPredicted {
            mover: MoverState { position: Vec2::new(x, 0.0), ..MoverState::default() },
            alive,
        };
        assert!(ArenaPrediction::is_teleport(&at(0.0, false), &at(500.0, true)));
        assert!(!ArenaPrediction::is_teleport(&at(0.0, true), &at(3.0, true)));
        assert!(!ArenaPrediction::is_teleport(&at(0.0, true), &at(0.0, false)), "dying is not");
    }
}
