//! `tickwire-client-web`: the browser client (wasm-bindgen), built on `tickwire-shared`.
//!
//! The page (`client-web/www/index.html`) only loads the module; everything else is here:
//! the WebSocket driver of the sans-IO [`tickwire_shared::client::Client`], input sampled at the
//! server's tick rate, prediction of the own player with the shared movement rules
//! ([`predict`]), interpolation of everyone else, the canvas renderer ([`render`]), the HUD,
//! chat, reconnection with backoff ([`conn`]) and the `window.tickwire.state()` test hook.
//!
//! Everything that is not browser glue (`predict`, `conn`, `world`, the camera) is plain Rust,
//! tested natively with `cargo test -p tickwire-client-web`.
//!
//! **Architecture invariant:** no tokio here; the shared crate's sans-IO client logic is driven
//! by browser events.

mod app;
pub mod conn;
pub mod predict;
pub mod render;
pub mod world;

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
