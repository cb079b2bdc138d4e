//! A small replication registry that exercises every field kind: a two-field position, an
//! angle, a one-field small integer and a three-field record.

use bevy_ecs::component::Component;
use glam::Vec2;
use tickwire_shared::quantize;
use tickwire_shared::registry::{FieldSpec, Replicate, ReplicationRegistry};

/// A position in world units.
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct Pos(pub Vec2);

impl Replicate for Pos {
    const NAME: &'static str = "pos";
    const FIELDS: &'static [FieldSpec] = &[FieldSpec::int("x"), FieldSpec::int("y")];
    fn quantize(&self, out: &mut [i32]) {
        out.copy_from_slice(&quantize::position2(self.0));
    }
    fn dequantize(fields: &[i32]) -> Self {
        Pos(quantize::position2_value([fields[0], fields[1]]))
    }
}

/// A facing angle in radians.
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct Heading(pub f32);

impl Replicate for Heading {
    const NAME: &'static str = "heading";
    const FIELDS: &'static [FieldSpec] = &[FieldSpec::angle("angle")];
    fn quantize(&self, out: &mut [i32]) {
        out[0] = i32::from(quantize::angle(self.0));
    }
    fn dequantize(fields: &[i32]) -> Self {
        Heading(quantize::angle_value(fields[0] as u16))
    }
}

/// Hit points.
#[derive(Component, Clone, Copy, Debug, PartialEq)]
pub struct Hp(pub f32);

impl Replicate for Hp {
    const NAME: &'static str = "hp";
    const FIELDS: &'static [FieldSpec] = &[FieldSpec::int("hp")];
    fn quantize(&self, out: &mut [i32]) {
        out[0] = i32::from(quantize::small(self.0));
    }
    fn dequantize(fields: &[i32]) -> Self {
        Hp(f32::from(fields[0] as u8))
    }
}

/// A record of small counters.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tally {
    /// Kills.
    pub kills: u16,
    /// Deaths.
    pub deaths: u16,
    /// Team.
    pub team: u8,
}

impl Replicate for Tally {
    const NAME: &'static str = "tally";
    const FIELDS: &'static [FieldSpec] =
        &[FieldSpec::int("kills"), FieldSpec::int("deaths"), FieldSpec::int("team")];
    fn quantize(&self, out: &mut [i32]) {
        out[0] = i32::from(self.kills);
        out[1] = i32::from(self.deaths);
        out[2] = i32::from(self.team);
    }
    fn dequantize(fields: &[i32]) -> Self {
        Tally { kills: fields[0] as u16, deaths: fields[1] as u16, team: fields[2] as u8 }
    }
}

/// The fixture registry: `Pos`, `Heading`, `Hp`, `Tally`, in that order.
#[must_use]
pub fn registry() -> ReplicationRegistry {
    let mut r = ReplicationRegistry::new();
    r.register::<Pos>().expect("fresh registry");
    r.register::<Heading>().expect("fresh registry");
    r.register::<Hp>().expect("fresh registry");
    r.register::<Tally>().expect("fresh registry");
    r
}
