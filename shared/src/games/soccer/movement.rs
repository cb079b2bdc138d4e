//! Pure, deterministic player movement shared by the server's movement system and the client's
//! prediction: [`step_player`] advances one [`PlayerState`] (position, facing, stamina) by one
//! tick of [`SoccerControl`].
//!
//! It uses only `+ - * /`, `sqrt`, `floor` and `round` on `f32` (all exact or correctly
//! rounded by IEEE 754), never the platform's trigonometry: the facing angle comes from
//! [`heading`], an `atan2` built from those operations, so the native server and the wasm
//! client compute bit-identical results. Every step ends on the grids the values are sent on
//! (position 1/64 unit, facing 16-bit angle, stamina 1/64), so what the server simulates is
//! what it replicates, and a client replaying its inputs from a snapshot follows the server's
//! path exactly.

use glam::Vec2;

use super::input::{SoccerControl, clamp_run};
use super::pitch::PITCH_HALF_EXTENTS;
use crate::quantize;

/// Radius of a player's circle, in units: the ball (radius 8) is a bit over half a player
/// across, big enough to see at a glance on the whole-pitch view.
pub const PLAYER_RADIUS: f32 = 14.0;

/// Running speed, in units per second: the 1000-unit pitch in five seconds, quick enough to
/// chase a rolling ball, slow enough that a pass beats a runner.
pub const RUN_SPEED: f32 = 200.0;

/// Sprinting speed, in units per second: half again as fast as running, enough to break away
/// from a marker for a few seconds.
pub const SPRINT_SPEED: f32 = 300.0;

/// Full stamina (and where every player starts).
pub const MAX_STAMINA: f32 = 100.0;

/// Stamina a second of sprinting costs: a full tank lasts 3.3 s of sprint, one break-away.
pub const SPRINT_DRAIN_PER_SEC: f32 = 30.0;

/// Stamina a second without the sprint key brings back: empty to full in 6.7 s, so sprinting
/// is a choice made a few times a minute.
pub const STAMINA_REGEN_PER_SEC: f32 = 15.0;

/// Steps of [`super::Stamina`]'s grid per unit (its `#[quantize(scale = 64)]`).
const STAMINA_SCALE: f32 = 64.0;

/// The part of a player that moves with its input: what the client predicts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PlayerState {
    /// Position, on the position grid after every step.
    pub position: Vec2,
    /// Facing in radians, on the angle grid after every step.
    pub facing: f32,
    /// Stamina `0..=MAX_STAMINA`, on its 1/64 grid after every step.
    pub stamina: f32,
}

/// The angle of `v` in radians (`atan2(v.y, v.x)`, 0 for a zero or non-finite vector),
/// computed with basic arithmetic and `sqrt` only, so every platform gets the same bits.
/// Accurate to about 1e-6 rad, far finer than the 16-bit angle grid (9.6e-5 rad).
#[must_use]
pub fn heading(v: Vec2) -> f32 {
    use std::f32::consts::{FRAC_PI_2, PI};
    let (x, y) = (v.x, v.y);
    if !x.is_finite() || !y.is_finite() || (x == 0.0 && y == 0.0) {
        return 0.0;
    }
    let (ax, ay) = (x.abs(), y.abs());
    let (num, den) = if ay > ax { (ax, ay) } else { (ay, ax) };
    let mut a = atan_unit(num / den);
    if ay > ax {
        a = FRAC_PI_2 - a;
    }
    if x < 0.0 {
        a = PI - a;
    }
    if y < 0.0 { -a } else { a }
}

/// `atan(z)` for `z` in `0..=1`: two half-angle reductions
/// (`atan z = 2 atan(z / (1 + sqrt(1 + z²)))`) bring `z` under `tan(π/16)`, where five terms
/// of the Taylor series are exact to f32 precision.
fn atan_unit(z: f32) -> f32 {
    let z = z / (1.0 + (1.0 + z * z).sqrt());
    let z = z / (1.0 + (1.0 + z * z).sqrt());
    let t = z * z;
    let series = 1.0 + t * (-1.0 / 3.0 + t * (1.0 / 5.0 + t * (-1.0 / 7.0 + t * (1.0 / 9.0))));
    4.0 * z * series
}

/// `a` on the 16-bit angle grid it is sent on.
#[must_use]
pub fn snap_angle(a: f32) -> f32 {
    quantize::angle_value(quantize::angle(a))
}

/// Advances `state` by one tick of `dt` seconds under `control`.
///
/// The player runs along `control.run` (length at most 1) at [`RUN_SPEED`], or at
/// [`SPRINT_SPEED`] while `sprint` is held with stamina left, which drains
/// [`SPRINT_DRAIN_PER_SEC`]. Stamina comes back at [`STAMINA_REGEN_PER_SEC`] while the sprint
/// key is up; holding it with an empty tank neither sprints nor recovers (let go to breathe).
/// The facing turns to the run direction whenever it is not zero. The circle of
/// [`PLAYER_RADIUS`] stays inside the pitch's lines. Everything ends on its grid.
pub fn step_player(state: &mut PlayerState, control: &SoccerControl, dt: f32) {
    let dt = if dt.is_finite() && dt > 0.0 { dt } else { 0.0 };
    let run = clamp_run(control.run);
    let moving = run.length_squared() > 0.0;
    let mut stamina =
        if state.stamina.is_finite() { state.stamina.clamp(0.0, MAX_STAMINA) } else { 0.0 };
    let sprinting = control.sprint && moving && stamina > 0.0;
    let speed = if sprinting { SPRINT_SPEED } else { RUN_SPEED };
    if sprinting {
        stamina -= SPRINT_DRAIN_PER_SEC * dt;
    } else if !control.sprint {
        stamina += STAMINA_REGEN_PER_SEC * dt;
    }
    state.stamina = ((stamina.clamp(0.0, MAX_STAMINA)) * STAMINA_SCALE).round() / STAMINA_SCALE;

    if moving {
        state.facing = snap_angle(heading(run));
    } else if !state.facing.is_finite() {
        state.facing = 0.0;
    } else {
        state.facing = snap_angle(state.facing);
    }

    let position = if state.position.is_finite() { state.position } else { Vec2::ZERO };
    let inner = PITCH_HALF_EXTENTS - Vec2::splat(PLAYER_RADIUS);
    let position = (position + run * (speed * dt)).clamp(-inner, inner);
    state.position = quantize::position2_value(quantize::position2(position));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::soccer::input::SoccerInput;

    const DT: f32 = 1.0 / 60.0;

    fn control(run: Vec2, sprint: bool) -> SoccerControl {
        SoccerControl { run, kick: 0, sprint }
    }

    fn fresh(position: Vec2) -> PlayerState {
        PlayerState { position, facing: 0.0, stamina: MAX_STAMINA }
    }

    #[test]
    fn heading_matches_atan2_everywhere() {
        let mut worst = 0.0f32;
        for x in -127i32..=127 {
            for y in -127i32..=127 {
                if x == 0 && y == 0 {
                    continue;
                }
                let v = Vec2::new(x as f32, y as f32);
                let d = (heading(v) - v.y.atan2(v.x)).abs();
                worst = worst.max(d.min(std::f32::consts::TAU - d));
            }
        }
        assert!(worst < 2e-6, "{worst}");
        assert_eq!(heading(Vec2::ZERO), 0.0);
        assert_eq!(heading(Vec2::NAN), 0.0);
        assert_eq!(snap_angle(heading(Vec2::NEG_X)), snap_angle(std::f32::consts::PI));
    }

    #[test]
    fn runs_sprints_and_faces_the_run() {
        let mut s = fresh(Vec2::new(-100.0, 50.0));
        step_player(&mut s, &control(Vec2::X, false), DT);
        assert!((s.position.x - (-100.0 + RUN_SPEED * DT)).abs() <= quantize::POSITION_PRECISION);
        assert_eq!(s.position.y, 50.0);
        assert_eq!(s.facing, 0.0);
        assert_eq!(quantize::position2_value(quantize::position2(s.position)), s.position);

        let mut f = fresh(Vec2::new(-100.0, 50.0));
        step_player(&mut f, &control(Vec2::X, true), DT);
        assert!(
            (f.position.x - (-100.0 + SPRINT_SPEED * DT)).abs() <= quantize::POSITION_PRECISION
        );
        assert_eq!(f.stamina, 99.5, "half a unit a tick at 60 Hz");

        // Facing follows the run and stays when the player stops.
        let diag = SoccerControl::from_frame(&SoccerInput::new(Vec2::new(-1.0, 1.0), 0, false));
        step_player(&mut s, &diag, DT);
        assert_eq!(s.facing, snap_angle(3.0 * std::f32::consts::FRAC_PI_4));
        let facing = s.facing;
        step_player(&mut s, &control(Vec2::ZERO, false), DT);
        assert_eq!(s.facing, facing);
    }

    #[test]
    fn stamina_drains_empties_and_comes_back() {
        let mut s = fresh(Vec2::new(-400.0, 0.0));
        let sprint_ticks = (MAX_STAMINA / (SPRINT_DRAIN_PER_SEC * DT)).round() as u32;
        for _ in 0..sprint_ticks {
            step_player(&mut s, &control(Vec2::X, true), DT);
        }
        assert_eq!(s.stamina, 0.0);
        // Empty: holding sprint runs at normal speed and recovers nothing.
        let x = s.position.x;
        step_player(&mut s, &control(Vec2::NEG_X, true), DT);
        assert!((x - s.position.x - RUN_SPEED * DT).abs() <= quantize::POSITION_PRECISION);
        assert_eq!(s.stamina, 0.0);
        // Letting go recovers, to full and no further.
        for _ in 0..60 {
            step_player(&mut s, &control(Vec2::X, false), DT);
        }
        assert_eq!(s.stamina, STAMINA_REGEN_PER_SEC);
        for _ in 0..1_000 {
            step_player(&mut s, &control(Vec2::ZERO, false), DT);
        }
        assert_eq!(s.stamina, MAX_STAMINA);
        // Standing still with sprint held costs nothing.
        step_player(&mut s, &control(Vec2::ZERO, true), DT);
        assert_eq!(s.stamina, MAX_STAMINA);
    }

    #[test]
    fn players_stay_inside_the_lines() {
        let inner = PITCH_HALF_EXTENTS - Vec2::splat(PLAYER_RADIUS);
        let mut s = fresh(Vec2::ZERO);
        for dir in [Vec2::new(1.0, 1.0), Vec2::new(-1.0, 0.2), Vec2::new(0.1, -1.0)] {
            for _ in 0..600 {
                step_player(&mut s, &control(dir, true), DT);
                assert!(s.position.abs().cmple(inner).all(), "{}", s.position);
            }
        }
        assert_eq!(s.position.y, -inner.y);
    }

    #[test]
    fn hostile_state_is_total() {
        let mut s = PlayerState { position: Vec2::NAN, facing: f32::NAN, stamina: f32::NAN };
        step_player(&mut s, &control(Vec2::new(f32::NAN, 1.0), true), f32::NAN);
        assert!(s.position.is_finite() && s.facing.is_finite() && s.stamina.is_finite());
        let mut s = fresh(Vec2::ZERO);
        step_player(&mut s, &control(Vec2::X, false), 1_000.0);
        assert_eq!(s.position.x, PITCH_HALF_EXTENTS.x - PLAYER_RADIUS);
    }
}
