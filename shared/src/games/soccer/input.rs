//! Soccer's input: [`SoccerInput`] is one tick of a player's intent as it travels (quantized:
//! what the client predicts with is exactly what the server applies), and [`SoccerControl`] is
//! the same dequantized, the component the rules read (NPCs write it directly).

use bevy_ecs::component::Component;
use glam::Vec2;
use serde::{Deserialize, Serialize};

use crate::quantize;

/// One tick of player input as it travels: 4 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct SoccerInput {
    /// Run direction, each axis quantized by [`quantize::axis`] (`-128` reads as `-1`).
    pub run: [i8; 2],
    /// Kick power, `1..=255` from a tap to a full charge; `0` is no kick. A one-tick action.
    pub kick: u8,
    /// Sprint while running (drains stamina).
    pub sprint: bool,
}

impl SoccerInput {
    /// The input for a run direction (each axis in `-1..=1`), a kick power and the sprint
    /// key, quantized.
    #[must_use]
    pub fn new(run: Vec2, kick: u8, sprint: bool) -> SoccerInput {
        SoccerInput { run: [quantize::axis(run.x), quantize::axis(run.y)], kick, sprint }
    }
}

/// One tick of a player's intent (set by the server from the player's [`SoccerInput`]s and by
/// the AI for NPCs; the client builds the same from the frames it sends to predict).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SoccerControl {
    /// Run direction, length at most 1 (1 is full speed).
    pub run: Vec2,
    /// Kick power (`0`: no kick).
    pub kick: u8,
    /// Sprint while running.
    pub sprint: bool,
}

impl SoccerControl {
    /// Dequantizes a wire frame; a run longer than 1 (a diagonal) is scaled down to 1.
    #[must_use]
    pub fn from_frame(frame: &SoccerInput) -> SoccerControl {
        let run = Vec2::new(quantize::axis_value(frame.run[0]), quantize::axis_value(frame.run[1]));
        SoccerControl { run: clamp_run(run), kick: frame.kick, sprint: frame.sprint }
    }
}

/// `v` with length at most 1; non-finite vectors become zero.
pub(crate) fn clamp_run(v: Vec2) -> Vec2 {
    if !v.is_finite() {
        return Vec2::ZERO;
    }
    let len2 = v.length_squared();
    if len2 > 1.0 { v / len2.sqrt() } else { v }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_dequantize_and_clamp() {
        let c = SoccerControl::from_frame(&SoccerInput { run: [127, 127], kick: 9, sprint: true });
        assert!((c.run.length() - 1.0).abs() < 1e-6);
        assert_eq!((c.kick, c.sprint), (9, true));
        let c =
            SoccerControl::from_frame(&SoccerInput { run: [-128, 0], ..SoccerInput::default() });
        assert_eq!(c.run, Vec2::NEG_X);
        assert_eq!(SoccerInput::new(Vec2::new(0.5, -2.0), 3, false).run, [64, -127]);
        assert_eq!(clamp_run(Vec2::NAN), Vec2::ZERO);
    }
}
