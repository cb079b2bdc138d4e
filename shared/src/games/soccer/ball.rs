//! The ball's physics as pure functions (server only: clients interpolate the ball): rolling
//! friction, the walls (touchlines, goal lines beside the mouths, the cut corners, the nets),
//! players pushing it (dribbling) and kicks.
//!
//! [`step_ball`] moves it in substeps no longer than half its radius, so a hard kick cannot
//! pass through a player or a post in one tick, at any tick rate.

use glam::Vec2;

use super::components::Team;
use super::movement::PLAYER_RADIUS;
use super::pitch::{CORNER_CUT, GOAL_DEPTH, GOAL_HALF_WIDTH, HALF_LENGTH, HALF_WIDTH};
use crate::ids::NetId;

/// Radius of the ball, in units: a bit over half a player's, easy to see, small enough that
/// it takes aim to hit the 180-unit goal mouth from range.
pub const BALL_RADIUS: f32 = 8.0;

/// Fraction of its speed a rolling ball keeps after one second: a full-power kick (760 u/s)
/// rolls about 720 units, a tap (260 u/s) about 250, a pass to a team-mate. Applied per tick
/// as `FRICTION^dt`, so it decays alike at every tick rate.
pub const BALL_FRICTION_PER_SEC: f32 = 0.35;

/// Below this speed (units per second) the ball stops dead instead of creeping forever.
pub const BALL_STOP_SPEED: f32 = 4.0;

/// The ball never goes faster than this (units per second): a kick plus a run-up cannot
/// launch it beyond what the substeps handle well.
pub const MAX_BALL_SPEED: f32 = 900.0;

/// Fraction of its speed (across the wall) the ball keeps when it bounces off a wall: lively
/// boards, but a ball does not ping-pong forever.
pub const WALL_RESTITUTION: f32 = 0.7;

/// How bouncy a player is for the ball: a runner at 200 u/s sends a resting ball ahead at
/// 240, it slows, the runner catches it again: dribbling.
pub const PLAYER_RESTITUTION: f32 = 0.2;

/// How far from a player's centre its kicks reach the ball's centre: touching (22) plus 12
/// units of leeway, so a dribbled ball can be kicked without standing on it.
pub const KICK_REACH: f32 = PLAYER_RADIUS + BALL_RADIUS + 12.0;

/// A kick misses a ball that is behind the kicker: the ball must be within about 107° of the
/// facing (the cosine of the angle between facing and ball must be at least this).
pub const KICK_BEHIND_COS: f32 = -0.3;

/// Ball speed of the softest kick (power 1), units per second: a short pass.
pub const MIN_KICK_SPEED: f32 = 260.0;

/// Ball speed of a full-power kick (255), units per second: a shot from the halfway line
/// reaches the goal.
pub const MAX_KICK_SPEED: f32 = 760.0;

/// Longest distance the ball moves in one substep: half its radius.
const MAX_SUBSTEP: f32 = BALL_RADIUS * 0.5;

/// At most this many substeps per tick: 32 × 4 units covers the top speed at 7 Hz.
const MAX_SUBSTEPS: u32 = 32;

/// The ball's moving state.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BallBody {
    /// Where it is.
    pub position: Vec2,
    /// How fast it goes, in units per second.
    pub velocity: Vec2,
}

/// A player as the ball sees it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Body {
    /// Its id (players are handled in id order).
    pub id: NetId,
    /// Its team.
    pub team: Team,
    /// Where it is (after this tick's movement).
    pub position: Vec2,
    /// How fast it moved this tick, in units per second.
    pub velocity: Vec2,
}

/// What happened to the ball in a tick.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct BallStep {
    /// The last player it touched (an index into the players given).
    pub touched: Option<usize>,
    /// The team whose goal it went into the goal of: `Red` when it crossed `x = +500`.
    pub goal: Option<Team>,
}

/// The speed of a kick of `power` (1..=255; 0 reads as 1), units per second.
#[must_use]
pub fn kick_speed(power: u8) -> f32 {
    let t = f32::from(power.max(1) - 1) / 254.0;
    MIN_KICK_SPEED + (MAX_KICK_SPEED - MIN_KICK_SPEED) * t
}

/// Whether a player at `player` facing `facing` (radians) can kick a ball at `ball`: within
/// [`KICK_REACH`] and not behind it ([`KICK_BEHIND_COS`]).
#[must_use]
pub fn can_kick(player: Vec2, facing: f32, ball: Vec2) -> bool {
    let to = ball - player;
    let d2 = to.length_squared();
    if d2.is_nan() || d2 > KICK_REACH * KICK_REACH {
        return false;
    }
    d2 == 0.0 || Vec2::from_angle(facing).dot(to) >= KICK_BEHIND_COS * d2.sqrt()
}

/// Which team a ball at `p` has scored for, if it is over a goal line inside a mouth.
#[must_use]
pub fn goal_at(p: Vec2) -> Option<Team> {
    if p.y.abs() >= GOAL_HALF_WIDTH || p.x.abs() < HALF_LENGTH + BALL_RADIUS {
        return None;
    }
    Some(if p.x > 0.0 { Team::Red } else { Team::Blue })
}

/// Advances the ball by `dt` seconds: friction, then motion in substeps, each pushed by the
/// players it touches (in the order given: by id) and kept inside the walls. Stops at the
/// first substep that puts it over a goal line in a mouth.
pub fn step_ball(ball: &mut BallBody, players: &[Body], dt: f32) -> BallStep {
    let dt = if dt.is_finite() && dt > 0.0 { dt } else { 0.0 };
    let mut out = BallStep::default();
    if !ball.position.is_finite() {
        ball.position = Vec2::ZERO;
    }
    if !ball.velocity.is_finite() {
        ball.velocity = Vec2::ZERO;
    }
    ball.velocity *= BALL_FRICTION_PER_SEC.powf(dt);
    ball.velocity = ball.velocity.clamp_length_max(MAX_BALL_SPEED);
    if ball.velocity.length_squared() < BALL_STOP_SPEED * BALL_STOP_SPEED {
        ball.velocity = Vec2::ZERO;
    }
    let distance = ball.velocity.length() * dt;
    let substeps = ((distance / MAX_SUBSTEP).ceil() as u32).clamp(1, MAX_SUBSTEPS);
    let sub_dt = dt / substeps as f32;
    for _ in 0..substeps {
        ball.position += ball.velocity * sub_dt;
        for (i, p) in players.iter().enumerate() {
            if push(ball, p) {
                out.touched = Some(i);
            }
        }
        confine(ball);
        if let Some(team) = goal_at(ball.position) {
            out.goal = Some(team);
            return out;
        }
    }
    out
}

/// Pushes the ball out of a player it overlaps and bounces it off the player's motion;
/// whether they touched.
fn push(ball: &mut BallBody, p: &Body) -> bool {
    let contact = PLAYER_RADIUS + BALL_RADIUS;
    let d = ball.position - p.position;
    let d2 = d.length_squared();
    if d2 >= contact * contact {
        return false;
    }
    let normal = if d2 > 1e-6 {
        d / d2.sqrt()
    } else {
        // Dead centre: out ahead of the player's run (or towards +x when it stands).
        p.velocity.try_normalize().unwrap_or(Vec2::X)
    };
    ball.position = p.position + normal * contact;
    let closing = (ball.velocity - p.velocity).dot(normal);
    if closing < 0.0 {
        ball.velocity -= normal * ((1.0 + PLAYER_RESTITUTION) * closing);
    }
    true
}

/// Keeps the ball inside the walls: the touchlines, the goal lines beside the mouths, the cut
/// corners, and the sides and back of the nets; it bounces off each with
/// [`WALL_RESTITUTION`].
pub fn confine(ball: &mut BallBody) {
    let r = BALL_RADIUS;
    let (p, v) = (&mut ball.position, &mut ball.velocity);
    let max_y = HALF_WIDTH - r;
    if p.y.abs() > max_y {
        let s = p.y.signum();
        p.y = s * max_y;
        if v.y * s > 0.0 {
            v.y = -v.y * WALL_RESTITUTION;
        }
    }
    let line = HALF_LENGTH - r;
    if p.x.abs() > line {
        let s = p.x.signum();
        if p.y.abs() >= GOAL_HALF_WIDTH {
            // The goal line beside the mouth.
            p.x = s * line;
            if v.x * s > 0.0 {
                v.x = -v.x * WALL_RESTITUTION;
            }
        } else if p.x.abs() > HALF_LENGTH {
            // Inside the goal: the side netting and the back of the net.
            let side = GOAL_HALF_WIDTH - r;
            if p.y.abs() > side {
                let sy = p.y.signum();
                p.y = sy * side;
                if v.y * sy > 0.0 {
                    v.y = -v.y * WALL_RESTITUTION;
                }
            }
            let back = HALF_LENGTH + GOAL_DEPTH - r;
            if p.x.abs() > back {
                p.x = s * back;
                if v.x * s > 0.0 {
                    v.x = -v.x * WALL_RESTITUTION;
                }
            }
        }
    }
    // The cut corners: the ball's centre stays on the pitch side of the diagonal boards.
    let limit = HALF_LENGTH + HALF_WIDTH - CORNER_CUT - r * std::f32::consts::SQRT_2;
    let excess = p.x.abs() + p.y.abs() - limit;
    if excess > 0.0 && p.x.abs() <= HALF_LENGTH {
        let n = Vec2::new(p.x.signum(), p.y.signum()) * std::f32::consts::FRAC_1_SQRT_2;
        *p -= n * (excess * std::f32::consts::FRAC_1_SQRT_2);
        let vn = v.dot(n);
        if vn > 0.0 {
            *v -= n * ((1.0 + WALL_RESTITUTION) * vn);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DT: f32 = 1.0 / 60.0;

    fn rolling(position: Vec2, velocity: Vec2) -> BallBody {
        BallBody { position, velocity }
    }

    fn player(id: u32, position: Vec2, velocity: Vec2) -> Body {
        Body { id: NetId(id), team: Team::Red, position, velocity }
    }

    #[test]
    fn friction_slows_alike_at_every_tick_rate() {
        let mut rolled = Vec::new();
        for rate in [30.0f32, 60.0, 120.0] {
            let mut b = rolling(Vec2::new(-300.0, 0.0), Vec2::new(400.0, 0.0));
            for _ in 0..(rate as u32) {
                step_ball(&mut b, &[], 1.0 / rate);
            }
            assert!((b.velocity.x - 400.0 * BALL_FRICTION_PER_SEC).abs() < 1.0, "{rate}");
            rolled.push(b.position.x);
        }
        assert!((rolled[0] - rolled[2]).abs() < 12.0, "{rolled:?}");
        // It comes to rest.
        let mut b = rolling(Vec2::ZERO, Vec2::new(0.0, 100.0));
        for _ in 0..600 {
            step_ball(&mut b, &[], DT);
        }
        assert_eq!(b.velocity, Vec2::ZERO);
    }

    #[test]
    fn walls_bounce_and_goals_count_only_in_the_mouth() {
        // Into the touchline.
        let mut b = rolling(Vec2::new(0.0, 280.0), Vec2::new(0.0, 300.0));
        for _ in 0..10 {
            step_ball(&mut b, &[], DT);
        }
        assert!(b.velocity.y < 0.0 && b.position.y <= HALF_WIDTH - BALL_RADIUS);
        // Into the goal line beside the mouth.
        let mut b = rolling(Vec2::new(470.0, 150.0), Vec2::new(500.0, 0.0));
        for _ in 0..10 {
            assert_eq!(step_ball(&mut b, &[], DT).goal, None);
        }
        assert!(b.velocity.x < 0.0);
        // Into the mouth: a goal for Red on the right, for Blue on the left.
        let mut b = rolling(Vec2::new(470.0, 40.0), Vec2::new(500.0, 0.0));
        let goal = (0..10).find_map(|_| step_ball(&mut b, &[], DT).goal);
        assert_eq!(goal, Some(Team::Red));
        assert!(b.position.x >= HALF_LENGTH + BALL_RADIUS);
        let mut b = rolling(Vec2::new(-470.0, -80.0), Vec2::new(-500.0, 0.0));
        let goal = (0..10).find_map(|_| step_ball(&mut b, &[], DT).goal);
        assert_eq!(goal, Some(Team::Blue));
    }

    #[test]
    fn corners_send_the_ball_back_out() {
        let mut b = rolling(Vec2::new(400.0, 200.0), Vec2::new(600.0, 600.0));
        for _ in 0..60 {
            step_ball(&mut b, &[], DT);
            let limit = HALF_LENGTH + HALF_WIDTH - CORNER_CUT - BALL_RADIUS * 1.414;
            assert!(b.position.x.abs() + b.position.y.abs() <= limit + 0.01, "{}", b.position);
        }
        assert!(b.velocity.x <= 0.0 && b.velocity.y <= 0.0, "{}", b.velocity);
    }

    #[test]
    fn a_runner_dribbles_and_a_standing_player_blocks() {
        // A runner at 200 u/s pushes a resting ball ahead of it.
        let mut b = rolling(Vec2::new(20.0, 0.0), Vec2::ZERO);
        let runner = player(1, Vec2::new(0.0, 0.0), Vec2::new(200.0, 0.0));
        let step = step_ball(&mut b, &[runner], DT);
        assert_eq!(step.touched, Some(0));
        assert!(b.velocity.x > 200.0, "{}", b.velocity);
        assert!(b.position.x >= PLAYER_RADIUS + BALL_RADIUS);
        // A ball rolling into a player bounces off it.
        let mut b = rolling(Vec2::new(-40.0, 0.0), Vec2::new(300.0, 0.0));
        let wall = player(2, Vec2::ZERO, Vec2::ZERO);
        for _ in 0..10 {
            step_ball(&mut b, &[wall], DT);
        }
        assert!(b.velocity.x < 0.0 && b.position.x <= -(PLAYER_RADIUS + BALL_RADIUS) + 0.01);
    }

    #[test]
    fn kicks_need_reach_and_the_ball_in_front() {
        assert!(can_kick(Vec2::ZERO, 0.0, Vec2::new(30.0, 0.0)));
        assert!(can_kick(Vec2::ZERO, 0.0, Vec2::new(0.0, 25.0)), "beside");
        assert!(!can_kick(Vec2::ZERO, 0.0, Vec2::new(-25.0, 0.0)), "behind");
        assert!(!can_kick(Vec2::ZERO, 0.0, Vec2::new(KICK_REACH + 1.0, 0.0)), "too far");
        assert!(!can_kick(Vec2::ZERO, 0.0, Vec2::NAN));
        assert_eq!(kick_speed(1), MIN_KICK_SPEED);
        assert_eq!(kick_speed(0), MIN_KICK_SPEED);
        assert_eq!(kick_speed(255), MAX_KICK_SPEED);
        assert!(kick_speed(128) > kick_speed(64));
    }

    #[test]
    fn hostile_state_is_total() {
        let mut b = rolling(Vec2::NAN, Vec2::new(f32::INFINITY, 0.0));
        step_ball(&mut b, &[], f32::NAN);
        assert!(b.position.is_finite() && b.velocity.is_finite());
        let mut b = rolling(Vec2::ZERO, Vec2::new(1e9, 3e8));
        step_ball(&mut b, &[], 10.0);
        assert!(b.position.x.abs() <= HALF_LENGTH + GOAL_DEPTH && b.position.y.abs() < HALF_WIDTH);
    }
}
