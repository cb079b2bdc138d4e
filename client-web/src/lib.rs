//! `tickwire-client-web`: the browser client (wasm-bindgen), built on `tickwire-shared`.
//! Browser transport, input capture, canvas rendering, HUD and reconnection arrive with the
//! client issue.
//!
//! **Architecture invariant:** no tokio here; the shared crate's sans-IO client logic is driven
//! by browser events.
