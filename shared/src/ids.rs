//! Identifier newtypes shared by the server and its clients.

use bevy_ecs::component::Component;
use serde::{Deserialize, Serialize};

/// One connected client (a session), unique within a server process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ClientId(pub u32);

/// A replicated entity's network id: stable for the entity's life, unique within a room, never
/// reused while a client could still hold a baseline that names it.
///
/// It is also the ECS component that marks an entity as replicated.
#[derive(
    Clone, Copy, PartialEq, Eq, Hash, Debug, PartialOrd, Ord, Serialize, Deserialize, Component,
)]
pub struct NetId(pub u32);

impl std::fmt::Display for ClientId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "c{}", self.0)
    }
}

impl std::fmt::Display for NetId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "e{}", self.0)
    }
}
