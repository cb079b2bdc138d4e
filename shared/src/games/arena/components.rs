//! The arena's ECS components: the replicated ones (each derives [`Replicate`], which says how
//! its fields are quantized) and the server-only ones that drive the rules.
//!
//! Replicated components are quantized exactly as the wire sends them; for each of them
//! `quantize(dequantize(q)) == q` holds for every value the simulation can produce.

use bevy_ecs::prelude::*;
use glam::Vec2;
use serde::{Deserialize, Serialize};

use crate::ids::NetId;
use crate::registry::Replicate;
use crate::tick::Tick;

/// Where an entity is, in world units (origin at the arena's centre, +y up).
///
/// Players' and NPCs' positions are kept on the quantization grid by
/// [`super::step_mover`], so what the server sends is exactly what it simulates. Replicated
/// first (registry index 0). The round trip holds for grid values up to 2^24 in magnitude,
/// far beyond the arena.
#[derive(Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Position(#[quantize(position)] pub Vec2);

/// Combatants' positions are rewound for hits (lag compensation, [`crate::rewind`]): between
/// two ticks a combatant was on the straight line between its two positions.
impl crate::rewind::Rewind for Position {
    fn blend(&self, later: &Position, t: f32) -> Position {
        Position(self.0.lerp(later.0, t))
    }
}

/// What an entity is, so a client knows how to draw it. Sent as the variant's index; an
/// unknown value reads as [`Kind::Player`].
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
#[replicate(field = "kind")]
pub enum Kind {
    /// A human player.
    #[default]
    Player,
    /// A bot driven by the server's AI.
    Npc,
    /// A shot in flight.
    Projectile,
    /// A health pickup waiting to be taken.
    Pickup,
}

impl Kind {
    /// Whether this kind fights (can shoot, be hit, score, die and respawn).
    #[must_use]
    pub fn is_combatant(self) -> bool {
        matches!(self, Kind::Player | Kind::Npc)
    }
}

/// The direction a combatant faces and shoots, in radians (0 is +x, counter-clockwise).
/// Kept on the 16-bit angle grid by the movement system.
#[derive(Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Aim(#[quantize(angle)] pub f32);

/// Hit points of a combatant: `0` means dead, [`super::MAX_HEALTH`] is full. Whole numbers,
/// sent rounded in `0..=255`.
#[derive(Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Health(#[quantize(range = 0..=255)] pub f32);

/// A combatant's tally in this room.
#[derive(
    Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize,
)]
pub struct Score {
    /// Opponents this one killed.
    pub kills: u16,
    /// Times this one died.
    pub deaths: u16,
}

/// A mover's dash state (the dash fields of [`super::MoverState`]), replicated so a client
/// can reconcile its predicted dash with the server's.
#[derive(
    Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize,
)]
pub struct Dash {
    /// Ticks until the next dash may start.
    pub cooldown: u16,
    /// Ticks of the current dash still to run (0: not dashing).
    pub ticks_left: u16,
}

/// A projectile's velocity in units per second (server only: clients know it from the
/// projectile's [`Aim`] and [`super::PROJECTILE_SPEED`]).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Velocity(pub Vec2);

/// Where a projectile is now (server only). A projectile flies straight at a fixed speed, so
/// its replicated [`Position`] stays where it was fired and, with its [`Aim`] and
/// [`Launched`], tells a client where it is at any tick ([`projectile_position`]): its flight
/// costs nothing per snapshot.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Flight(pub Vec2);

/// Launch ticks are replicated modulo this: 17 s at 60 Hz, far longer than a projectile lives.
pub const LAUNCH_TICK_MODULUS: u32 = 1024;

/// The first tick whose state shows a projectile at its launch [`Position`], modulo
/// [`LAUNCH_TICK_MODULUS`] (replicated once, with the projectile's spawn: 13 bits).
#[derive(
    Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize,
)]
#[replicate(field = "tick")]
pub struct Launched(#[quantize(modulo = 1024)] pub u16);

impl Launched {
    /// The launch of a projectile first shown at `tick`.
    #[must_use]
    pub fn at(tick: Tick) -> Launched {
        Launched((tick.0 % LAUNCH_TICK_MODULUS) as u16)
    }

    /// Ticks from the launch to `now` (a tick at or after it, within the modulus).
    #[must_use]
    pub fn ticks_until(self, now: Tick) -> u32 {
        now.0.wrapping_sub(u32::from(self.0)) % LAUNCH_TICK_MODULUS
    }
}

/// Where a projectile fired from `origin` along `aim` (radians) is `elapsed_secs` after its
/// launch: the rule the server's flight follows, for clients to draw it.
#[must_use]
pub fn projectile_position(origin: Vec2, aim: f32, elapsed_secs: f32) -> Vec2 {
    origin + Vec2::from_angle(aim) * super::PROJECTILE_SPEED * elapsed_secs.max(0.0)
}

/// Ticks a projectile has left before it disappears (server only).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lifetime(pub u32);

/// Who fired a projectile: credited with the kill, and never hit by it (server only).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Owner(pub NetId);

/// How far behind its firing tick its shooter saw the world ([`crate::rewind::ViewLag`] at the
/// shot, in ticks): the projectile is tested against the combatants as they were that long
/// before each tick of its flight, which is where the shooter saw them. Not replicated.
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShotLag(pub f32);

/// Marks a dead combatant: it neither moves, shoots nor is hit until `respawn_at`
/// (server only; clients see `Health(0)`).
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dead {
    /// The tick at which it comes back.
    pub respawn_at: Tick,
}

/// A combatant's weapon (server only).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Weapon {
    /// Ticks until it may fire again.
    pub cooldown: u16,
}

/// A human player's name (server only; clients learn names from `GameEvent::Joined`).
#[derive(Component, Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlayerName(pub String);

/// Marks a health pickup entity (server only).
#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pickup {
    /// Which of [`super::Arena::pickup_spots`] it sits on.
    pub spot: usize,
}

/// A taken pickup waiting to come back: a non-replicated entity that spawns a fresh pickup
/// (with a new [`NetId`]) at `at` once `respawn_at` is reached.
#[derive(Component, Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct PickupRespawn {
    /// Which of [`super::Arena::pickup_spots`] it comes back on.
    pub spot: usize,
    /// The tick at which it comes back.
    pub respawn_at: Tick,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<C: Replicate>(samples: &[&[i32]]) {
        let checked = crate::registry::check_round_trips::<C>(samples);
        assert_eq!(checked, Ok(()), "{} round trip", C::NAME);
    }

    #[test]
    fn position_round_trips() {
        round_trip::<Position>(&[
            &[0, 0],
            &[1, -1],
            &[38_400, -25_600],
            &[-38_400, 25_600],
            &[12_345, -999],
            &[1 << 24, -(1 << 24)],
        ]);
    }

    #[test]
    fn kind_round_trips() {
        round_trip::<Kind>(&[&[0], &[1], &[2], &[3]]);
        let mut out = [0];
        let kinds = [Kind::Player, Kind::Npc, Kind::Projectile, Kind::Pickup];
        for (i, k) in kinds.into_iter().enumerate() {
            k.quantize(&mut out);
            assert_eq!(out[0], i as i32, "{k:?} keeps its wire value");
        }
    }

    #[test]
    fn aim_round_trips_every_step() {
        let mut out = [0i32];
        for q in 0..=65_535i32 {
            Aim::dequantize(&[q]).quantize(&mut out);
            assert_eq!(out[0], q);
        }
    }

    #[test]
    fn health_score_dash_round_trip() {
        round_trip::<Health>(&[&[0], &[1], &[50], &[100], &[255]]);
        round_trip::<Score>(&[&[0, 0], &[3, 7], &[65_535, 1], &[0, 65_535]]);
        round_trip::<Dash>(&[&[0, 0], &[90, 9], &[1, 0], &[65_535, 65_535]]);
    }

    #[test]
    fn the_wire_layout_is_what_it_was() {
        use crate::registry::FieldKind::{Angle, Int};
        let names = |fields: &[crate::registry::FieldSpec]| {
            fields.iter().map(|f| (f.name, f.kind)).collect::<Vec<_>>()
        };
        assert_eq!(names(Position::FIELDS), [("x", Int), ("y", Int)]);
        assert_eq!(names(Kind::FIELDS), [("kind", Int)]);
        assert_eq!(names(Aim::FIELDS), [("aim", Angle)]);
        assert_eq!(names(Health::FIELDS), [("health", Int)]);
        assert_eq!(names(Score::FIELDS), [("kills", Int), ("deaths", Int)]);
        assert_eq!(names(Dash::FIELDS), [("cooldown", Int), ("ticks_left", Int)]);
        assert_eq!(names(Launched::FIELDS), [("tick", Int)]);
        let mut q = [0; 2];
        Position(Vec2::new(1.0, -0.5)).quantize(&mut q);
        assert_eq!(q, [64, -32]);
        let mut a = [0];
        Health(99.6).quantize(&mut a);
        assert_eq!(a, [100], "health rounds like quantize::small");
    }

    #[test]
    fn hostile_values_are_total() {
        assert_eq!(Health::dequantize(&[-5]), Health(0.0));
        assert_eq!(Health::dequantize(&[9_999]), Health(255.0));
        assert_eq!(Score::dequantize(&[-1, 1 << 20]), Score { kills: 0, deaths: 65_535 });
        assert_eq!(Kind::dequantize(&[77]), Kind::Player);
        let _ = Aim::dequantize(&[i32::MIN]);
    }
}
