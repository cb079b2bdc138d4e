//! Types the derive refuses, and attributes in the wrong place.

use tickwire_derive::Replicate;

#[derive(Replicate)]
union Bits {
    a: u32,
    b: f32,
}

#[derive(Replicate)]
enum WithData {
    Empty,
    Full(u8),
}

#[derive(Replicate)]
enum Nothing {}

#[derive(Replicate)]
struct Unit;

#[derive(Replicate)]
struct NoFields {}

#[derive(Replicate)]
struct NoTupleFields();

#[derive(Replicate)]
#[replicate(field = "score")]
struct Named {
    kills: u16,
}

#[derive(Replicate)]
#[replicate(field = "pair")]
struct Pair(u8, u8);

#[derive(Replicate)]
#[quantize(position)]
struct OnTheType(u8);

#[derive(Replicate)]
struct OnAField {
    #[replicate(name = "x")]
    x: u8,
}

#[derive(Replicate)]
enum OnAVariant {
    #[quantize(modulo = 4)]
    A,
    B,
}

fn main() {}
