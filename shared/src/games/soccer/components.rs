//! Soccer's ECS components: the replicated ones (each derives [`Replicate`], which says how its
//! fields are quantized) and the server-only ones that drive the rules.
//!
//! For every replicated component `quantize(dequantize(q)) == q` holds for every value the
//! simulation can produce; the players' ones are kept on their grids by
//! [`super::step_player`], so the server simulates exactly what it sends.

use bevy_ecs::prelude::*;
use glam::Vec2;
use serde::{Deserialize, Serialize};

use crate::ids::NetId;
use crate::registry::Replicate;

/// Where an entity is, in world units (origin at the centre spot, +x towards Blue's goal, +y
/// up). Registered as the game's position: interest and interpolation use it.
#[derive(Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Position(#[quantize(position)] pub Vec2);

/// What an entity is, so a client knows how to draw it. Sent as the variant's index; an
/// unknown value reads as [`Role::Player`].
#[derive(
    Component,
    Replicate,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
)]
#[replicate(field = "role")]
pub enum Role {
    /// A human player.
    #[default]
    Player,
    /// A player driven by the server's AI.
    Npc,
    /// The ball.
    Ball,
}

impl Role {
    /// Whether this is a player (human or NPC), not the ball.
    #[must_use]
    pub fn is_player(self) -> bool {
        matches!(self, Role::Player | Role::Npc)
    }
}

/// A player's side. Red defends the left goal (`x = -500`) and attacks right; Blue the
/// opposite. Sent as the variant's index; an unknown value reads as [`Team::Red`].
#[derive(
    Component,
    Replicate,
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
)]
#[replicate(field = "team")]
pub enum Team {
    /// Attacks towards `+x`.
    #[default]
    Red,
    /// Attacks towards `-x`.
    Blue,
}

impl Team {
    /// The team's name as shown to people.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Team::Red => "Red",
            Team::Blue => "Blue",
        }
    }
}

/// The direction a player faces, in radians (0 is +x, counter-clockwise): its last non-zero
/// run direction, and where its kicks go. Kept on the 16-bit angle grid.
#[derive(Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Facing(#[quantize(angle)] pub f32);

/// A player's breath for sprinting, `0..=`[`super::MAX_STAMINA`]. Sent on a 1/64 grid (the
/// drain and regeneration of one tick are multiples of 1/64 at the usual tick rates, and a
/// power-of-two scale round-trips exactly).
#[derive(Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stamina(#[quantize(scale = 64)] pub f32);

/// Goals a player scored (own goals are credited to nobody).
#[derive(
    Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize,
)]
pub struct Goals(pub u16);

/// The match's score, on an entity of its own with no [`Position`], so that every client
/// receives it whatever its area of interest.
#[derive(
    Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize,
)]
pub struct MatchScore {
    /// Goals for Red.
    pub red: u16,
    /// Goals for Blue.
    pub blue: u16,
}

impl MatchScore {
    /// Goals of `team`.
    #[must_use]
    pub fn of(&self, team: Team) -> u16 {
        match team {
            Team::Red => self.red,
            Team::Blue => self.blue,
        }
    }

    /// One more goal for `team`.
    pub fn add(&mut self, team: Team) {
        match team {
            Team::Red => self.red = self.red.saturating_add(1),
            Team::Blue => self.blue = self.blue.saturating_add(1),
        }
    }
}

/// How fast an entity moves, in units per second (server only): the ball's velocity, or how
/// far a player went in the last tick (for dribbling).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Velocity(pub Vec2);

/// A player's kicking state (server only).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KickState {
    /// Ticks until it may kick again.
    pub cooldown: u16,
    /// The power of a kick asked for while the ball was out of reach (0: none).
    pub pending_power: u8,
    /// Ticks the pending kick keeps waiting for the ball.
    pub pending_ticks: u16,
}

/// Which spot of its team's formation a player lines up on at a kick-off (server only).
#[derive(
    Component, Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize,
)]
pub struct FormationSlot(pub u16);

/// Who touched the ball last: credited with a goal when it is their team's (server only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Toucher {
    /// The player.
    pub id: NetId,
    /// Its team at the time.
    pub team: Team,
}

/// Marks the ball (server only), with its last toucher.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ball {
    /// The last player to touch it since the kick-off.
    pub last_touch: Option<Toucher>,
}

/// Marks the entity that holds [`MatchScore`] (server only).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchEntity;

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<C: Replicate>(samples: &[&[i32]]) {
        let checked = crate::registry::check_round_trips::<C>(samples);
        assert_eq!(checked, Ok(()), "{} round trip", C::NAME);
    }

    #[test]
    fn replicated_components_round_trip() {
        round_trip::<Position>(&[&[0, 0], &[32_000, -19_200], &[-31_104, 18_304], &[1, -1]]);
        round_trip::<Role>(&[&[0], &[1], &[2]]);
        round_trip::<Team>(&[&[0], &[1]]);
        round_trip::<Goals>(&[&[0], &[7], &[65_535]]);
        round_trip::<MatchScore>(&[&[0, 0], &[3, 9], &[65_535, 1]]);
        // Every stamina value on the 1/64 grid between empty and full.
        for q in 0..=6_400 {
            round_trip::<Stamina>(&[&[q]]);
        }
        let mut out = [0i32];
        for q in 0..=65_535 {
            Facing::dequantize(&[q]).quantize(&mut out);
            assert_eq!(out[0], q);
        }
    }

    #[test]
    fn the_wire_layout_is_what_the_view_expects() {
        use crate::registry::FieldKind::{Angle, Int};
        let names = |fields: &[crate::registry::FieldSpec]| {
            fields.iter().map(|f| (f.name, f.kind)).collect::<Vec<_>>()
        };
        assert_eq!(names(Position::FIELDS), [("x", Int), ("y", Int)]);
        assert_eq!(names(Role::FIELDS), [("role", Int)]);
        assert_eq!(names(Team::FIELDS), [("team", Int)]);
        assert_eq!(names(Facing::FIELDS), [("facing", Angle)]);
        assert_eq!(names(Stamina::FIELDS), [("stamina", Int)]);
        assert_eq!(names(Goals::FIELDS), [("goals", Int)]);
        assert_eq!(names(MatchScore::FIELDS), [("red", Int), ("blue", Int)]);
        let mut q = [0];
        Stamina(99.5).quantize(&mut q);
        assert_eq!(q, [6_368]);
        let kinds = [Role::Player, Role::Npc, Role::Ball];
        for (i, r) in kinds.into_iter().enumerate() {
            r.quantize(&mut q);
            assert_eq!(q[0], i as i32, "{r:?} keeps its wire value");
        }
    }

    #[test]
    fn hostile_values_are_total() {
        assert_eq!(Role::dequantize(&[9]), Role::Player);
        assert_eq!(Team::dequantize(&[-1]), Team::Red);
        assert_eq!(Goals::dequantize(&[-4]), Goals(0));
        assert_eq!(MatchScore::dequantize(&[1 << 20, -1]), MatchScore { red: 65_535, blue: 0 });
        let _ = Facing::dequantize(&[i32::MIN]);
        let _ = Stamina::dequantize(&[i32::MAX]);
    }

    #[test]
    fn the_score_counts_per_team() {
        let mut s = MatchScore::default();
        s.add(Team::Blue);
        s.add(Team::Blue);
        s.add(Team::Red);
        assert_eq!((s.of(Team::Red), s.of(Team::Blue)), (1, 2));
    }
}
