//! `tickwire-shared`: the sans-IO core of Tickwire, compiled natively and to `wasm32`.
//!
//! It owns the **engine core**: the wire protocol and its codec, quantization, the snapshot and
//! delta format, the replication registry, the sans-IO room core ([`room`]), the sans-IO client
//! with prediction and interpolation ([`client`]), the link conditioner the bots and the test
//! harness share ([`conditioner`]) and the game plug-in interface ([`game`]);
//! and the **games** ([`games`]), each reaching the engine only through [`game::Game`].
//! Everything here is a pure function of its inputs: time and bytes are passed in.
//!
//! **Architecture invariant:** this crate depends on no async runtime, opens no sockets, spawns
//! no threads and reads no clocks. That is what lets the server, the bots, the tests and the
//! browser run the very same code.

// The derive's generated code names `::tickwire_shared`, which must resolve inside this crate
// too (its games use the derive).
extern crate self as tickwire_shared;

pub mod bits;
pub mod client;
pub mod codec;
pub mod conditioner;
pub mod fnv;
pub mod game;
pub mod games;
pub mod ids;
pub mod join;
pub mod motion;
pub mod persist;
pub mod protocol;
pub mod quantize;
pub mod registry;
pub mod replay;
pub mod rewind;
pub mod rng;
pub mod room;
pub mod schema;
pub mod snapshot;
pub mod state;
pub mod stream_frame;
pub mod tick;

pub use glam;

pub use ids::{ClientId, NetId};
pub use tick::Tick;
