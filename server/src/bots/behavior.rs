//! Scripted bot behaviours. A [`Brain`] turns what the bot's client last decoded into the next
//! [`InputFrame`]; it sees only what a browser player sees (the newest snapshot and its own
//! entity id). Each bot's randomness comes from its own seeded [`BotRng`], so a run is
//! reproducible for the same snapshots.

use glam::Vec2;
use serde::{Deserialize, Serialize};
use tickwire_shared::client::Client;
use tickwire_shared::game::{Health, Kind, Position};
use tickwire_shared::protocol::{Buttons, InputFrame};
use tickwire_shared::quantize;

/// Shortest time a wandering bot keeps a heading, in seconds.
pub const WANDER_MIN_SECS: f32 = 1.0;

/// Longest time a wandering bot keeps a heading, in seconds.
pub const WANDER_MAX_SECS: f32 = 3.0;

/// A fighting bot fires when its target is closer than this (world units): a bit less than a
/// projectile's reach, so most shots can land.
pub const FIGHT_FIRE_RANGE: f32 = 400.0;

/// A fighting bot closes in until this distance, then circles its target (world units).
pub const FIGHT_HOLD_DISTANCE: f32 = 160.0;

/// What the bots do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Behavior {
    /// Send neutral input every tick (measures pure replication load).
    Idle,
    /// Walk in a random direction, changed every 1–3 s.
    Wander,
    /// Chase and shoot the nearest other combatant in the newest snapshot.
    Fight,
}

impl Behavior {
    /// The flag value (`idle`, `wander`, `fight`).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Behavior::Idle => "idle",
            Behavior::Wander => "wander",
            Behavior::Fight => "fight",
        }
    }
}

/// One bot's randomness: the shared deterministic PRNG.
pub use tickwire_shared::rng::Rng as BotRng;

/// One bot's decision maker.
#[derive(Clone, Debug)]
pub struct Brain {
    behavior: Behavior,
    rng: BotRng,
    heading: f32,
    ticks_left: u32,
    /// +1 or -1: which way a fighting bot circles.
    orbit: f32,
}

impl Brain {
    /// A brain for `behavior` seeded with `seed` (the run's seed plus the bot's index).
    #[must_use]
    pub fn new(behavior: Behavior, seed: u64) -> Brain {
        let mut rng = BotRng::new(seed);
        let orbit = if rng.next_u64() & 1 == 0 { 1.0 } else { -1.0 };
        Brain { behavior, rng, heading: 0.0, ticks_left: 0, orbit }
    }

    /// The input for the next tick at `tick_rate`, from what `client` last decoded.
    pub fn think(&mut self, tick_rate: u16, client: &Client) -> InputFrame {
        match self.behavior {
            Behavior::Idle => InputFrame::default(),
            Behavior::Wander => self.wander(tick_rate),
            Behavior::Fight => match nearest_target(client) {
                Some((own, target)) => self.fight(own, target),
                None => self.wander(tick_rate),
            },
        }
    }

    fn wander(&mut self, tick_rate: u16) -> InputFrame {
        if self.ticks_left == 0 {
            self.heading = self.rng.unit() * std::f32::consts::TAU;
            let secs = WANDER_MIN_SECS + self.rng.unit() * (WANDER_MAX_SECS - WANDER_MIN_SECS);
            self.ticks_left = (secs * f32::from(tick_rate.max(1))).round().max(1.0) as u32;
        }
        self.ticks_left -= 1;
        let dir = Vec2::from_angle(self.heading);
        frame(dir, self.heading, Buttons::default())
    }

    fn fight(&mut self, own: Vec2, target: Vec2) -> InputFrame {
        let to = target - own;
        let dist = to.length();
        let dir = to.normalize_or_zero();
        let movement = if dist > FIGHT_HOLD_DISTANCE { dir } else { dir.perp() * self.orbit };
        let aim = to.y.atan2(to.x);
        let buttons = if dist < FIGHT_FIRE_RANGE { Buttons::FIRE } else { Buttons::default() };
        frame(movement, aim, buttons)
    }
}

fn frame(movement: Vec2, aim: f32, buttons: Buttons) -> InputFrame {
    InputFrame {
        movement: [quantize::axis(movement.x), quantize::axis(movement.y)],
        aim: quantize::angle(aim),
        buttons,
    }
}

/// The own position and the nearest living other combatant's, from the newest snapshot.
fn nearest_target(client: &Client) -> Option<(Vec2, Vec2)> {
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

    #[test]
    fn same_seed_same_wander() {
        let client = Client::new(tickwire_shared::game::registry(), Default::default());
        let run = |seed| {
            let mut brain = Brain::new(Behavior::Wander, seed);
            (0..600).map(|_| brain.think(60, &client)).collect::<Vec<_>>()
        };
        assert_eq!(run(3), run(3));
        assert_ne!(run(3), run(4));
        // Headings change between one and three seconds apart.
        let frames = run(5);
        let changes = frames.windows(2).filter(|w| w[0] != w[1]).count();
        assert!((3..=10).contains(&changes), "{changes} heading changes in 10 s");
    }

    #[test]
    fn idle_is_neutral() {
        let client = Client::new(tickwire_shared::game::registry(), Default::default());
        let mut brain = Brain::new(Behavior::Idle, 1);
        assert_eq!(brain.think(60, &client), InputFrame::default());
    }
}
