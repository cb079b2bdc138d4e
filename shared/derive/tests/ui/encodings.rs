//! Fields the derive cannot encode, and encodings that do not fit the field.

use glam::Vec2;
use tickwire_derive::Replicate;

#[derive(Replicate)]
struct BareFloat {
    speed: f32,
}

#[derive(Replicate)]
struct BareVec2(Vec2);

#[derive(Replicate)]
struct Unsupported {
    name: String,
    pair: [u8; 2],
    maybe: Option<u8>,
    wide: u64,
    ok: u8,
}

#[derive(Replicate)]
struct AngleOnInt(#[quantize(angle)] u16);

#[derive(Replicate)]
struct ModuloOnFloat(#[quantize(modulo = 8)] f32);

#[derive(Replicate)]
struct RangeOnVec2(#[quantize(range = 0..=1)] Vec2);

#[derive(Replicate)]
struct PositionOnInt(#[quantize(position)] i32);

#[derive(Replicate)]
struct AnythingOnBool(#[quantize(range = 0..=1)] bool);

#[derive(Replicate)]
struct Skip {
    #[quantize(skip)]
    cache: u8,
}

#[derive(Replicate)]
struct UnknownEncoding(#[quantize(fixed = 3)] f32);

#[derive(Replicate)]
struct TwoEncodings(#[quantize(position, angle)] f32);

#[derive(Replicate)]
struct TwoAttributes(
    #[quantize(position)]
    #[quantize(angle)]
    f32,
);

#[derive(Replicate)]
struct EmptyAttribute(#[quantize()] f32);

#[derive(Replicate)]
struct ValueOnPosition(#[quantize(position = 64)] f32);

fn main() {}
