//! The arena's bot policy: what `tickwire bots` players do. A bot sees only what a browser
//! player sees (its client's newest snapshot and its own entity id); its randomness comes from
//! its own seeded [`Rng`], so a run is reproducible for the same snapshots.

use glam::Vec2;

use super::ArenaGame;
use super::components::{Health, Kind, Position};
use super::input::{ArenaInput, Buttons};
use crate::client::Client;
use crate::game::BotPolicy;
use crate::rng::Rng;

/// Shortest time a wandering bot keeps a heading, in seconds.
pub const WANDER_MIN_SECS: f32 = 1.0;

/// Longest time a wandering bot keeps a heading, in seconds.
pub const WANDER_MAX_SECS: f32 = 3.0;

/// A fighting bot fires when its target is closer than this (world units): a bit less than a
/// projectile's reach, so most shots can land.
pub const FIGHT_FIRE_RANGE: f32 = 400.0;

/// A fighting bot closes in until this distance, then circles its target (world units).
pub const FIGHT_HOLD_DISTANCE: f32 = 160.0;

/// What an arena bot does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behavior {
    /// Walk in a random direction, changed every 1–3 s.
    Wander,
    /// Chase and shoot the nearest other combatant in the newest snapshot.
    Fight,
    /// Send neutral input every tick (measures pure replication load).
    Idle,
}

/// A headless arena player: `wander` (the default), `fight` or `idle`.
#[derive(Clone, Debug)]
pub struct ArenaBot {
    behavior: Behavior,
    rng: Rng,
    heading: f32,
    ticks_left: u32,
    /// +1 or -1: which way a fighting bot circles.
    orbit: f32,
}

impl BotPolicy<ArenaGame> for ArenaBot {
    const BEHAVIORS: &'static [&'static str] = &["wander", "fight", "idle"];

    fn new(behavior: &str, seed: u64) -> Option<ArenaBot> {
        let behavior = match behavior {
            "wander" => Behavior::Wander,
            "fight" => Behavior::Fight,
            "idle" => Behavior::Idle,
            _ => return None,
        };
        let mut rng = Rng::new(seed);
        let orbit = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
        Some(ArenaBot { behavior, rng, heading: 0.0, ticks_left: 0, orbit })
    }

    fn think(&mut self, client: &Client<ArenaGame>, tick_rate: u16) -> ArenaInput {
        match self.behavior {
            Behavior::Idle => ArenaInput::default(),
            Behavior::Wander => self.wander(tick_rate),
            Behavior::Fight => match nearest_target(client) {
                Some((own, target)) => self.fight(own, target),
                None => self.wander(tick_rate),
            },
        }
    }
}

impl ArenaBot {
    fn wander(&mut self, tick_rate: u16) -> ArenaInput {
        if self.ticks_left == 0 {
            self.heading = self.rng.unit() * std::f32::consts::TAU;
            let secs = WANDER_MIN_SECS + self.rng.unit() * (WANDER_MAX_SECS - WANDER_MIN_SECS);
            self.ticks_left = (secs * f32::from(tick_rate.max(1))).round().max(1.0) as u32;
        }
        self.ticks_left -= 1;
        let dir = Vec2::from_angle(self.heading);
        ArenaInput::new(dir, self.heading, Buttons::default())
    }

    fn fight(&mut self, own: Vec2, target: Vec2) -> ArenaInput {
        let to = target - own;
        let dist = to.length();
        let dir = to.normalize_or_zero();
        let movement = if dist > FIGHT_HOLD_DISTANCE { dir } else { dir.perp() * self.orbit };
        let aim = to.y.atan2(to.x);
        let buttons = if dist < FIGHT_FIRE_RANGE { Buttons::FIRE } else { Buttons::default() };
        ArenaInput::new(movement, aim, buttons)
    }
}

/// The own position and the nearest living other combatant's, from the newest snapshot.
fn nearest_target(client: &Client<ArenaGame>) -> Option<(Vec2, Vec2)> {
    let (_, state) = client.latest()?;
    let own_id = client.own_entity()?;
    let registry = client.registry();
    let own = registry.get::<Position>(state.get(own_id)?)?.0;
    state
        .iter()
        .filter(|e| e.id != own_id)
        .filter(|e| registry.get::<Kind>(*e).is_some_and(Kind::is_combatant))
        .filter(|e| registry.get::<Health>(*e).is_none_or(|h| h.0 > 0.0))
        .filter_map(|e| registry.get::<Position>(e).map(|p| p.0))
        .min_by(|a, b| a.distance_squared(own).total_cmp(&b.distance_squared(own)))
        .map(|target| (own, target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientConfig;

    fn bot(behavior: &str, seed: u64) -> ArenaBot {
        ArenaBot::new(behavior, seed).expect("a known behaviour")
    }

    #[test]
    fn same_seed_same_wander() {
        let client = Client::<ArenaGame>::new(ClientConfig::default());
        let run = |seed| {
            let mut b = bot("wander", seed);
            (0..600).map(|_| b.think(&client, 60)).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        // Headings change between one and three seconds apart.
        let frames = run(5);
        let changes = frames.windows(2).filter(|w| w[0] != w[1]).count();
        assert!((3..=10).contains(&changes), "{changes} heading changes in 10 s");
    }

    #[test]
    fn idle_is_neutral_and_unknown_behaviours_are_refused() {
        let client = Client::<ArenaGame>::new(ClientConfig::default());
        assert_eq!(bot("idle", 1).think(&client, 60), ArenaInput::default());
        assert!(ArenaBot::new("dance", 1).is_none());
        for name in ArenaBot::BEHAVIORS {
            assert!(ArenaBot::new(name, 1).is_some(), "{name}");
        }
    }
}
