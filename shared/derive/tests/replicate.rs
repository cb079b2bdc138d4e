//! `#[derive(Replicate)]` against a stand-in for `tickwire_shared` (the [`mock`] module): the
//! wire fields each encoding declares, round trips, hostile values, naming rules and the real
//! components of the arena.

// Makes `::tickwire_shared` resolve to this test crate, whose root re-exports the mock, so that
// components without `#[replicate(crate = "...")]` test the default path.
extern crate self as tickwire_shared;

pub use mock::{glam, quantize, registry};

use glam::Vec2;
use mock::registry::{FieldKind, FieldSpec, Replicate};
use tickwire_derive::Replicate;

/// What the generated code needs from `tickwire_shared`, with the same signatures.
pub mod mock {
    pub use glam;

    /// `tickwire_shared::registry`, less the `Component` supertrait.
    pub mod registry {
        /// How a field is compared and sent.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum FieldKind {
            /// Any `i32`.
            Int,
            /// A 16-bit angle.
            Angle,
        }

        /// One field of a replicated component.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub struct FieldSpec {
            /// The field's name.
            pub name: &'static str,
            /// How it is compared and sent.
            pub kind: FieldKind,
            /// How it is quantized, for people.
            pub quantization: &'static str,
        }

        impl FieldSpec {
            /// An Int field.
            #[must_use]
            pub const fn int(name: &'static str) -> FieldSpec {
                FieldSpec { name, kind: FieldKind::Int, quantization: "" }
            }

            /// An Angle field.
            #[must_use]
            pub const fn angle(name: &'static str) -> FieldSpec {
                FieldSpec { name, kind: FieldKind::Angle, quantization: "" }
            }

            /// Described as quantized by `how`.
            #[must_use]
            pub const fn quantized(self, how: &'static str) -> FieldSpec {
                FieldSpec { quantization: how, ..self }
            }
        }

        /// A replicated component.
        pub trait Replicate: Sized {
            /// A stable name.
            const NAME: &'static str;
            /// The quantized fields, in wire order.
            const FIELDS: &'static [FieldSpec];
            /// Writes the quantized fields into `out`.
            fn quantize(&self, out: &mut [i32]);
            /// Rebuilds a component from quantized fields.
            fn dequantize(fields: &[i32]) -> Self;
        }
    }

    /// The four functions of `tickwire_shared::quantize` the derive uses, same behaviour.
    pub mod quantize {
        /// Grid cells per world unit.
        pub const POSITION_SCALE: f32 = 64.0;

        /// A world coordinate on the 1/64 grid.
        #[must_use]
        pub fn position(v: f32) -> i32 {
            (v * POSITION_SCALE).round() as i32
        }

        /// The world coordinate a grid value stands for.
        #[must_use]
        pub fn position_value(q: i32) -> f32 {
            q as f32 / POSITION_SCALE
        }

        /// An angle in radians as 16 bits.
        #[must_use]
        pub fn angle(radians: f32) -> u16 {
            if !radians.is_finite() {
                return 0;
            }
            let turns = radians / std::f32::consts::TAU;
            let frac = turns - turns.floor();
            ((frac * 65_536.0).round() as u32 & 0xffff) as u16
        }

        /// The angle 16 bits stand for, in radians in `[-π, π)`.
        #[must_use]
        pub fn angle_value(q: u16) -> f32 {
            f32::from(q as i16) * (std::f32::consts::PI / 32_768.0)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The arena's real components.

#[derive(Replicate, Clone, Copy, Debug, PartialEq)]
#[replicate(crate = "crate::mock")]
struct Position(#[quantize(position)] Vec2);

#[derive(Replicate, Clone, Copy, Debug, PartialEq, Eq)]
#[replicate(crate = "crate::mock", field = "kind")]
enum Kind {
    Player,
    Npc,
    Projectile,
    Pickup,
}

#[derive(Replicate, Clone, Copy, Debug, PartialEq)]
#[replicate(crate = "crate::mock")]
struct Aim(#[quantize(angle)] f32);

#[derive(Replicate, Clone, Copy, Debug, PartialEq)]
#[replicate(crate = "crate::mock")]
struct Health(#[quantize(range = 0..=255)] f32);

#[derive(Replicate, Clone, Copy, Debug, PartialEq, Eq)]
#[replicate(crate = "crate::mock")]
struct Score {
    kills: u16,
    deaths: u16,
}

#[derive(Replicate, Clone, Copy, Debug, PartialEq, Eq)]
#[replicate(crate = "crate::mock")]
struct Dash {
    cooldown: u16,
    ticks_left: u16,
}

#[derive(Replicate, Clone, Copy, Debug, PartialEq, Eq)]
#[replicate(crate = "crate::mock")]
#[replicate(field = "tick")]
struct Launched(#[quantize(modulo = 1024)] u16);

// ---------------------------------------------------------------------------------------------
// One component per encoding and naming rule.

/// Every plain integer type and `bool`, named fields.
#[derive(Replicate, Clone, Copy, Debug, PartialEq)]
#[replicate(crate = "crate::mock")]
struct Plain {
    a: u8,
    b: u16,
    c: u32,
    d: i8,
    e: i16,
    f: i32,
    g: bool,
}

/// Every float encoding, named fields (Vec2 ones expand to `.x` / `.y`).
#[derive(Replicate, Clone, Copy, Debug, PartialEq)]
#[replicate(crate = "crate::mock", name = "Floats.v2")]
struct Floats {
    #[quantize(position)]
    pos: Vec2,
    #[quantize(position)]
    z: f32,
    #[quantize(angle)]
    heading: f32,
    #[quantize(scale = 100)]
    speed: f32,
    #[quantize(scale = 0.5)]
    coarse: f32,
    #[quantize(scale = 16.0)]
    vel: glam::Vec2,
    #[quantize(range = -10..=10)]
    tilt: f32,
}

/// Integer ranges and moduli on every integer type.
#[derive(Replicate, Clone, Copy, Debug, PartialEq, Eq)]
#[replicate(crate = "crate::mock")]
struct Bounded {
    #[quantize(range = 0..=100)]
    a: u8,
    #[quantize(range = -5..=5)]
    b: i8,
    #[quantize(range = 10..=20)]
    c: u32,
    #[quantize(range = -2147483648..=2147483647)]
    d: i32,
    #[quantize(modulo = 256)]
    e: u8,
    #[quantize(modulo = 128)]
    f: i8,
    #[quantize(modulo = 1000)]
    g: u32,
    #[quantize(modulo = 7)]
    h: i32,
    #[quantize(range = -300..=300)]
    i: i16,
    #[quantize(modulo = 65536)]
    j: u16,
}

/// A tuple struct with several fields: named by index.
#[derive(Replicate, Clone, Copy, Debug, PartialEq)]
#[replicate(crate = "crate::mock")]
struct Pair(u16, #[quantize(position)] Vec2, bool);

/// A one-field tuple struct with a scalar: named after the type.
#[derive(Replicate, Clone, Copy, Debug, PartialEq, Eq)]
#[replicate(crate = "crate::mock")]
struct TeamId(u8);

/// A one-field tuple struct with a Vec2 and `field = "..."`.
#[derive(Replicate, Clone, Copy, Debug, PartialEq)]
#[replicate(crate = "crate::mock", field = "spawn")]
struct SpawnPoint(#[quantize(position)] Vec2);

/// A named struct with a lone Vec2 field.
#[derive(Replicate, Clone, Copy, Debug, PartialEq)]
#[replicate(crate = "crate::mock")]
struct Target {
    #[quantize(position)]
    at: Vec2,
}

/// An enum with explicit discriminants (ignored) and the default field name.
#[derive(Replicate, Clone, Copy, Debug, PartialEq, Eq)]
#[replicate(crate = "crate::mock")]
#[repr(u8)]
enum Team {
    Red = 7,
    Blue = 3,
    Green = 200,
}

/// A one-variant enum.
#[derive(Replicate, Clone, Copy, Debug, PartialEq, Eq)]
#[replicate(crate = "crate::mock")]
enum Only {
    One,
}

/// The default crate path (`::tickwire_shared`, this test crate's root).
#[derive(Replicate, Clone, Copy, Debug, PartialEq)]
struct Tagged {
    #[quantize(position)]
    x: f32,
    #[quantize(range = 0..=3)]
    level: u8,
}

/// Raw identifiers lose their `r#` in wire names.
#[derive(Replicate, Clone, Copy, Debug, PartialEq, Eq)]
#[replicate(crate = "crate::mock")]
struct r#Loop {
    r#type: u8,
}

/// `crate = "crate"`, as the shared crate's own components could say (this test crate's root
/// re-exports the mock).
#[derive(Replicate, Clone, Copy, Debug, PartialEq, Eq)]
#[replicate(crate = "crate", name = "Flag")]
struct FlagInCrate(bool);

/// A generic type (the default crate path too).
#[derive(Replicate, Clone, Copy, Debug, PartialEq)]
struct Generic<const N: usize> {
    #[quantize(position)]
    x: f32,
}

// ---------------------------------------------------------------------------------------------
// Helpers.

fn spec(fields: &[(&'static str, FieldKind)]) -> Vec<FieldSpec> {
    fields.iter().map(|&(name, kind)| FieldSpec { name, kind, quantization: "" }).collect()
}

fn ints(names: &[&'static str]) -> Vec<FieldSpec> {
    names.iter().map(|&name| FieldSpec::int(name)).collect()
}

fn quantized<C: Replicate>(c: &C) -> Vec<i32> {
    let mut out = vec![i32::MIN + 12_345; C::FIELDS.len()];
    c.quantize(&mut out);
    out
}

/// `quantize(dequantize(q)) == q` for each sample.
fn round_trip<C: Replicate>(samples: &[&[i32]]) {
    for &q in samples {
        assert_eq!(q.len(), C::FIELDS.len(), "{}: sample length", C::NAME);
        assert_eq!(quantized(&C::dequantize(q)), q, "{} round trip of {q:?}", C::NAME);
    }
}

/// `dequantize` of hostile values does not panic and gives values that quantize to themselves
/// (a fixed point, so a second round trip changes nothing).
fn hostile<C: Replicate>() -> Vec<C> {
    const NASTY: [i32; 9] =
        [i32::MIN, i32::MIN + 1, -65_537, -256, -1, 65_536, 1 << 24, i32::MAX - 1, i32::MAX];
    let n = C::FIELDS.len();
    let mut out = Vec::new();
    for (k, &v) in NASTY.iter().enumerate() {
        for row in [vec![v; n], (0..n).map(|i| NASTY[(k + i) % NASTY.len()]).collect()] {
            let c = C::dequantize(&row);
            let q = quantized(&c);
            assert_eq!(quantized(&C::dequantize(&q)), q, "{} fixed point from {row:?}", C::NAME);
            out.push(c);
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The real components.

/// Names and kinds of fields (what the wire layout is), without their descriptions.
fn shape(fields: &[FieldSpec]) -> Vec<(&'static str, FieldKind)> {
    fields.iter().map(|f| (f.name, f.kind)).collect()
}

#[test]
fn quantization_is_described_for_people() {
    let how = |fields: &[FieldSpec]| fields.iter().map(|f| f.quantization).collect::<Vec<_>>();
    assert_eq!(how(Position::FIELDS), ["f32 on the 1/64 position grid"; 2]);
    assert_eq!(how(Kind::FIELDS), ["one of Player | Npc | Projectile | Pickup"]);
    assert_eq!(how(Aim::FIELDS), ["f32 radians as 16 bits"]);
    assert_eq!(how(Health::FIELDS), ["f32 rounded, in 0..=255"]);
    assert_eq!(how(Score::FIELDS), ["u16", "u16"]);
    assert_eq!(how(Launched::FIELDS), ["u16 modulo 1024"]);
}

#[test]
fn real_components_fields() {
    assert_eq!(Position::NAME, "Position");
    assert_eq!(shape(Position::FIELDS), shape(&ints(&["x", "y"])));
    assert_eq!(Kind::NAME, "Kind");
    assert_eq!(shape(Kind::FIELDS), shape(&ints(&["kind"])));
    assert_eq!(Aim::NAME, "Aim");
    assert_eq!(shape(Aim::FIELDS), shape(&[FieldSpec::angle("aim")]));
    assert_eq!(Aim::FIELDS[0].kind, FieldKind::Angle);
    assert_eq!(Health::NAME, "Health");
    assert_eq!(shape(Health::FIELDS), shape(&ints(&["health"])));
    assert_eq!(Score::NAME, "Score");
    assert_eq!(shape(Score::FIELDS), shape(&ints(&["kills", "deaths"])));
    assert_eq!(Dash::NAME, "Dash");
    assert_eq!(shape(Dash::FIELDS), shape(&ints(&["cooldown", "ticks_left"])));
    assert_eq!(Launched::NAME, "Launched");
    assert_eq!(shape(Launched::FIELDS), shape(&ints(&["tick"])));
}

#[test]
fn real_components_quantize() {
    assert_eq!(quantized(&Position(Vec2::new(1.0, -0.5))), [64, -32]);
    assert_eq!(Position::dequantize(&[64, -32]), Position(Vec2::new(1.0, -0.5)));
    assert_eq!(quantized(&Kind::Projectile), [2]);
    assert_eq!(quantized(&Aim(std::f32::consts::FRAC_PI_2)), [16_384]);
    assert_eq!(quantized(&Health(99.6)), [100]);
    assert_eq!(quantized(&Health(-3.0)), [0]);
    assert_eq!(quantized(&Health(300.0)), [255]);
    assert_eq!(quantized(&Health(f32::NAN)), [0]);
    assert_eq!(quantized(&Score { kills: 3, deaths: 65_535 }), [3, 65_535]);
    assert_eq!(quantized(&Dash { cooldown: 90, ticks_left: 9 }), [90, 9]);
    assert_eq!(quantized(&Launched(1000)), [1000]);
    assert_eq!(quantized(&Launched(1030)), [6]);
}

#[test]
fn real_components_round_trip() {
    round_trip::<Position>(&[
        &[0, 0],
        &[1, -1],
        &[38_400, -25_600],
        &[12_345, -999],
        &[1 << 24, -(1 << 24)],
        &[i32::MAX, i32::MIN],
    ]);
    round_trip::<Kind>(&[&[0], &[1], &[2], &[3]]);
    for q in 0..=65_535 {
        round_trip::<Aim>(&[&[q]]);
    }
    round_trip::<Health>(&[&[0], &[1], &[50], &[100], &[255]]);
    round_trip::<Score>(&[&[0, 0], &[3, 7], &[65_535, 1], &[0, 65_535]]);
    round_trip::<Dash>(&[&[0, 0], &[90, 9], &[1, 0], &[65_535, 65_535]]);
    for q in 0..1024 {
        round_trip::<Launched>(&[&[q]]);
    }
}

#[test]
fn real_components_hostile() {
    hostile::<Position>();
    hostile::<Aim>();
    hostile::<Health>();
    hostile::<Score>();
    hostile::<Dash>();
    hostile::<Launched>();
    hostile::<Kind>();
    assert_eq!(Health::dequantize(&[-5]), Health(0.0));
    assert_eq!(Health::dequantize(&[9_999]), Health(255.0));
    assert_eq!(Score::dequantize(&[-1, 1 << 20]), Score { kills: 0, deaths: 65_535 });
    assert_eq!(Dash::dequantize(&[i32::MIN, i32::MAX]), Dash { cooldown: 0, ticks_left: 65_535 });
    assert_eq!(Launched::dequantize(&[-1]), Launched(1023));
    assert_eq!(Launched::dequantize(&[i32::MAX]), Launched((i32::MAX % 1024) as u16));
    assert_eq!(quantized(&Aim::dequantize(&[i32::MIN])), [0]);
    assert_eq!(quantized(&Aim::dequantize(&[-1])), [65_535]);
    assert_eq!(quantized(&Aim::dequantize(&[65_536 + 5])), [5]);
}

#[test]
fn enums_send_the_index_and_read_unknown_values_as_the_first_variant() {
    let all = [Kind::Player, Kind::Npc, Kind::Projectile, Kind::Pickup];
    for (i, k) in all.iter().enumerate() {
        assert_eq!(quantized(k), [i as i32]);
        assert_eq!(Kind::dequantize(&[i as i32]), *k);
    }
    for q in [4, 77, -1, i32::MIN, i32::MAX] {
        assert_eq!(Kind::dequantize(&[q]), Kind::Player);
    }

    // Discriminants are ignored; the default field name is the type's, lower-cased.
    assert_eq!(shape(Team::FIELDS), shape(&ints(&["team"])));
    assert_eq!(quantized(&Team::Red), [0]);
    assert_eq!(quantized(&Team::Blue), [1]);
    assert_eq!(quantized(&Team::Green), [2]);
    assert_eq!(Team::dequantize(&[2]), Team::Green);
    assert_eq!(Team::dequantize(&[7]), Team::Red);
    round_trip::<Team>(&[&[0], &[1], &[2]]);
    hostile::<Team>();

    assert_eq!(shape(Only::FIELDS), shape(&ints(&["only"])));
    assert_eq!(quantized(&Only::One), [0]);
    assert_eq!(Only::dequantize(&[5]), Only::One);
}

// ---------------------------------------------------------------------------------------------
// Plain integers and bool.

#[test]
fn plain_fields() {
    assert_eq!(Plain::NAME, "Plain");
    assert_eq!(shape(Plain::FIELDS), shape(&ints(&["a", "b", "c", "d", "e", "f", "g"])));
    let p = Plain { a: 200, b: 60_000, c: u32::MAX, d: -128, e: -30_000, f: i32::MIN, g: true };
    assert_eq!(quantized(&p), [200, 60_000, -1, -128, -30_000, i32::MIN, 1]);
    assert_eq!(Plain::dequantize(&quantized(&p)), p);
    round_trip::<Plain>(&[
        &[0, 0, 0, 0, 0, 0, 0],
        &[255, 65_535, i32::MAX, 127, 32_767, i32::MAX, 1],
        &[0, 0, i32::MIN, -128, -32_768, i32::MIN, 0],
        &[17, 1234, -5, -3, 999, -77, 1],
    ]);
}

#[test]
fn plain_fields_clamp_hostile_values() {
    hostile::<Plain>();
    let low = Plain::dequantize(&[i32::MIN; 7]);
    assert_eq!(low, Plain { a: 0, b: 0, c: 1 << 31, d: -128, e: -32_768, f: i32::MIN, g: true });
    let high = Plain::dequantize(&[i32::MAX; 7]);
    assert_eq!(
        high,
        Plain { a: 255, b: 65_535, c: (1 << 31) - 1, d: 127, e: 32_767, f: i32::MAX, g: true }
    );
    let negative = Plain::dequantize(&[-1; 7]);
    assert_eq!(negative, Plain { a: 0, b: 0, c: u32::MAX, d: -1, e: -1, f: -1, g: true });
    assert!(!Plain::dequantize(&[0; 7]).g);
    assert!(Plain::dequantize(&[0, 0, 0, 0, 0, 0, 2]).g);
}

// ---------------------------------------------------------------------------------------------
// Floats.

#[test]
fn float_fields() {
    use FieldKind::{Angle, Int};
    assert_eq!(Floats::NAME, "Floats.v2");
    assert_eq!(
        shape(Floats::FIELDS),
        shape(&spec(&[
            ("pos.x", Int),
            ("pos.y", Int),
            ("z", Int),
            ("heading", Angle),
            ("speed", Int),
            ("coarse", Int),
            ("vel.x", Int),
            ("vel.y", Int),
            ("tilt", Int),
        ]))
    );
}

#[test]
fn float_fields_quantize() {
    let f = Floats {
        pos: Vec2::new(2.0, -1.0 / 64.0),
        z: 0.5,
        heading: -std::f32::consts::FRAC_PI_2,
        speed: 1.234,
        coarse: 7.0,
        vel: Vec2::new(0.5, -0.25),
        tilt: -12.6,
    };
    assert_eq!(quantized(&f), [128, -1, 32, 49_152, 123, 4, 8, -4, -10]);
    let back = Floats::dequantize(&quantized(&f));
    assert_eq!(back.pos, Vec2::new(2.0, -1.0 / 64.0));
    assert_eq!(back.speed, 1.23);
    assert_eq!(back.coarse, 8.0);
    assert_eq!(back.tilt, -10.0);

    // NaN sends 0; infinities saturate (and clamp for a range).
    let nan = Floats {
        pos: Vec2::NAN,
        z: f32::NAN,
        heading: f32::NAN,
        speed: f32::NAN,
        coarse: f32::NAN,
        vel: Vec2::NAN,
        tilt: f32::NAN,
    };
    assert_eq!(quantized(&nan), [0; 9]);
    let inf = Floats {
        pos: Vec2::INFINITY,
        z: f32::NEG_INFINITY,
        heading: f32::INFINITY,
        speed: f32::INFINITY,
        coarse: f32::NEG_INFINITY,
        vel: Vec2::NEG_INFINITY,
        tilt: f32::INFINITY,
    };
    let max = i32::MAX;
    let min = i32::MIN;
    assert_eq!(quantized(&inf), [max, max, min, 0, max, min, min, min, 10]);
}

#[test]
fn float_fields_round_trip() {
    round_trip::<Floats>(&[
        &[0; 9],
        &[1, -1, 64, 65_535, 12_345, -3, 160, -16, 10],
        &[1 << 24, -(1 << 24), 1 << 30, 1, -(1 << 21), 1 << 24, 1 << 28, -(1 << 28), -10],
        &[i32::MAX, i32::MIN, i32::MIN, 32_768, 4_000_000, i32::MAX, i32::MAX, i32::MIN, 0],
    ]);
    for q in (-(1 << 22)..(1 << 22)).step_by(997) {
        round_trip::<Floats>(&[&[q, q, q, q & 0xffff, q, q, q, q, q.clamp(-10, 10)]]);
    }
}

#[test]
fn float_fields_hostile() {
    for f in hostile::<Floats>() {
        assert!((-std::f32::consts::PI..std::f32::consts::PI).contains(&f.heading));
        assert!((-10.0..=10.0).contains(&f.tilt));
    }
    let f = Floats::dequantize(&[0, 0, 0, -1, 0, 0, 0, 0, i32::MIN]);
    assert_eq!(quantized(&f)[3], 65_535);
    assert_eq!(f.tilt, -10.0);
}

// ---------------------------------------------------------------------------------------------
// Integer ranges and moduli.

#[test]
fn bounded_fields() {
    assert_eq!(
        shape(Bounded::FIELDS),
        shape(&ints(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"]))
    );
    let b = Bounded {
        a: 200,
        b: -100,
        c: 5,
        d: 42,
        e: 255,
        f: -1,
        g: u32::MAX,
        h: -8,
        i: 1000,
        j: 65_535,
    };
    // u32::MAX % 1000 == 295, -1 mod 128 == 127, -8 mod 7 == 6.
    assert_eq!(quantized(&b), [100, -5, 10, 42, 255, 127, 295, 6, 300, 65_535]);
    round_trip::<Bounded>(&[
        &[0, -5, 10, i32::MIN, 0, 0, 0, 0, -300, 0],
        &[100, 5, 20, i32::MAX, 255, 127, 999, 6, 300, 65_535],
        &[37, 0, 15, -1, 128, 64, 500, 3, -1, 1024],
    ]);
}

#[test]
fn bounded_fields_hostile() {
    for b in hostile::<Bounded>() {
        assert!(b.a <= 100);
        assert!((-5..=5).contains(&b.b));
        assert!((10..=20).contains(&b.c));
        assert!(b.f >= 0);
        assert!(b.g < 1000);
        assert!((0..7).contains(&b.h));
        assert!((-300..=300).contains(&b.i));
    }
    let low = Bounded::dequantize(&[i32::MIN; 10]);
    assert_eq!(
        low,
        Bounded { a: 0, b: -5, c: 10, d: i32::MIN, e: 0, f: 0, g: 352, h: 5, i: -300, j: 0 }
    );
    let high = Bounded::dequantize(&[-1; 10]);
    assert_eq!(
        high,
        Bounded { a: 0, b: -1, c: 10, d: -1, e: 255, f: 127, g: 999, h: 6, i: -1, j: 65_535 }
    );
}

// ---------------------------------------------------------------------------------------------
// Naming rules.

#[test]
fn tuple_struct_fields_are_named_by_index() {
    assert_eq!(shape(Pair::FIELDS), shape(&ints(&["0", "1.x", "1.y", "2"])));
    let p = Pair(9, Vec2::new(-1.0, 0.25), true);
    assert_eq!(quantized(&p), [9, -64, 16, 1]);
    assert_eq!(Pair::dequantize(&[9, -64, 16, 1]), p);
    round_trip::<Pair>(&[&[0, 0, 0, 0], &[65_535, i32::MAX, i32::MIN, 1]]);
    hostile::<Pair>();
}

#[test]
fn a_lone_tuple_field_is_named_after_the_type_or_the_field_attribute() {
    assert_eq!(shape(TeamId::FIELDS), shape(&ints(&["teamid"])));
    round_trip::<TeamId>(&[&[0], &[255]]);
    assert_eq!(TeamId::dequantize(&[-9]), TeamId(0));

    // A Vec2: "x" and "y" by default (Position), "NAME.x" and "NAME.y" with `field`.
    assert_eq!(shape(SpawnPoint::FIELDS), shape(&ints(&["spawn.x", "spawn.y"])));
    round_trip::<SpawnPoint>(&[&[5, -5]]);

    // A named struct's lone Vec2 keeps its name.
    assert_eq!(shape(Target::FIELDS), shape(&ints(&["at.x", "at.y"])));
    assert_eq!(quantized(&Target { at: Vec2::new(0.5, 1.0) }), [32, 64]);

    // Raw identifiers.
    assert_eq!(Loop::NAME, "Loop");
    assert_eq!(shape(Loop::FIELDS), shape(&ints(&["type"])));
}

#[test]
fn the_default_crate_path_and_generics() {
    assert_eq!(Tagged::NAME, "Tagged");
    assert_eq!(shape(Tagged::FIELDS), shape(&ints(&["x", "level"])));
    assert_eq!(quantized(&Tagged { x: 1.5, level: 9 }), [96, 3]);
    round_trip::<Tagged>(&[&[96, 3], &[-1, 0]]);
    assert_eq!(Tagged::dequantize(&[0, -4]).level, 0);

    assert_eq!(FlagInCrate::NAME, "Flag");
    assert_eq!(shape(FlagInCrate::FIELDS), shape(&ints(&["flagincrate"])));
    round_trip::<FlagInCrate>(&[&[0], &[1]]);
    assert_eq!(FlagInCrate::dequantize(&[-3]), FlagInCrate(true));

    assert_eq!(shape(Generic::<3>::FIELDS), shape(&ints(&["x"])));
    round_trip::<Generic<3>>(&[&[7]]);
}
