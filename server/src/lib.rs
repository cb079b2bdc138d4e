//! `tickwire-server`: the authoritative game server. It owns rooms and their tick threads,
//! per-client replication state, sessions over WebSocket (and later QUIC), HTTP, auth, config,
//! and the headless bot client and match runner.
//!
//! **Architecture invariant:** the simulation lives in `tickwire-shared`; this crate drives it
//! and moves bytes. It knows nothing of the browser.
