//! The pitch: its size, the goals, the boards' cut corners, and where each team's players line
//! up ([`formation_spot`]). Fixed, so the server and every client know it without replication.

use glam::Vec2;

use super::components::Team;

/// Half the pitch's length (x): the goal lines are at `x = ±500`, so the pitch is 1000 units
/// long, five seconds end to end at running speed: long enough for a run, short enough that a
/// strong kick reaches the goal from the halfway line.
pub const HALF_LENGTH: f32 = 500.0;

/// Half the pitch's width (y): the touchlines are at `y = ±300`, a 5:3 pitch like a real one,
/// which fits a 16:9 screen whole with the goals.
pub const HALF_WIDTH: f32 = 300.0;

/// Half the pitch's size: it spans `-PITCH_HALF_EXTENTS..=PITCH_HALF_EXTENTS`.
pub const PITCH_HALF_EXTENTS: Vec2 = Vec2::new(HALF_LENGTH, HALF_WIDTH);

/// Half the goal mouth: a goal counts when the ball crosses a goal line with `|y| < 90`. 180
/// units is 30% of the goal line, wide enough that a shot from range can beat a defender,
/// narrow enough that the posts matter.
pub const GOAL_HALF_WIDTH: f32 = 90.0;

/// How deep the net behind each goal line is: where the ball rests after a goal (drawn too).
/// A little more than two ball diameters.
pub const GOAL_DEPTH: f32 = 36.0;

/// The boards cut each corner diagonally, this far along both lines from the corner: the ball
/// cannot wedge itself into a corner where no player can get behind it (a player's centre
/// reaches the corner's square, the ball's does not).
pub const CORNER_CUT: f32 = 60.0;

/// Radius of the centre circle (drawn; the kick-off spots of the side not kicking off stay
/// outside it).
pub const CENTRE_CIRCLE_RADIUS: f32 = 80.0;

/// Formation spots in "attack coordinates": `x` towards the goal the team attacks, own half
/// negative, `y` across. Slot 0 is the striker (kicks off), slot 1 the last defender (nearest
/// the own goal: a natural keeper), then pairs of wide players. Eleven spots, a whole team;
/// more players reuse them with an offset ([`formation_spot`]).
const FORMATION: [Vec2; 11] = [
    Vec2::new(-100.0, 0.0),
    Vec2::new(-380.0, 0.0),
    Vec2::new(-220.0, 140.0),
    Vec2::new(-220.0, -140.0),
    Vec2::new(-110.0, 200.0),
    Vec2::new(-110.0, -200.0),
    Vec2::new(-320.0, 170.0),
    Vec2::new(-320.0, -170.0),
    Vec2::new(-180.0, 0.0),
    Vec2::new(-40.0, 120.0),
    Vec2::new(-40.0, -120.0),
];

/// Where the striker of the side kicking off stands: right behind the ball, in reach of it.
const KICKOFF_STRIKER: Vec2 = Vec2::new(-30.0, 0.0);

/// Players beyond the eleventh are put this far across from the spot they share, per round
/// of eleven, so two never stand on one point.
const EXTRA_ROUND_OFFSET: f32 = 24.0;

impl Team {
    /// `+1` for the team attacking towards `+x` (Red), `-1` for the other (Blue).
    #[must_use]
    pub fn attack_sign(self) -> f32 {
        match self {
            Team::Red => 1.0,
            Team::Blue => -1.0,
        }
    }

    /// The other team.
    #[must_use]
    pub fn other(self) -> Team {
        match self {
            Team::Red => Team::Blue,
            Team::Blue => Team::Red,
        }
    }

    /// The centre of the goal this team attacks (Red: `x = +500`).
    #[must_use]
    pub fn target_goal(self) -> Vec2 {
        Vec2::new(self.attack_sign() * HALF_LENGTH, 0.0)
    }

    /// The centre of the goal this team defends (Red: `x = -500`).
    #[must_use]
    pub fn own_goal(self) -> Vec2 {
        -self.target_goal()
    }

    /// The angle a player of this team faces at a kick-off: towards the goal it attacks.
    #[must_use]
    pub fn forward_angle(self) -> f32 {
        match self {
            Team::Red => 0.0,
            Team::Blue => std::f32::consts::PI,
        }
    }
}

/// Where the player in formation `slot` of `team` lines up at a kick-off (whole units, so on
/// the position grid). `kicking_off`: the striker of the side kicking off stands at the ball.
#[must_use]
pub fn formation_spot(team: Team, slot: usize, kicking_off: bool) -> Vec2 {
    let round = (slot / FORMATION.len()) as f32;
    let mut spot = if slot == 0 && kicking_off { KICKOFF_STRIKER } else { FORMATION[slot % 11] };
    if round > 0.0 {
        // Alternate sides, away from the centre line of the pitch.
        let side = if (slot / FORMATION.len()) % 2 == 1 { 1.0 } else { -1.0 };
        spot.y = (spot.y + side * EXTRA_ROUND_OFFSET * round).clamp(-SPOT_MAX_Y, SPOT_MAX_Y);
    }
    Vec2::new(spot.x * team.attack_sign(), spot.y)
}

/// Spots stay this far from a touchline: two player radii, room to run past them.
const SPOT_MAX_Y: f32 = HALF_WIDTH - 28.0;

/// Whether `p` lies on the pitch for a circle of `radius` (inside the lines).
#[must_use]
pub fn on_pitch(p: Vec2, radius: f32) -> bool {
    let inner = PITCH_HALF_EXTENTS - Vec2::splat(radius);
    p.abs().cmple(inner).all()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::soccer::movement::PLAYER_RADIUS;

    #[test]
    fn spots_are_on_the_pitch_in_the_own_half_and_distinct() {
        for team in [Team::Red, Team::Blue] {
            let mut seen = Vec::new();
            for slot in 0..30 {
                let p = formation_spot(team, slot, false);
                assert!(on_pitch(p, PLAYER_RADIUS), "{team:?} {slot}: {p}");
                assert!(p.x * team.attack_sign() < 0.0, "{team:?} {slot} in its own half: {p}");
                assert_eq!(p, p.round(), "whole units");
                assert!(!seen.contains(&p), "{team:?} {slot}: {p} is taken");
                seen.push(p);
            }
            let striker = formation_spot(team, 0, true);
            assert!(striker.length() < 40.0 && striker.x * team.attack_sign() < 0.0);
            assert!(formation_spot(team, 0, false).length() > CENTRE_CIRCLE_RADIUS);
        }
        assert_eq!(formation_spot(Team::Blue, 1, false), -formation_spot(Team::Red, 1, false));
    }

    #[test]
    fn goals_face_each_other() {
        assert_eq!(Team::Red.target_goal(), Vec2::new(500.0, 0.0));
        assert_eq!(Team::Red.own_goal(), Team::Blue.target_goal());
        assert_eq!(Team::Blue.other(), Team::Red);
    }
}
