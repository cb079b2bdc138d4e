//! `tickwire-server`: the authoritative game server. It owns rooms and the simulation threads
//! that tick them, per-client replication state, sessions over WebSocket and over QUIC
//! (WebTransport), HTTP, auth, config.
//!
//! **Architecture invariant:** the simulation lives in `tickwire-shared`; this crate drives it
//! and moves bytes. Tick threads never await the network: sessions (tokio tasks) and rooms
//! (tasks of the fixed simulation pool) meet only in bounded channels and per-client outboxes.

pub mod auth;
pub mod bots;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod devstate;
pub mod h3;
pub mod handoff;
pub mod http;
pub mod link;
pub mod matchrun;
pub mod messaging;
pub mod metrics;
pub mod outbox;
pub mod quic;
pub mod quic_rt;
pub mod recording;
pub mod room;
pub mod rooms;
pub mod server;
pub mod session;
pub mod sim_pool;
pub mod state;
pub mod tls;
pub mod ws;
pub mod wt_client;
