//! Quantization: the exact, lossy mapping from simulation values (`f32`) to the small integers
//! that are sent and that the client predicts from. Both sides call these same functions, so a
//! quantized value means the same thing everywhere.
//!
//! Every function is total: NaN maps to zero and out-of-range values saturate, so hostile or
//! broken simulation state can never panic an encoder.

use glam::Vec2;

/// Grid cells per world unit for positions: a position is sent as a multiple of 1/64 unit, so the
/// round trip is off by at most 1/128 unit (half a cell). 64 keeps a ±1,000-unit arena inside
/// 17 bits per axis while staying far below what a player can see at any zoom we draw.
pub const POSITION_SCALE: f32 = 64.0;

/// Largest error a position round trip can add, per axis, in world units.
pub const POSITION_PRECISION: f32 = 0.5 / POSITION_SCALE;

/// Angle steps in a full turn: angles are sent in 16 bits, about 0.0055° a step.
pub const ANGLE_STEPS: f32 = 65_536.0;

/// Largest error an angle round trip can add, in radians (half a step).
pub const ANGLE_PRECISION: f32 = std::f32::consts::PI / ANGLE_STEPS;

/// Steps per axis of a movement input: each axis is an `i8` in `-127..=127`.
pub const AXIS_STEPS: f32 = 127.0;

/// Rounds `v * scale` to the nearest integer, saturating at the `i32` range; NaN gives 0.
fn scaled(v: f32, scale: f32) -> i32 {
    // `as` from float saturates and maps NaN to 0, which is exactly the totality we want.
    (v * scale).round() as i32
}

/// A world coordinate on the 1/64 grid.
#[must_use]
pub fn position(v: f32) -> i32 {
    scaled(v, POSITION_SCALE)
}

/// The world coordinate a grid value stands for.
#[must_use]
pub fn position_value(q: i32) -> f32 {
    q as f32 / POSITION_SCALE
}

/// A 2D position on the grid.
#[must_use]
pub fn position2(v: Vec2) -> [i32; 2] {
    [position(v.x), position(v.y)]
}

/// The 2D position a grid pair stands for.
#[must_use]
pub fn position2_value(q: [i32; 2]) -> Vec2 {
    Vec2::new(position_value(q[0]), position_value(q[1]))
}

/// An angle in radians (any range) as 16 bits: 0 is +x, a step is 2π/65,536.
#[must_use]
pub fn angle(radians: f32) -> u16 {
    if !radians.is_finite() {
        return 0;
    }
    let turns = radians / std::f32::consts::TAU;
    let frac = turns - turns.floor();
    ((frac * ANGLE_STEPS).round() as u32 & 0xffff) as u16
}

/// The angle 16 bits stand for, in radians in `[-π, π)`.
#[must_use]
pub fn angle_value(q: u16) -> f32 {
    f32::from(q as i16) * (std::f32::consts::PI / 32_768.0)
}

/// One movement axis in `-1.0..=1.0` as an `i8` in `-127..=127` (step 1/127).
#[must_use]
pub fn axis(v: f32) -> i8 {
    scaled(v.clamp(-1.0, 1.0), AXIS_STEPS) as i8
}

/// The axis value an `i8` stands for; `-128` reads as `-1.0`.
#[must_use]
pub fn axis_value(q: i8) -> f32 {
    (f32::from(q) / AXIS_STEPS).max(-1.0)
}

/// A small non-negative quantity (health, ammo) as a `u8`: rounded, saturating at `0..=255`.
#[must_use]
pub fn small(v: f32) -> u8 {
    scaled(v, 1.0).clamp(0, 255) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::f32::consts::PI;

    #[test]
    fn position_round_trip_is_within_half_a_cell() {
        for &v in &[0.0, 1.0, -1.0, 0.3, -0.3, 123.456, -999.99, 1000.0, 1e-6] {
            let back = position_value(position(v));
            assert!((back - v).abs() <= POSITION_PRECISION, "{v} -> {back}");
        }
        assert_eq!(position(1.0), 64);
        assert_eq!(position(-0.5), -32);
    }

    #[test]
    fn position_is_total() {
        assert_eq!(position(f32::NAN), 0);
        assert_eq!(position(f32::INFINITY), i32::MAX);
        assert_eq!(position(f32::NEG_INFINITY), i32::MIN);
        assert_eq!(position(1e30), i32::MAX);
    }

    #[test]
    fn angle_round_trip_is_within_half_a_step() {
        for i in -100..=100 {
            let a = i as f32 * 0.031_4;
            let back = angle_value(angle(a));
            // Compare on the circle.
            let d = (back - a).rem_euclid(std::f32::consts::TAU);
            let d = d.min(std::f32::consts::TAU - d);
            assert!(d <= ANGLE_PRECISION * 1.01, "{a} -> {back} ({d})");
        }
        assert_eq!(angle(0.0), 0);
        assert_eq!(angle(PI / 2.0), 16_384);
        assert_eq!(angle(-PI / 2.0), 49_152);
        assert_eq!(angle(f32::NAN), 0);
        assert_eq!(angle_value(49_152), -PI / 2.0);
    }

    #[test]
    fn axis_and_small_saturate() {
        assert_eq!(axis(1.0), 127);
        assert_eq!(axis(-7.0), -127);
        assert_eq!(axis(f32::NAN), 0);
        assert_eq!(axis_value(-128), -1.0);
        assert!((axis_value(axis(0.5)) - 0.5).abs() <= 0.5 / AXIS_STEPS);
        assert_eq!(small(99.6), 100);
        assert_eq!(small(-3.0), 0);
        assert_eq!(small(300.0), 255);
    }
}
