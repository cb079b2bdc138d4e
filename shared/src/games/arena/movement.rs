//! Pure, deterministic movement shared by the server's movement system and the client's
//! prediction: [`step_mover`] advances one [`MoverState`] by one tick of [`PlayerInput`].
//!
//! It uses only `+ - * /` and `sqrt` on `f32` (all correctly rounded by IEEE 754), never
//! trigonometry, so the native server and the wasm client compute bit-identical results. It
//! ends every step by snapping the position to the quantization grid, so the server's
//! authoritative position is exactly the value it replicates, and a client replaying its
//! inputs from a received position follows the server's path exactly.

use glam::Vec2;

use super::input::{Buttons, PlayerInput, clamp_movement};
use super::layout::Arena;
use crate::quantize;

/// Walking speed in units per second: crossing the 1200-unit arena takes about 5.5 s, slow
/// enough to aim at a moving target, fast enough to dodge a projectile seen coming.
pub const PLAYER_SPEED: f32 = 220.0;

/// Radius of a player's or NPC's collision circle, in units: about 1/50 of the arena's
/// height, big enough to hit with some aim at 600 units/s projectiles.
pub const PLAYER_RADIUS: f32 = 16.0;

/// Speed while dashing, in units per second: three times walking, so a dash covers about
/// 100 units, a reliable dodge of one projectile.
pub const DASH_SPEED: f32 = 660.0;

/// How long a dash lasts, in seconds (9 ticks at 60 Hz).
pub const DASH_DURATION_SECS: f32 = 0.15;

/// Time from the start of a dash until the next may start, in seconds: long enough that
/// dashing is a decision, not a way of moving.
pub const DASH_COOLDOWN_SECS: f32 = 1.5;

/// Longest distance a mover travels in one collision substep, in units: half the radius, so
/// it cannot pass through an obstacle (all are at least 40 units thick) or a corner.
const MAX_SUBSTEP: f32 = PLAYER_RADIUS * 0.5;

/// At most this many collision substeps per tick: bounds the work of a huge `dt` (a client
/// catching up). 16 × 8 = 128 units covers ten dash ticks; beyond that substeps grow longer.
const MAX_SUBSTEPS: u32 = 16;

/// Push-out passes against the obstacles per substep: two resolve a mover wedged in a corner
/// between two boxes.
const RESOLVE_PASSES: usize = 2;

/// Whole ticks in `secs` at step length `dt` (at least one). Both sides compute it from the
/// same `dt`, so it agrees everywhere.
#[must_use]
pub fn ticks_for(secs: f32, dt: f32) -> u16 {
    if dt.is_nan() || dt <= 0.0 {
        return 1;
    }
    (secs / dt).round().clamp(1.0, f32::from(u16::MAX)) as u16
}

/// What [`step_mover`] advances: the part of a combatant that the client predicts.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct MoverState {
    /// Position, on the quantization grid after every step.
    pub position: Vec2,
    /// Ticks until the next dash may start.
    pub dash_cooldown: u16,
    /// Ticks of the current dash still to run.
    pub dash_ticks_left: u16,
}

/// Advances `state` by one tick of `dt` seconds under `input`.
///
/// Velocity is `movement * PLAYER_SPEED`. Pressing DASH with a non-zero movement while the
/// cooldown is zero starts a dash: for [`DASH_DURATION_SECS`] the mover goes at [`DASH_SPEED`]
/// along its current movement direction (standing still pauses it), and the next dash waits
/// [`DASH_COOLDOWN_SECS`] from the start of this one. The circle of [`PLAYER_RADIUS`] slides
/// along obstacles and the arena's bounds. The position ends on the quantization grid.
pub fn step_mover(state: &mut MoverState, input: &PlayerInput, arena: &Arena, dt: f32) {
    let dt = if dt.is_finite() && dt > 0.0 { dt } else { 0.0 };
    let movement = clamp_movement(input.movement);
    let moving = movement.length_squared() > 0.0;

    if input.buttons.contains(Buttons::DASH)
        && moving
        && state.dash_cooldown == 0
        && state.dash_ticks_left == 0
    {
        state.dash_ticks_left = ticks_for(DASH_DURATION_SECS, dt);
        state.dash_cooldown = ticks_for(DASH_COOLDOWN_SECS, dt);
    }

    let velocity = if state.dash_ticks_left > 0 {
        movement.normalize_or_zero() * DASH_SPEED
    } else {
        movement * PLAYER_SPEED
    };
    let mut position = if state.position.is_finite() { state.position } else { Vec2::ZERO };
    let delta = velocity * dt;
    let distance = delta.length();
    if distance > 0.0 {
        let substeps = ((distance / MAX_SUBSTEP).ceil() as u32).clamp(1, MAX_SUBSTEPS);
        let step = delta / substeps as f32;
        for _ in 0..substeps {
            position = resolve(position + step, arena);
        }
    } else {
        position = resolve(position, arena);
    }

    state.position = quantize::position2_value(quantize::position2(position));
    state.dash_ticks_left = state.dash_ticks_left.saturating_sub(1);
    state.dash_cooldown = state.dash_cooldown.saturating_sub(1);
}

/// Pushes a circle at `p` out of every obstacle, then inside the bounds.
fn resolve(mut p: Vec2, arena: &Arena) -> Vec2 {
    for _ in 0..RESOLVE_PASSES {
        for o in &arena.obstacles {
            let closest = o.closest_point(p);
            let away = p - closest;
            let d2 = away.length_squared();
            if d2 >= PLAYER_RADIUS * PLAYER_RADIUS {
                continue;
            }
            if d2 > 0.0 {
                // Outside the box but too close: move out along the normal (this is the
                // slide: the tangential part of the motion is kept).
                let d = d2.sqrt();
                p += away * ((PLAYER_RADIUS - d) / d);
            } else {
                // The centre is inside the box: leave by the nearest face.
                let rel = p - o.center;
                let pen = o.half_extents - rel.abs();
                if pen.x < pen.y {
                    let s = if rel.x < 0.0 { -1.0 } else { 1.0 };
                    p.x = o.center.x + s * (o.half_extents.x + PLAYER_RADIUS);
                } else {
                    let s = if rel.y < 0.0 { -1.0 } else { 1.0 };
                    p.y = o.center.y + s * (o.half_extents.y + PLAYER_RADIUS);
                }
            }
        }
    }
    let inner = (arena.half_extents - Vec2::splat(PLAYER_RADIUS)).max(Vec2::ZERO);
    p.clamp(-inner, inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::arena::input::ArenaInput;

    const DT: f32 = 1.0 / 60.0;

    fn input(movement: Vec2, buttons: Buttons) -> PlayerInput {
        PlayerInput { movement, aim: 0.0, buttons }
    }

    #[test]
    fn moves_at_player_speed() {
        let arena = Arena::standard();
        let mut s = MoverState { position: Vec2::new(-160.0, 100.0), ..MoverState::default() };
        step_mover(&mut s, &input(Vec2::X, Buttons::default()), &arena, DT);
        let expected = -160.0 + PLAYER_SPEED * DT;
        assert!((s.position.x - expected).abs() <= quantize::POSITION_PRECISION);
        assert_eq!(s.position.y, 100.0);
        // On the grid.
        assert_eq!(quantize::position2_value(quantize::position2(s.position)), s.position);

        let mut d = MoverState { position: Vec2::new(-160.0, 100.0), ..MoverState::default() };
        step_mover(&mut d, &input(Vec2::new(-1.0, -1.0), Buttons::default()), &arena, DT);
        let moved = (d.position - Vec2::new(-160.0, 100.0)).length();
        assert!((moved - PLAYER_SPEED * DT).abs() < 0.02, "diagonal is clamped: {moved}");
    }

    #[test]
    fn stops_at_arena_bounds() {
        let arena = Arena::standard();
        let mut s = MoverState { position: Vec2::new(200.0, 250.0), ..MoverState::default() };
        for _ in 0..600 {
            step_mover(&mut s, &input(Vec2::new(0.0, 1.0), Buttons::default()), &arena, DT);
        }
        assert_eq!(s.position.y, arena.half_extents.y - PLAYER_RADIUS);
        assert_eq!(s.position.x, 200.0);
        for _ in 0..600 {
            step_mover(&mut s, &input(Vec2::new(1.0, 1.0), Buttons::default()), &arena, DT);
        }
        assert_eq!(s.position, arena.half_extents - Vec2::splat(PLAYER_RADIUS));
    }

    #[test]
    fn never_enters_an_obstacle_and_slides() {
        let arena = Arena::standard();
        // Walk straight at the central block (half 60) from the left, slightly off-centre.
        let mut s = MoverState { position: Vec2::new(-200.0, 10.0), ..MoverState::default() };
        for _ in 0..300 {
            step_mover(&mut s, &input(Vec2::X, Buttons::default()), &arena, DT);
            for o in &arena.obstacles {
                assert!(
                    !o.overlaps_circle(s.position, PLAYER_RADIUS - 0.05),
                    "inside {o:?} at {}",
                    s.position
                );
            }
        }
        assert!((s.position.x - (-60.0 - PLAYER_RADIUS)).abs() < 0.05, "{}", s.position);
        // Pushing diagonally into the block slides along its face.
        let before = s.position;
        for _ in 0..15 {
            step_mover(&mut s, &input(Vec2::new(1.0, 1.0), Buttons::default()), &arena, DT);
        }
        assert!(s.position.y > before.y + 30.0, "slid from {before} to {}", s.position);
        assert!((s.position.x - before.x).abs() < 0.05);
        // Dashing into it does not tunnel either.
        let mut s = MoverState { position: Vec2::new(-100.0, 0.0), ..MoverState::default() };
        for _ in 0..20 {
            step_mover(&mut s, &input(Vec2::X, Buttons::DASH), &arena, DT);
            assert!(s.position.x <= -60.0 - PLAYER_RADIUS + 0.05, "{}", s.position);
        }
    }

    #[test]
    fn dash_goes_farther_then_cools_down() {
        let arena = Arena::standard();
        let start = Vec2::new(-160.0, 100.0);
        let dash_ticks = ticks_for(DASH_DURATION_SECS, DT);
        let cooldown = ticks_for(DASH_COOLDOWN_SECS, DT);
        assert_eq!(dash_ticks, 9);
        assert_eq!(cooldown, 90);

        let mut walk = MoverState { position: start, ..MoverState::default() };
        let mut dash = MoverState { position: start, ..MoverState::default() };
        for i in 0..dash_ticks {
            step_mover(&mut walk, &input(Vec2::X, Buttons::default()), &arena, DT);
            let buttons = if i == 0 { Buttons::DASH } else { Buttons::default() };
            step_mover(&mut dash, &input(Vec2::X, buttons), &arena, DT);
        }
        let walked = walk.position.x - start.x;
        let dashed = dash.position.x - start.x;
        assert!((dashed - DASH_SPEED * DASH_DURATION_SECS).abs() < 0.1, "{dashed}");
        assert!(dashed > 2.5 * walked, "{dashed} vs {walked}");
        assert_eq!(dash.dash_ticks_left, 0);
        assert_eq!(dash.dash_cooldown, cooldown - dash_ticks);

        // Holding DASH during the cooldown walks at normal speed.
        let x = dash.position.x;
        step_mover(&mut dash, &input(Vec2::X, Buttons::DASH), &arena, DT);
        assert!((dash.position.x - x - PLAYER_SPEED * DT).abs() < 0.02);
        assert_eq!(dash.dash_ticks_left, 0);
        // After the cooldown it dashes again.
        for _ in 0..cooldown {
            step_mover(&mut dash, &input(Vec2::ZERO, Buttons::default()), &arena, DT);
        }
        assert_eq!(dash.dash_cooldown, 0);
        step_mover(&mut dash, &input(Vec2::NEG_X, Buttons::DASH), &arena, DT);
        assert_eq!(dash.dash_ticks_left, dash_ticks - 1);
    }

    #[test]
    fn from_frame_clamps_and_dequantizes() {
        let frame = ArenaInput { movement: [127, 127], aim: 16_384, buttons: Buttons::FIRE };
        let i = PlayerInput::from_frame(&frame);
        assert!((i.movement.length() - 1.0).abs() < 1e-6);
        assert!((i.aim - std::f32::consts::FRAC_PI_2).abs() < 1e-6);
        assert_eq!(i.buttons, Buttons::FIRE);
        let i = PlayerInput::from_frame(&ArenaInput { movement: [-128, 0], ..frame });
        assert_eq!(i.movement, Vec2::new(-1.0, 0.0));
    }

    #[test]
    fn hostile_state_is_total() {
        let arena = Arena::standard();
        let mut s = MoverState { position: Vec2::NAN, ..MoverState::default() };
        step_mover(&mut s, &input(Vec2::new(f32::NAN, 1.0), Buttons::DASH), &arena, f32::NAN);
        assert!(s.position.is_finite());
        let mut s = MoverState { position: Vec2::new(-200.0, 100.0), ..MoverState::default() };
        step_mover(&mut s, &input(Vec2::X, Buttons::default()), &arena, 1000.0);
        assert!(arena.is_free(s.position, PLAYER_RADIUS - 0.05));
    }
}
