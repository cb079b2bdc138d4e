//! The arena's input: [`ArenaInput`] is one tick of a player's intent as it travels (quantized:
//! what the client predicts with is exactly what the server applies), and [`PlayerInput`] is
//! the same dequantized, the component the rules read (NPCs write it directly).

use bevy_ecs::component::Component;
use glam::Vec2;
use serde::{Deserialize, Serialize};

use crate::quantize;

/// Buttons held during one input frame, one bit each.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, Default, Serialize, Deserialize)]
pub struct Buttons(pub u8);

impl Buttons {
    /// Shoot a projectile along the aim.
    pub const FIRE: Buttons = Buttons(1);
    /// Dash along the movement vector (on a cooldown).
    pub const DASH: Buttons = Buttons(2);
    /// Every defined button.
    pub const ALL: Buttons = Buttons(3);

    /// Whether every button of `other` is held.
    #[must_use]
    pub fn contains(self, other: Buttons) -> bool {
        self.0 & other.0 == other.0
    }

    /// `self` with the buttons of `other` held as well.
    #[must_use]
    pub fn with(self, other: Buttons) -> Buttons {
        Buttons(self.0 | other.0)
    }
}

/// One tick of player input as it travels: 4–6 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Default, Serialize, Deserialize)]
pub struct ArenaInput {
    /// Movement vector, each axis quantized by [`crate::quantize::axis`].
    pub movement: [i8; 2],
    /// Aim direction, quantized by [`crate::quantize::angle`].
    pub aim: u16,
    /// Buttons held.
    pub buttons: Buttons,
}

impl ArenaInput {
    /// The input for a movement direction (each axis in `-1..=1`), an aim in radians and
    /// buttons, quantized.
    #[must_use]
    pub fn new(movement: Vec2, aim: f32, buttons: Buttons) -> ArenaInput {
        ArenaInput {
            movement: [quantize::axis(movement.x), quantize::axis(movement.y)],
            aim: quantize::angle(aim),
            buttons,
        }
    }
}

/// One tick of a combatant's intent: movement, aim and buttons. Set by the server from the
/// player's [`ArenaInput`]s and by the AI for NPCs; the client builds the same from the frames
/// it sends.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PlayerInput {
    /// Desired movement, length at most 1 (1 is full [`super::PLAYER_SPEED`]).
    pub movement: Vec2,
    /// Aim direction in radians (0 is +x, counter-clockwise).
    pub aim: f32,
    /// Buttons held ([`Buttons::FIRE`], [`Buttons::DASH`]).
    pub buttons: Buttons,
}

impl PlayerInput {
    /// Dequantizes a wire frame; movement longer than 1 (a diagonal) is scaled down to 1.
    #[must_use]
    pub fn from_frame(frame: &ArenaInput) -> PlayerInput {
        let movement = Vec2::new(
            quantize::axis_value(frame.movement[0]),
            quantize::axis_value(frame.movement[1]),
        );
        PlayerInput {
            movement: clamp_movement(movement),
            aim: quantize::angle_value(frame.aim),
            buttons: frame.buttons,
        }
    }

    /// This input with non-finite values replaced by zero and movement clamped to length 1.
    #[must_use]
    pub fn sanitized(self) -> PlayerInput {
        PlayerInput {
            movement: clamp_movement(self.movement),
            aim: if self.aim.is_finite() { self.aim } else { 0.0 },
            buttons: self.buttons,
        }
    }
}

/// `v` with length at most 1; non-finite vectors become zero.
pub(crate) fn clamp_movement(v: Vec2) -> Vec2 {
    if !v.is_finite() {
        return Vec2::ZERO;
    }
    let len2 = v.length_squared();
    if len2 > 1.0 { v / len2.sqrt() } else { v }
}
