//! Bad `#[replicate(...)]` attributes.

use tickwire_derive::Replicate;

#[derive(Replicate)]
#[replicate(skip)]
struct UnknownKey(u8);

#[derive(Replicate)]
#[replicate(name = "A", name = "B")]
struct TwiceName(u8);

#[derive(Replicate)]
#[replicate(name = "")]
struct EmptyName(u8);

#[derive(Replicate)]
#[replicate(crate = "not a path")]
struct BadCrate(u8);

#[derive(Replicate)]
#[replicate(name = Foo)]
struct NotAString(u8);

fn main() {}
