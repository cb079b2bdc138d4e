//! What the client knows of the world in drawable form: the replicated components of each
//! entity, read from the newest decoded state, and the names learned from game events.

use std::collections::HashMap;

use glam::Vec2;
use tickwire_shared::NetId;
use tickwire_shared::game::{Aim, Health, Kind, Launched, MAX_HEALTH, Position, Score};
use tickwire_shared::registry::ReplicationRegistry;
use tickwire_shared::snapshot::ReplicatedState;

/// One entity as drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sprite {
    /// Its id.
    pub id: NetId,
    /// What it is.
    pub kind: Kind,
    /// Where to draw it (interpolated or predicted).
    pub position: Vec2,
    /// Facing, radians (0 is +x, counter-clockwise).
    pub aim: f32,
    /// Health in `0..=1` of [`MAX_HEALTH`] (combatants).
    pub health: Option<f32>,
}

/// The replicated components of the entity `id` in `state`, as a [`Sprite`] at its snapshot
/// position.
#[must_use]
pub fn sprite(
    registry: &ReplicationRegistry,
    state: &ReplicatedState,
    id: NetId,
) -> Option<Sprite> {
    let view = state.get(id)?;
    let position = registry.get::<Position>(view)?.0;
    Some(Sprite {
        id,
        kind: registry.get::<Kind>(view).unwrap_or_default(),
        position,
        aim: registry.get::<Aim>(view).map_or(0.0, |a| a.0),
        health: registry.get::<Health>(view).map(|h| (h.0 / MAX_HEALTH).clamp(0.0, 1.0)),
    })
}

/// The launch tick of projectile `id` (low bits), if it is one.
#[must_use]
pub fn launched(
    registry: &ReplicationRegistry,
    state: &ReplicatedState,
    id: NetId,
) -> Option<Launched> {
    registry.get::<Launched>(state.get(id)?)
}

/// The score of `id`, if it has one.
#[must_use]
pub fn score(registry: &ReplicationRegistry, state: &ReplicatedState, id: NetId) -> Option<Score> {
    registry.get::<Score>(state.get(id)?)
}

/// One scoreboard line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScoreLine {
    /// The combatant.
    pub id: NetId,
    /// Its kind (player or NPC).
    pub kind: Kind,
    /// Its tally.
    pub score: Score,
}

/// Every combatant's score, best first (most kills, then fewest deaths, then id).
#[must_use]
pub fn scoreboard(registry: &ReplicationRegistry, state: &ReplicatedState) -> Vec<ScoreLine> {
    let mut lines: Vec<ScoreLine> = state
        .iter()
        .filter_map(|view| {
            let kind = registry.get::<Kind>(view)?;
            let score = registry.get::<Score>(view)?;
            kind.is_combatant().then_some(ScoreLine { id: view.id, kind, score })
        })
        .collect();
    lines.sort_by_key(|l| (std::cmp::Reverse(l.score.kills), l.score.deaths, l.id));
    lines
}

/// Names of entities: players from `GameEvent::Joined`, the rest by kind and id.
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

    /// The name to show for `id` of `kind`.
    #[must_use]
    pub fn of(&self, id: NetId, kind: Kind) -> String {
        match self.0.get(&id) {
            Some(name) => name.clone(),
            None if kind == Kind::Npc => format!("bot {}", id.0),
            None => format!("player {}", id.0),
        }
    }

    /// The name to show for `id` when its kind is unknown.
    #[must_use]
    pub fn of_any(&self, id: NetId) -> String {
        self.0.get(&id).cloned().unwrap_or_else(|| format!("#{}", id.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bevy_ecs::world::World;
    use tickwire_shared::game::registry;

    #[test]
    fn reads_sprites_and_the_scoreboard() {
        let r = registry();
        let mut world = World::new();
        world.spawn((
            NetId(3),
            Kind::Npc,
            Position(Vec2::new(10.0, -20.0)),
            Health(50.0),
            Score { kills: 1, deaths: 0 },
        ));
        world.spawn((
            NetId(5),
            Kind::Player,
            Position(Vec2::new(1.0, 2.0)),
            Health(0.0),
            Score { kills: 2, deaths: 1 },
        ));
        world.spawn((NetId(7), Kind::Pickup, Position(Vec2::ZERO)));
        let state = r.capture(&mut world);
        let s = sprite(&r, &state, NetId(3)).unwrap();
        assert_eq!((s.kind, s.position, s.health), (Kind::Npc, Vec2::new(10.0, -20.0), Some(0.5)));
        assert_eq!(sprite(&r, &state, NetId(5)).unwrap().health, Some(0.0), "health 0 is dead");
        let board = scoreboard(&r, &state);
        assert_eq!(board.iter().map(|l| l.id).collect::<Vec<_>>(), [NetId(5), NetId(3)]);
        assert_eq!(Names::default().of(NetId(3), Kind::Npc), "bot 3");
    }
}
