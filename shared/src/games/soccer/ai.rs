//! How a computer player plays, as a pure function of what it sees ([`plan`]): the server's
//! NPCs ([`super::npc_think`]) and the headless bots ([`super::SoccerBot`]) both call it, the
//! former with the world, the latter with what their client decoded.
//!
//! Per team, the player nearest the ball ([`chasers`]) goes for it: first to a point behind
//! the ball on the line from the goal it attacks (walking around the ball when it is on the
//! wrong side), then through the ball, and it kicks at the goal once the ball is in reach and
//! its facing is on target. The others hold their formation spots, drawn towards the ball
//! ([`holding_spot`]).

use glam::Vec2;

use super::ball::{BALL_RADIUS, can_kick};
use super::components::Team;
use super::movement::PLAYER_RADIUS;
use super::pitch::{GOAL_HALF_WIDTH, HALF_LENGTH, PITCH_HALF_EXTENTS};
use crate::ids::NetId;

/// A chaser shoots when its facing is within this angle (radians, about 20°) of the line from
/// the ball to its aim point: tight enough that most shots are on target.
pub const SHOT_CONE: f32 = 0.35;

/// A chaser farther than this from the ball (units) sprints, if it has stamina to spare.
pub const SPRINT_DISTANCE: f32 = 120.0;

/// A computer player only starts a sprint above this stamina, keeping some for a break-away.
pub const SPRINT_RESERVE: f32 = 25.0;

/// How far a player holding its spot is drawn towards the ball: a third of the way, so the
/// team shifts with play without leaving its shape.
pub const FORMATION_PULL: f32 = 0.33;

/// A formation spot this close to the own goal's centre (units) is a keeper's: the last
/// defender's (120 out) is, the others' (200 and more) are not.
pub const KEEPER_ZONE: f32 = 150.0;

/// How far out from the centre of its goal a keeper stands, on the line to the ball (units):
/// inside the goal area, covering most of the mouth's angles.
pub const KEEPER_DEPTH: f32 = 60.0;

/// A player this close to where it wants to be (units) stands still.
pub const ARRIVED: f32 = 4.0;

/// Within this distance of its target (units), a player slows down proportionally instead of
/// overshooting.
pub const SLOW_RADIUS: f32 = 30.0;

/// How far aim points stay inside the posts (units): `aim_y` is drawn in
/// `±(GOAL_HALF_WIDTH - AIM_MARGIN)`.
pub const AIM_MARGIN: f32 = 25.0;

/// Beyond this distance from the aim point (units) a chaser kicks at [`LONG_POWER`]: a long
/// ball that rolls into the area rather than off the back boards.
pub const LONG_RANGE: f32 = 550.0;

/// Kick power (of 255) of a shot from beyond [`LONG_RANGE`].
pub const LONG_POWER: u8 = 190;

/// A clearance: a player whose own half holds the ball kicks it away when it faces the other
/// half at least this much (the cosine of its facing with the attack direction).
pub const CLEARANCE_COS: f32 = 0.5;

/// Kick power of a clearance or a hurried hit (of 255): hard, but not a shot.
pub const CLEARANCE_POWER: u8 = 220;

/// What a computer player sees.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Situation {
    /// Where it is.
    pub me: Vec2,
    /// Where it faces, radians.
    pub facing: f32,
    /// Its stamina.
    pub stamina: f32,
    /// Its team.
    pub team: Team,
    /// Where the ball is (`None`: not in sight).
    pub ball: Option<Vec2>,
    /// Whether it is its team's chaser.
    pub chaser: bool,
    /// Its formation spot.
    pub spot: Vec2,
    /// Where across the goal mouth it aims (`|aim_y| < GOAL_HALF_WIDTH`).
    pub aim_y: f32,
    /// A random impulse (rare): a chaser at the ball that cannot shoot hits it forwards.
    pub hurry: bool,
}

/// What it does this tick.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Plan {
    /// Run direction, length at most 1.
    pub run: Vec2,
    /// Sprint.
    pub sprint: bool,
    /// Kick power (0: no kick).
    pub kick: u8,
}

/// The chaser of each team: the player nearest the ball, ties to the lower id. `players` are
/// `(id, team, position)`; returns `[red, blue]`.
#[must_use]
pub fn chasers(players: &[(NetId, Team, Vec2)], ball: Vec2) -> [Option<NetId>; 2] {
    let mut best: [Option<(f32, NetId)>; 2] = [None, None];
    for &(id, team, at) in players {
        let d = at.distance_squared(ball);
        let slot = &mut best[team as usize];
        let better = match *slot {
            None => true,
            Some((bd, bid)) => d < bd || (d == bd && id < bid),
        };
        if better {
            *slot = Some((d, id));
        }
    }
    best.map(|b| b.map(|(_, id)| id))
}

/// Where a player of `team` holding `spot` stands with the ball at `ball`: drawn towards it
/// by [`FORMATION_PULL`]; a spot within [`KEEPER_ZONE`] of the own goal is a keeper's, who
/// stands [`KEEPER_DEPTH`] out from the goal on the line to the ball instead.
#[must_use]
pub fn holding_spot(team: Team, spot: Vec2, ball: Option<Vec2>) -> Vec2 {
    let Some(ball) = ball else { return spot };
    let goal = team.own_goal();
    if spot.distance(goal) < KEEPER_ZONE {
        let to_ball = ball - goal;
        let out = to_ball.try_normalize().unwrap_or(Vec2::new(team.attack_sign(), 0.0));
        return goal + out * to_ball.length().min(KEEPER_DEPTH);
    }
    spot + (ball - spot) * FORMATION_PULL
}

/// The point a team aims at: on the goal line it attacks, `aim_y` across.
#[must_use]
pub fn aim_point(team: Team, aim_y: f32) -> Vec2 {
    let max = GOAL_HALF_WIDTH - AIM_MARGIN;
    Vec2::new(team.attack_sign() * HALF_LENGTH, aim_y.clamp(-max, max))
}

/// A run towards `target` from `me`: full speed, slowing within [`SLOW_RADIUS`], still within
/// [`ARRIVED`].
fn run_to(me: Vec2, target: Vec2) -> Vec2 {
    let inner = PITCH_HALF_EXTENTS - Vec2::splat(PLAYER_RADIUS);
    let to = target.clamp(-inner, inner) - me;
    let d = to.length();
    // NaN (a hostile position) stands still too.
    if d.is_nan() || d <= ARRIVED {
        return Vec2::ZERO;
    }
    to / d * (d / SLOW_RADIUS).min(1.0)
}

/// The direction a chaser pushes the ball in: towards `aim`, except where the point behind
/// the ball on that line is beyond the lines (the ball at a touchline or a goal line): then
/// along that line, so the ball is worked along the wall (towards the goal, or the mouth).
fn push_direction(team: Team, ball: Vec2, aim: Vec2, contact: f32) -> Vec2 {
    let mut dir = (aim - ball).try_normalize().unwrap_or(Vec2::new(team.attack_sign(), 0.0));
    let inner = PITCH_HALF_EXTENTS - Vec2::splat(PLAYER_RADIUS);
    let behind = ball - dir * (1.5 * contact);
    if behind.y.abs() > inner.y {
        dir.y = 0.0;
    }
    if behind.x.abs() > inner.x {
        dir.x = 0.0;
    }
    dir.try_normalize().unwrap_or(Vec2::new(team.attack_sign(), 0.0))
}

/// What a computer player in `s` does this tick.
#[must_use]
pub fn plan(s: &Situation) -> Plan {
    let Some(ball) = s.ball else {
        return Plan { run: run_to(s.me, s.spot), ..Plan::default() };
    };
    let mut plan = Plan::default();
    let to_ball = ball - s.me;
    let dist = to_ball.length();
    let aim = aim_point(s.team, s.aim_y);
    let facing = Vec2::from_angle(s.facing);
    let contact = PLAYER_RADIUS + BALL_RADIUS;
    let dir = push_direction(s.team, ball, aim, contact);

    if s.chaser {
        let rel = s.me - ball;
        let along = rel.dot(dir);
        let across = dir.perp().dot(rel);
        let side = if across.abs() > 1.0 {
            across.signum()
        } else if dir.perp().dot(-ball) >= 0.0 {
            // Straight ahead of the ball: go round on the side of the pitch's middle.
            1.0
        } else {
            -1.0
        };
        let lined_up = along <= -0.5 * contact && across.abs() <= 0.5 * contact;
        plan.run = if lined_up {
            // Run through the ball (dribble) towards the aim.
            (ball + dir * contact - s.me).try_normalize().unwrap_or(dir)
        } else if along > -0.5 * contact {
            if across.abs() < 1.4 * contact {
                // On the wrong side, in line: step aside first.
                run_to(s.me, ball + dir.perp() * (side * 1.9 * contact) + dir * along.max(0.0))
            } else {
                // Beside the ball: round to behind it.
                run_to(s.me, ball - dir * (1.5 * contact) + dir.perp() * (side * 1.6 * contact))
            }
        } else {
            // Behind it but off the line: line up.
            run_to(s.me, ball - dir * (1.3 * contact))
        };
        plan.sprint = dist > SPRINT_DISTANCE && s.stamina > SPRINT_RESERVE;
        if can_kick(s.me, s.facing, ball) && facing.dot(dir) >= SHOT_CONE.cos() && along < 0.0 {
            plan.kick = if aim.distance(ball) > LONG_RANGE { LONG_POWER } else { u8::MAX };
        }
        // Stuck at the ball (an opponent in the way, a wall): now and then, just hit it
        // forwards.
        if plan.kick == 0
            && s.hurry
            && can_kick(s.me, s.facing, ball)
            && facing.x * s.team.attack_sign() > 0.0
        {
            plan.kick = CLEARANCE_POWER;
        }
    } else {
        plan.run = run_to(s.me, holding_spot(s.team, s.spot, Some(ball)));
    }

    // Anyone in reach of a ball in its own half clears it when facing upfield.
    let sign = s.team.attack_sign();
    if plan.kick == 0
        && ball.x * sign < 0.0
        && can_kick(s.me, s.facing, ball)
        && facing.x * sign >= CLEARANCE_COS
    {
        plan.kick = CLEARANCE_POWER;
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::soccer::movement::snap_angle;

    fn situation(me: Vec2, facing: f32, ball: Vec2) -> Situation {
        Situation {
            me,
            facing,
            stamina: 100.0,
            team: Team::Red,
            ball: Some(ball),
            chaser: true,
            spot: Vec2::new(-100.0, 0.0),
            aim_y: 0.0,
            hurry: false,
        }
    }

    #[test]
    fn the_nearest_of_each_team_chases() {
        let ball = Vec2::new(10.0, 0.0);
        let players = [
            (NetId(3), Team::Red, Vec2::new(100.0, 0.0)),
            (NetId(4), Team::Blue, Vec2::new(50.0, 0.0)),
            (NetId(5), Team::Red, Vec2::new(-80.0, 0.0)),
            (NetId(2), Team::Red, Vec2::new(-80.0, 0.0)),
        ];
        assert_eq!(chasers(&players, ball), [Some(NetId(2)), Some(NetId(4))]);
        assert_eq!(chasers(&players[1..2], ball), [None, Some(NetId(4))]);
    }

    #[test]
    fn a_chaser_behind_the_ball_runs_through_it_and_shoots_when_on_target() {
        // Red attacks +x: behind the ball is to its left.
        let p = plan(&situation(Vec2::new(-60.0, 0.0), 0.0, Vec2::ZERO));
        assert!(p.run.x > 0.99, "{:?}", p.run);
        assert_eq!(p.kick, 0, "out of reach");
        let p = plan(&situation(Vec2::new(-25.0, 0.0), 0.0, Vec2::ZERO));
        assert_eq!(p.kick, 255, "in reach, on target");
        let p = plan(&situation(Vec2::new(-25.0, 0.0), snap_angle(1.2), Vec2::ZERO));
        assert_eq!(p.kick, 0, "facing away from the goal");
        // Far out, the shot is softer.
        let p = plan(&situation(Vec2::new(-325.0, 0.0), 0.0, Vec2::new(-300.0, 0.0)));
        assert!(p.kick > 0 && p.kick < 255);
    }

    #[test]
    fn a_chaser_on_the_wrong_side_goes_around_the_ball() {
        // Ahead of the ball (between it and the goal it attacks): it steps aside, not through.
        let p = plan(&situation(Vec2::new(40.0, 0.0), std::f32::consts::PI, Vec2::ZERO));
        assert!(p.run.y.abs() > 0.5, "{:?}", p.run);
        assert_eq!(p.kick, 0);
        // Beside it: it heads behind it.
        let p = plan(&situation(Vec2::new(0.0, 60.0), 0.0, Vec2::ZERO));
        assert!(p.run.x < 0.0, "{:?}", p.run);
    }

    #[test]
    fn the_others_hold_their_spot_drawn_to_the_ball() {
        let mut s = situation(Vec2::new(-300.0, 0.0), 0.0, Vec2::new(300.0, 0.0));
        s.chaser = false;
        s.spot = Vec2::new(-300.0, 0.0);
        let p = plan(&s);
        assert!(p.run.x > 0.99 && !p.sprint && p.kick == 0, "{p:?}");
        s.me = holding_spot(s.team, s.spot, s.ball);
        assert_eq!(plan(&s).run, Vec2::ZERO);
        s.ball = None;
        assert!(plan(&s).run.x < 0.0, "back to the spot");
    }

    #[test]
    fn the_last_defender_keeps_goal() {
        let keeper =
            holding_spot(Team::Red, Vec2::new(-380.0, 0.0), Some(Vec2::new(-200.0, 300.0)));
        let expected =
            Vec2::new(-HALF_LENGTH, 0.0) + Vec2::new(1.0, 1.0).normalize() * KEEPER_DEPTH;
        assert!(keeper.distance(expected) < 1e-3, "{keeper}");
        // Blue's keeper guards the right goal; a ball on the line pulls it no further out.
        let keeper = holding_spot(Team::Blue, Vec2::new(380.0, 0.0), Some(Vec2::new(470.0, 0.0)));
        assert_eq!(keeper, Vec2::new(470.0, 0.0));
    }

    #[test]
    fn defenders_clear_their_half() {
        let mut s = situation(Vec2::new(-325.0, 100.0), 0.0, Vec2::new(-300.0, 100.0));
        s.chaser = false;
        assert_eq!(plan(&s).kick, CLEARANCE_POWER);
        s.facing = std::f32::consts::PI;
        assert_eq!(plan(&s).kick, 0);
    }

    #[test]
    fn aim_points_stay_inside_the_posts() {
        assert_eq!(aim_point(Team::Blue, 0.0), Vec2::new(-HALF_LENGTH, 0.0));
        assert!(aim_point(Team::Red, 500.0).y < GOAL_HALF_WIDTH);
    }
}
