//! Names of players, learned from the room's `Joined` events and chat lines, kept across
//! reconnects.

use std::collections::HashMap;

use tickwire_shared::NetId;

/// Player names by entity.
#[derive(Clone, Debug, Default)]
pub struct Names(HashMap<NetId, String>);

impl Names {
    /// Records a player's name.
    pub fn insert(&mut self, id: NetId, name: String) {
        self.0.insert(id, name);
    }

    /// Forgets a player.
    pub fn remove(&mut self, id: NetId) {
        self.0.remove(&id);
    }

    /// The name of `id`, if known.
    #[must_use]
    pub fn get(&self, id: NetId) -> Option<&str> {
        self.0.get(&id).map(String::as_str)
    }

    /// The name of `id`, or `fallback` made from it.
    #[must_use]
    pub fn or_else(&self, id: NetId, fallback: impl FnOnce(NetId) -> String) -> String {
        self.get(id).map_or_else(|| fallback(id), str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_fall_back() {
        let mut n = Names::default();
        n.insert(NetId(3), "ann".into());
        assert_eq!(n.or_else(NetId(3), |id| format!("#{}", id.0)), "ann");
        n.remove(NetId(3));
        assert_eq!(n.or_else(NetId(3), |id| format!("#{}", id.0)), "#3");
    }
}
