//! Bad values for `scale`, `range` and `modulo`.

use tickwire_derive::Replicate;

#[derive(Replicate)]
struct ZeroScale(#[quantize(scale = 0)] f32);

#[derive(Replicate)]
struct NegativeScale(#[quantize(scale = -2.0)] f32);

#[derive(Replicate)]
struct StringScale(#[quantize(scale = "10")] f32);

#[derive(Replicate)]
struct HugeScale(#[quantize(scale = 1e40)] f32);

#[derive(Replicate)]
struct EmptyRange(#[quantize(range = 5..=1)] f32);

#[derive(Replicate)]
struct ExclusiveRange(#[quantize(range = 0..10)] f32);

#[derive(Replicate)]
struct FloatRange(#[quantize(range = 0.0..=1.0)] f32);

#[derive(Replicate)]
struct RangeTooWideForU8(#[quantize(range = 0..=256)] u8);

#[derive(Replicate)]
struct NegativeRangeForU32(#[quantize(range = -1..=5)] u32);

#[derive(Replicate)]
struct RangeTooWideForF32(#[quantize(range = 0..=16777217)] f32);

#[derive(Replicate)]
struct NotAnI32(#[quantize(range = 0..=2147483648)] i32);

#[derive(Replicate)]
struct ZeroModulo(#[quantize(modulo = 0)] u16);

#[derive(Replicate)]
struct ModuloTooBigForU8(#[quantize(modulo = 1024)] u8);

#[derive(Replicate)]
struct ModuloTooBigForI8(#[quantize(modulo = 129)] i8);

#[derive(Replicate)]
struct FloatModulo(#[quantize(modulo = 2.5)] u16);

fn main() {}
