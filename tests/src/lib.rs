//! Shared helpers and fixtures for Tickwire's integration tests (the tests live in `tests/tests/`).

pub mod fixtures;
pub mod harness;
pub mod links;
pub mod net;
pub mod redis;
