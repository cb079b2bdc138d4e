//! `tickwire-shared`: the sans-IO core of Tickwire, compiled natively and to `wasm32`.
//!
//! It owns the wire protocol and its codec, quantization, the snapshot and delta format, the
//! replication registry and (later) the game rules and the client-side netcode. Everything here
//! is a pure function of its inputs: time and bytes are passed in.
//!
//! **Architecture invariant:** this crate depends on no async runtime, opens no sockets, spawns
//! no threads and reads no clocks. That is what lets the server, the bots, the tests and the
//! browser run the very same code.

pub mod bits;
pub mod client;
pub mod codec;
pub mod game;
pub mod ids;
pub mod join;
pub mod protocol;
pub mod quantize;
pub mod registry;
pub mod rng;
pub mod snapshot;
pub mod tick;

pub use ids::{ClientId, NetId};
pub use tick::Tick;
