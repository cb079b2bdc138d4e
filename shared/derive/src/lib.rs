//! Derive macros for Tickwire. One for now: [`macro@Replicate`], which writes the
//! `tickwire_shared::registry::Replicate` impl of a replicated component from its fields, so a
//! game says *how* each field is quantized with a short attribute instead of a hand-written
//! `quantize` / `dequantize` pair that has to be kept in step with `FIELDS`.
//!
//! ```ignore
//! use bevy_ecs::component::Component;
//! use tickwire_shared::glam::Vec2;
//! use tickwire_shared::registry::Replicate;
//!
//! /// Where an entity is: two Int wire fields, "x" and "y", on the position grid.
//! #[derive(Component, Replicate, Clone, Copy, Debug, PartialEq)]
//! pub struct Position(#[quantize(position)] pub Vec2);
//!
//! /// What an entity is: one Int wire field, "kind", holding the variant's index.
//! #[derive(Component, Replicate, Clone, Copy, Debug, PartialEq, Eq)]
//! #[replicate(field = "kind")]
//! pub enum Kind {
//!     Player,
//!     Npc,
//!     Projectile,
//!     Pickup,
//! }
//!
//! /// Where it faces: one Angle wire field, "aim" (the type's name, lower-cased).
//! #[derive(Component, Replicate, Clone, Copy, Debug, PartialEq)]
//! pub struct Aim(#[quantize(angle)] pub f32);
//!
//! /// Hit points: one Int wire field, "health", rounded and clamped to 0..=255.
//! #[derive(Component, Replicate, Clone, Copy, Debug, PartialEq)]
//! pub struct Health(#[quantize(range = 0..=255)] pub f32);
//!
//! /// A tally: Int wire fields "kills" and "deaths", sent as they are.
//! #[derive(Component, Replicate, Clone, Copy, Debug, PartialEq, Eq)]
//! pub struct Score {
//!     pub kills: u16,
//!     pub deaths: u16,
//! }
//!
//! /// A launch tick modulo 1024: one Int wire field, "tick".
//! #[derive(Component, Replicate, Clone, Copy, Debug, PartialEq, Eq)]
//! #[replicate(field = "tick")]
//! pub struct Launched(#[quantize(modulo = 1024)] pub u16);
//!
//! # fn check() {
//! let mut out = [0; 2];
//! Position(Vec2::new(1.0, -0.5)).quantize(&mut out);
//! assert_eq!(out, [64, -32]);
//! assert_eq!(Position::dequantize(&out), Position(Vec2::new(1.0, -0.5)));
//! assert_eq!(Kind::dequantize(&[99]), Kind::Player); // unknown values read as the first variant
//! # }
//! ```
//!
//! The attributes are described on [`macro@Replicate`].
#![deny(missing_docs)]

mod expand;
mod model;
mod quantize_attr;

/// Derives `Replicate` (the trait in `tickwire_shared::registry`): a replicated component's
/// stable `NAME`, its quantized wire `FIELDS`, and `quantize` / `dequantize` between the two.
///
/// Derive `Component` too (`#[derive(Component, Replicate)]`): this derive does not.
///
/// What is generated keeps the contract of `Replicate`:
/// - `quantize(dequantize(q)) == q` for every `q` that `quantize` can produce (see the limits
///   of `scale` below), so what a client rebuilds quantizes back to exactly what the server
///   sent;
/// - `dequantize` never panics, whatever `i32`s it is given: hostile values are clamped,
///   masked or wrapped into range, as each encoding says.
///
/// # Types
///
/// - A struct with named fields: every field is replicated, in declaration order, each under
///   its own name (`foo`; a `Vec2` field `foo` sends `foo.x` then `foo.y`).
/// - A tuple struct with one field: the wire field is named after the type, lower-cased
///   (`struct Health(..)` sends `health`) unless `#[replicate(field = "...")]` names it; a
///   `Vec2` sends `x` and `y` (or `NAME.x` and `NAME.y` with `field = "NAME"`).
/// - A tuple struct with several fields: named by index, `0`, `1`, ... (`0.x`, `0.y` for a
///   `Vec2`).
/// - A field-less enum: one Int wire field holding the index of the variant, counted from 0
///   in declaration order (explicit discriminants are ignored). Any other value, from a newer
///   peer or a hostile one, reads back as the **first** variant. The wire field is named after
///   the type, lower-cased, unless `#[replicate(field = "...")]` names it.
///
/// Unions, enums with data, unit structs and structs without fields are refused. There is no
/// way to leave a field out: a component is replicated whole, so state that is not replicated
/// belongs in a component of its own.
///
/// # Type attributes: `#[replicate(...)]`
///
/// | attribute | effect | default |
/// | --- | --- | --- |
/// | `name = "Position"` | `Replicate::NAME`, part of the registry fingerprint | the type's name |
/// | `field = "kind"` | the wire name of an enum's field or a one-field tuple struct's field | the type's name, lower-cased |
/// | `crate = "crate::path"` | where the generated code finds `registry`, `quantize` and `glam` | `::tickwire_shared` |
///
/// ```ignore
/// #[derive(Component, Replicate)]
/// #[replicate(name = "Arena.Launched", field = "tick")]
/// pub struct Launched(#[quantize(modulo = 1024)] pub u16);
/// ```
///
/// Renaming the type or a field changes the fingerprint; pin `name` (and `field`) to keep the
/// wire format across a rename.
///
/// Inside `tickwire_shared` itself, where `::tickwire_shared` does not resolve, either write
/// `#[replicate(crate = "crate")]` or declare `extern crate self as tickwire_shared;` once in
/// its `lib.rs`. The crate named must have `registry::{Replicate, FieldSpec}`,
/// `quantize::{position, position_value, angle, angle_value}` and `glam` (for `Vec2`).
///
/// # Field attribute: `#[quantize(...)]`
///
/// Each field is sent as one wire field (two for a `Vec2`, x then y, encoded alike). Its type
/// is recognised by the last segment of its path, so `u16`, `glam::Vec2` and
/// `tickwire_shared::glam::Vec2` all work, but an alias does not.
///
/// | field type | attribute | wire field | sent as | read back as |
/// | --- | --- | --- | --- | --- |
/// | `u8` `u16` `i8` `i16` `i32` | none | Int | the value | clamped to the type |
/// | `u32` | none | Int | its bits (`v as i32`) | its bits (`q as u32`) |
/// | `bool` | none | Int | 0 or 1 | `q != 0` |
/// | `f32`, `Vec2` | `position` | Int | `quantize::position` (1/64 unit grid) | `quantize::position_value` |
/// | `f32` | `angle` | Angle | `quantize::angle` (16 bits) | `quantize::angle_value` of `q & 0xffff` |
/// | `f32`, `Vec2` | `scale = N` | Int | `(v * N).round() as i32` | `q as f32 / N` |
/// | `f32` | `range = LO..=HI` | Int | `(v.round() as i32).clamp(LO, HI)` | `q.clamp(LO, HI) as f32` |
/// | integers | `range = LO..=HI` | Int | `v.clamp(LO, HI)` | `q.clamp(LO, HI)` |
/// | integers | `modulo = M` | Int | `v.rem_euclid(M)` | `q.rem_euclid(M)` |
///
/// A field of another type, an `f32` or `Vec2` without an attribute, an attribute that does
/// not fit the type (`angle` on a `u16`, `modulo` on an `f32`, anything on a `bool`) and an
/// unknown key are compile errors. Conversions of floats to integers saturate and send NaN as
/// 0, so `quantize` is total too.
///
/// ## `position`
///
/// ```ignore
/// #[derive(Component, Replicate)]
/// pub struct Position(#[quantize(position)] pub Vec2); // Int "x", Int "y"
///
/// #[derive(Component, Replicate)]
/// pub struct Altitude {
///     #[quantize(position)]
///     pub z: f32, // Int "z"
/// }
/// ```
///
/// World coordinates on the shared position grid, the same grid the server simulates on.
///
/// ## `angle`
///
/// ```ignore
/// #[derive(Component, Replicate)]
/// pub struct Aim(#[quantize(angle)] pub f32); // Angle "aim"
/// ```
///
/// Radians in any range, sent in 16 bits (steps of 2π/65,536) in an Angle wire field, whose
/// deltas wrap around the circle. Read back in `[-π, π)`.
///
/// ## `scale = N`
///
/// ```ignore
/// #[derive(Component, Replicate)]
/// pub struct Speed(#[quantize(scale = 100)] pub f32); // Int "speed", steps of 0.01
///
/// #[derive(Component, Replicate)]
/// pub struct Velocity(#[quantize(scale = 16.0)] pub Vec2); // Int "x", Int "y", steps of 1/16
/// ```
///
/// `N` is a positive integer or float literal. The round trip is exact for every value when
/// `N` is a power of two (like `position`, which is `scale = 64`); for other scales it is exact
/// while `|v * N|` stays below 2^22 (about four million steps), beyond which `f32` rounding
/// can move a value by one step.
///
/// ## `range = LO..=HI`
///
/// ```ignore
/// #[derive(Component, Replicate)]
/// pub struct Health(#[quantize(range = 0..=255)] pub f32); // Int "health"
///
/// #[derive(Component, Replicate)]
/// pub struct Lane(#[quantize(range = -2..=2)] pub i8); // Int "lane"
/// ```
///
/// An inclusive range of integer literals (either may be negative). An `f32` is rounded to a
/// whole number; its bounds must lie within ±2^24, where `f32` holds every integer exactly.
/// On an integer field the range must fit in the field's type. Values outside are clamped
/// both when sent and when read back.
///
/// ## `modulo = M`
///
/// ```ignore
/// #[derive(Component, Replicate)]
/// #[replicate(field = "tick")]
/// pub struct Launched(#[quantize(modulo = 1024)] pub u16); // Int "tick", 0..=1023
/// ```
///
/// An integer field sent and read back as its Euclidean remainder by `M` (a positive integer
/// literal), so it is always in `0..M`, which must fit in the field's type.
///
/// ## Integers and `bool` without an attribute
///
/// ```ignore
/// #[derive(Component, Replicate)]
/// pub struct Score {
///     pub kills: u16, // Int "kills"
///     pub deaths: u16, // Int "deaths"
///     pub leader: bool, // Int "leader"
/// }
/// ```
///
/// # Limits
///
/// The generated code names `Replicate`, `FieldSpec`, the four `quantize` functions and
/// `glam::Vec2` through the crate path (`::tickwire_shared` unless `crate = "..."` says
/// otherwise), and the primitive types through `::core::primitive`. It indexes `out` and
/// `fields` directly: their lengths are `FIELDS.len()` by the trait's contract.
#[proc_macro_derive(Replicate, attributes(replicate, quantize))]
pub fn derive_replicate(input: proc_macro::TokenStream) -> proc_macro::TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    match model::Component::parse(input) {
        Ok(component) => expand::expand(&component).into(),
        Err(error) => error.to_compile_error().into(),
    }
}
