//! `tickwire-client-web`: the browser client (wasm-bindgen), built on `tickwire-shared`.
//!
//! The page (`client-web/www/index.html`) only loads the module; everything else is here. The
//! **shell** (`app`: the WebSocket, the frame loop, the HUD, chat, reconnection with backoff
//! ([`conn`]) and the `window.tickwire.state()` test hook) names no game: the server's
//! `Welcome` says which game the room plays, and the game's [`games::GameView`] (its input
//! mapping and drawing, in `games/<name>/`) runs inside a generic [`session::GameSession`]: the
//! sans-IO [`tickwire_shared::client::Client`], prediction of the own player with the game's
//! own rules ([`predict`]) and interpolation of everyone else.
//!
//! Everything that is not browser glue (`predict`, `conn`, `names`, the camera, the views'
//! input and scoreboards) is plain Rust, tested natively with
//! `cargo test -p tickwire-client-web`.
//!
//! **Architecture invariant:** no tokio here; the shared crate's sans-IO client logic is driven
//! by browser events. Nothing outside `games/` names a game.

// Game views name this crate `tickwire_client_web::…` (the tutorial's code compiles both here
// and outside), which must resolve inside the crate too.
#[allow(
    unused_extern_crates,
    reason = "for views written with tickwire_client_web:: paths, like the tutorial's"
)]
extern crate self as tickwire_client_web;

mod app;
pub mod conn;
pub mod games;
pub mod names;
pub mod predict;
pub mod render;
pub mod session;
pub mod transport;

use wasm_bindgen::prelude::*;

/// Runs when the module is instantiated: starts the client on the page.
///
/// # Errors
///
/// When the page lacks an element the client needs (`#game`, `#status`, …) or a browser API.
#[wasm_bindgen(start)]
pub fn main() -> Result<(), JsValue> {
    app::start()
}
