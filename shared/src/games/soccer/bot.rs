//! Soccer's bot policy: what `tickwire bots --game soccer` players do. A bot sees only what a
//! browser player sees (its client's newest snapshot and its own entity id) and plays with the
//! NPCs' [`ai::plan`]; its randomness (where it aims) comes from its own seeded [`Rng`].

use glam::Vec2;

use super::SoccerGame;
use super::ai::{self, AIM_MARGIN, Situation, chasers};
use super::components::{Facing, Position, Role, Stamina, Team};
use super::input::SoccerInput;
use super::npc::HURRY_ONE_IN;
use super::pitch::{GOAL_HALF_WIDTH, formation_spot};
use crate::client::Client;
use crate::game::BotPolicy;
use crate::ids::NetId;
use crate::rng::Rng;

/// What a soccer bot does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behavior {
    /// Play like an NPC: chase the ball when nearest of its team, else hold a spot.
    Play,
    /// Send neutral input every tick (measures pure replication load).
    Idle,
}

/// A headless soccer player: `play` (the default) or `idle`.
#[derive(Clone, Debug)]
pub struct SoccerBot {
    behavior: Behavior,
    rng: Rng,
    aim_y: f32,
}

impl BotPolicy<SoccerGame> for SoccerBot {
    const BEHAVIORS: &'static [&'static str] = &["play", "idle"];

    fn new(behavior: &str, seed: u64) -> Option<SoccerBot> {
        let behavior = match behavior {
            "play" => Behavior::Play,
            "idle" => Behavior::Idle,
            _ => return None,
        };
        let mut bot = SoccerBot { behavior, rng: Rng::new(seed), aim_y: 0.0 };
        bot.reaim();
        Some(bot)
    }

    fn think(&mut self, client: &Client<SoccerGame>, _tick_rate: u16) -> SoccerInput {
        if self.behavior == Behavior::Idle {
            return SoccerInput::default();
        }
        let Some(mut situation) = situation(client) else { return SoccerInput::default() };
        situation.aim_y = self.aim_y;
        situation.hurry = self.rng.next_u64().is_multiple_of(u64::from(HURRY_ONE_IN));
        let plan = ai::plan(&situation);
        if plan.kick > 0 {
            self.reaim();
        }
        SoccerInput::new(plan.run, plan.kick, plan.sprint)
    }
}

impl SoccerBot {
    /// A new random aim across the goal mouth.
    fn reaim(&mut self) {
        self.aim_y = self.rng.signed() * (GOAL_HALF_WIDTH - AIM_MARGIN);
    }
}

/// What the bot sees in its client's newest snapshot: itself, the ball, and whether it is the
/// nearest of its team to the ball. Its spot is the formation spot of its rank by id among
/// the team-mates it sees (the server's slots are not replicated).
fn situation(client: &Client<SoccerGame>) -> Option<Situation> {
    let (_, state) = client.latest()?;
    let own = client.own_entity()?;
    let registry = client.registry();
    let me = state.get(own)?;
    let team = registry.get::<Team>(me)?;
    let mut ball = None;
    let mut players: Vec<(NetId, Team, Vec2)> = Vec::new();
    for e in state.iter() {
        let (Some(role), Some(at)) = (registry.get::<Role>(e), registry.get::<Position>(e)) else {
            continue;
        };
        if role == Role::Ball {
            ball = Some(at.0);
        } else if let Some(t) = registry.get::<Team>(e) {
            players.push((e.id, t, at.0));
        }
    }
    let rank = players.iter().filter(|p| p.1 == team && p.0 < own).count();
    let chaser = ball.is_some_and(|b| chasers(&players, b)[team as usize] == Some(own));
    Some(Situation {
        me: registry.get::<Position>(me)?.0,
        facing: registry.get::<Facing>(me).map_or(team.forward_angle(), |f| f.0),
        stamina: registry.get::<Stamina>(me).map_or(0.0, |s| s.0),
        team,
        ball,
        chaser,
        spot: formation_spot(team, rank, false),
        aim_y: 0.0,
        hurry: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::ClientConfig;

    #[test]
    fn behaviours_are_known_and_idle_is_neutral() {
        let client = Client::<SoccerGame>::new(ClientConfig::default());
        for name in SoccerBot::BEHAVIORS {
            let mut bot = SoccerBot::new(name, 1).expect("a known behaviour");
            // Nothing decoded yet: nothing to do.
            assert_eq!(bot.think(&client, 60), SoccerInput::default());
        }
        assert!(SoccerBot::new("dance", 1).is_none());
        assert_eq!(SoccerBot::BEHAVIORS[0], "play", "the default plays");
        let a = SoccerBot::new("play", 4).unwrap().aim_y;
        assert_eq!(a, SoccerBot::new("play", 4).unwrap().aim_y);
        assert_ne!(a, SoccerBot::new("play", 5).unwrap().aim_y);
    }
}
