//! Soccer in the browser: WASD or arrows run, Shift sprints, Space (or the primary mouse
//! button) held charges a kick that goes off on release; the whole pitch with its lines and
//! goals, the players in their team's colours with their facing and stamina, the ball, the
//! score.

mod draw;

use glam::Vec2;
use tickwire_shared::NetId;
use tickwire_shared::games::soccer::{
    Goals, MatchScore, Role, SoccerControl, SoccerEvent, SoccerGame, SoccerInput, Team, heading,
    snap_angle,
};
use tickwire_shared::registry::ReplicationRegistry;
use tickwire_shared::snapshot::{EntityView, ReplicatedState};
use tickwire_shared::tick::Tick;
use web_sys::CanvasRenderingContext2d;

use super::{Controls, Frame, GameView};
use crate::names::Names;
use crate::render::Camera;

/// Run up (+y): WASD for the left hand, arrows for those who prefer them.
const UP: &[&str] = &["KeyW", "ArrowUp"];
/// Run down (-y).
const DOWN: &[&str] = &["KeyS", "ArrowDown"];
/// Run left (-x).
const LEFT: &[&str] = &["KeyA", "ArrowLeft"];
/// Run right (+x).
const RIGHT: &[&str] = &["KeyD", "ArrowRight"];
/// Sprint: either Shift, under the little finger next to WASD.
const SPRINT: &[&str] = &["ShiftLeft", "ShiftRight"];
/// Charge and release a kick: the biggest key, under the thumb (the mouse button works too).
const KICK: &[&str] = &["Space"];

/// Holding the kick this long (seconds) charges it fully: long enough to choose between a pass
/// and a shot, short enough not to miss the moment.
pub const CHARGE_SECS: f32 = 0.6;

/// Power of a tap of the kick key (of 255): a short pass that still clears a defender's reach.
pub const TAP_POWER: u8 = 40;

/// Scoreboard lines at most (after the score line): the page's corner stays a corner.
const SCOREBOARD_LINES: usize = 12;

/// Soccer's [`GameView`].
#[derive(Debug)]
pub struct SoccerView {
    /// Seconds the kick has been held (`None`: not held).
    charge: Option<f32>,
    /// Seconds per tick (the kick charge is counted in ticks of input).
    tick_secs: f32,
    /// The own facing as the prediction has it while running (`None`: standing, so the
    /// replicated one is current).
    facing: Option<f32>,
    /// The score last drawn, and the tick its last change was seen at (the goal banner).
    seen_score: Option<MatchScore>,
    goal_seen: Option<(Tick, Team)>,
}

/// The name shown for a player.
fn name_of(names: &Names, id: NetId, role: Option<Role>) -> String {
    names.or_else(id, |id| match role {
        Some(Role::Npc) | None => format!("bot {}", id.0),
        Some(_) => format!("player {}", id.0),
    })
}

/// The kick power of a charge held `secs` seconds: [`TAP_POWER`] for a tap, 255 at
/// [`CHARGE_SECS`] and beyond.
#[must_use]
pub fn kick_power(secs: f32) -> u8 {
    let t = if secs.is_nan() { 0.0 } else { (secs / CHARGE_SECS).clamp(0.0, 1.0) };
    (f32::from(TAP_POWER) + (255.0 - f32::from(TAP_POWER)) * t).round() as u8
}

impl SoccerView {
    /// How full the kick charge is, `0..=1` (`None`: not charging).
    fn charge_fraction(&self) -> Option<f32> {
        self.charge.map(|c| (c / CHARGE_SECS).clamp(0.0, 1.0))
    }

    /// The match score in a state, if its entity is there.
    fn match_score(registry: &ReplicationRegistry, state: &ReplicatedState) -> Option<MatchScore> {
        state.iter().find_map(|e| registry.get::<MatchScore>(e))
    }
}

impl GameView for SoccerView {
    type Game = SoccerGame;

    const HELP: &'static str = "WASD / arrows run · Shift sprints · hold Space (or click) to \
                                charge a kick, release to kick · Enter chats";

    /// The pitch (600) and its surroundings across the shorter side.
    const VIEW_UNITS: f64 = 720.0;

    fn new(tick_rate: u16) -> SoccerView {
        SoccerView {
            charge: None,
            tick_secs: 1.0 / f32::from(tick_rate.max(1)),
            facing: None,
            seen_score: None,
            goal_seen: None,
        }
    }

    fn is_game_key(code: &str) -> bool {
        [UP, DOWN, LEFT, RIGHT, SPRINT, KICK].iter().any(|keys| keys.contains(&code))
    }

    fn input(&mut self, controls: &Controls, _own_at: Option<Vec2>) -> SoccerInput {
        let run = Vec2::new(controls.axis(RIGHT, LEFT), controls.axis(UP, DOWN));
        let held = controls.any(KICK) || controls.primary;
        let mut kick = 0;
        self.charge = match (held, self.charge) {
            (true, None) => Some(0.0),
            (true, Some(c)) => Some((c + self.tick_secs).min(CHARGE_SECS)),
            (false, Some(c)) => {
                kick = kick_power(c);
                None
            }
            (false, None) => None,
        };
        let input = SoccerInput::new(run, kick, controls.any(SPRINT));
        // The facing the prediction steps to (the same computation as the rules').
        let run = SoccerControl::from_frame(&input).run;
        self.facing = (run != Vec2::ZERO).then(|| snap_angle(heading(run)));
        input
    }

    /// The whole pitch when it fits the canvas, else following the own player.
    fn camera(&self, own: Option<Vec2>, size: (f64, f64)) -> Camera {
        draw::camera(size, own)
    }

    fn draw(&mut self, ctx: &CanvasRenderingContext2d, frame: &Frame<'_>) {
        let (tick, state) = frame.latest;
        let score = Self::match_score(frame.registry, state);
        if let (Some(before), Some(now)) = (self.seen_score, score) {
            if now.red > before.red {
                self.goal_seen = Some((tick, Team::Red));
            } else if now.blue > before.blue {
                self.goal_seen = Some((tick, Team::Blue));
            }
        }
        if score.is_some() {
            self.seen_score = score;
        }
        let banner = self
            .goal_seen
            .filter(|(at, _)| (tick.diff(*at) as f32) * self.tick_secs < draw::GOAL_BANNER_SECS);
        draw::frame(
            ctx,
            frame,
            &draw::Overlay {
                score: score.unwrap_or_default(),
                charge: self.charge_fraction(),
                own_facing: self.facing,
                goal: banner.map(|(_, team)| team),
            },
        );
    }

    fn describe(
        &mut self,
        event: &SoccerEvent,
        names: &Names,
        own: Option<NetId>,
    ) -> Option<String> {
        match *event {
            SoccerEvent::Goal { team, scorer: Some(id) } => {
                let who = if Some(id) == own {
                    format!("{} (you)", name_of(names, id, None))
                } else {
                    name_of(names, id, None)
                };
                Some(format!("GOAL! {} — {who}", team.name()))
            }
            SoccerEvent::Goal { team, scorer: None } => {
                Some(format!("GOAL! {} — own goal", team.name()))
            }
            SoccerEvent::Kickoff => None,
        }
    }

    fn scoreboard(
        &self,
        registry: &ReplicationRegistry,
        state: &ReplicatedState,
        names: &Names,
        own: Option<NetId>,
    ) -> String {
        let score = Self::match_score(registry, state).unwrap_or_default();
        let mut board = format!("Red {} : {} Blue", score.red, score.blue);
        let mut lines: Vec<(Team, NetId, Role, u16)> = state
            .iter()
            .filter_map(|e| {
                let role = registry.get::<Role>(e)?;
                let team = registry.get::<Team>(e)?;
                let goals = registry.get::<Goals>(e).unwrap_or_default();
                role.is_player().then_some((team, e.id, role, goals.0))
            })
            .collect();
        lines.sort_by_key(|&(team, id, _, goals)| (team, std::cmp::Reverse(goals), id));
        for (team, id, role, goals) in lines.into_iter().take(SCOREBOARD_LINES) {
            let mut name = name_of(names, id, Some(role));
            if Some(id) == own {
                name.push_str(" ★");
            }
            let name: String = name.chars().take(14).collect();
            let side = if team == Team::Red { "R" } else { "B" };
            board.push_str(&format!("\n{side} {name:<14} {goals:>2}"));
        }
        board
    }

    fn kind(&self, registry: &ReplicationRegistry, entity: EntityView<'_>) -> &'static str {
        match registry.get::<Role>(entity) {
            Some(Role::Player) => "Player",
            Some(Role::Npc) => "Npc",
            Some(Role::Ball) => "Ball",
            None if registry.get::<MatchScore>(entity).is_some() => "Match",
            None => "Unknown",
        }
    }

    fn score(
        &self,
        registry: &ReplicationRegistry,
        entity: EntityView<'_>,
    ) -> Vec<(&'static str, f64)> {
        let goals = registry.get::<Goals>(entity).unwrap_or_default();
        vec![("goals", f64::from(goals.0))]
    }
}

#[cfg(test)]
mod tests {
    use bevy_ecs::world::World;
    use tickwire_shared::game::registry;
    use tickwire_shared::games::soccer::{Facing, Position, Stamina};

    use super::*;

    fn held(keys: &[&str]) -> Controls {
        let mut c = Controls::default();
        for k in keys {
            c.keys.insert((*k).into());
        }
        c
    }

    #[test]
    fn keys_run_and_sprint() {
        let mut v = SoccerView::new(60);
        let input = v.input(&held(&["KeyD", "ArrowUp", "ShiftLeft"]), None);
        assert_eq!(input, SoccerInput::new(Vec2::new(1.0, 1.0), 0, true));
        assert_eq!(v.facing, Some(snap_angle(std::f32::consts::FRAC_PI_4)));
        let input = v.input(&held(&["KeyA", "KeyD"]), None);
        assert_eq!(input, SoccerInput::default(), "opposite keys cancel");
        assert_eq!(v.facing, None, "standing: the server's facing is current");
        assert!(SoccerView::is_game_key("ShiftRight") && SoccerView::is_game_key("Space"));
        assert!(!SoccerView::is_game_key("KeyQ"));
    }

    #[test]
    fn a_held_kick_charges_and_goes_off_once_on_release() {
        let mut v = SoccerView::new(60);
        let space = held(&["Space"]);
        let idle = Controls::default();
        // A tap: one tick held, then released.
        assert_eq!(v.input(&space, None).kick, 0);
        assert_eq!(v.charge_fraction(), Some(0.0));
        assert_eq!(v.input(&idle, None).kick, TAP_POWER);
        assert_eq!(v.input(&idle, None).kick, 0, "a kick is one tick");
        // Held for 0.3 s: about half power; for a second: full.
        for _ in 0..19 {
            assert_eq!(v.input(&space, None).kick, 0);
        }
        let half = v.input(&idle, None).kick;
        assert!((140..=155).contains(&half), "{half}");
        for _ in 0..60 {
            v.input(&space, None);
        }
        assert_eq!(v.charge_fraction(), Some(1.0));
        assert_eq!(v.input(&idle, None).kick, 255);
        // The mouse button charges too, while running.
        let mut click = held(&["KeyW"]);
        click.primary = true;
        assert_eq!(v.input(&click, None).kick, 0);
        click.primary = false;
        let input = v.input(&click, None);
        assert_eq!((input.kick, input.run), (TAP_POWER, [0, 127]));
        assert_eq!(kick_power(-1.0), TAP_POWER);
        assert_eq!(kick_power(f32::NAN), TAP_POWER);
    }

    #[test]
    fn the_scoreboard_shows_the_score_then_the_players() {
        let r = registry::<SoccerGame>();
        let mut world = World::new();
        world.spawn((NetId(1), MatchScore { red: 2, blue: 1 }));
        world.spawn((NetId(2), Role::Ball, Position(Vec2::ZERO)));
        let player = |id, role, team, goals| {
            (
                NetId(id),
                role,
                team,
                Position(Vec2::new(10.0, 0.0)),
                Facing(0.0),
                Stamina(100.0),
                Goals(goals),
            )
        };
        world.spawn(player(3, Role::Npc, Team::Red, 0));
        world.spawn(player(4, Role::Npc, Team::Blue, 1));
        world.spawn(player(5, Role::Player, Team::Red, 2));
        let state = r.capture(&mut world);
        let mut names = Names::default();
        names.insert(NetId(5), "alice".into());
        let v = SoccerView::new(60);
        let board = v.scoreboard(&r, &state, &names, Some(NetId(5)));
        assert_eq!(
            board,
            "Red 2 : 1 Blue\nR alice ★         2\nR bot 3           0\nB bot 4           1"
        );
        assert_eq!(v.kind(&r, state.get(NetId(1)).unwrap()), "Match");
        assert_eq!(v.kind(&r, state.get(NetId(2)).unwrap()), "Ball");
        assert_eq!(v.kind(&r, state.get(NetId(3)).unwrap()), "Npc");
        assert_eq!(v.kind(&r, state.get(NetId(5)).unwrap()), "Player");
        assert_eq!(v.score(&r, state.get(NetId(5)).unwrap()), [("goals", 2.0)]);
        assert_eq!(SoccerView::match_score(&r, &state), Some(MatchScore { red: 2, blue: 1 }));
    }

    #[test]
    fn goals_make_feed_lines() {
        let mut v = SoccerView::new(60);
        let mut names = Names::default();
        names.insert(NetId(5), "alice".into());
        let goal = |team, scorer| SoccerEvent::Goal { team, scorer };
        assert_eq!(
            v.describe(&goal(Team::Red, Some(NetId(5))), &names, None).as_deref(),
            Some("GOAL! Red — alice")
        );
        assert_eq!(
            v.describe(&goal(Team::Red, Some(NetId(5))), &names, Some(NetId(5))).as_deref(),
            Some("GOAL! Red — alice (you)")
        );
        assert_eq!(
            v.describe(&goal(Team::Blue, Some(NetId(4))), &names, None).as_deref(),
            Some("GOAL! Blue — bot 4")
        );
        assert_eq!(
            v.describe(&goal(Team::Blue, None), &names, None).as_deref(),
            Some("GOAL! Blue — own goal")
        );
        assert_eq!(v.describe(&SoccerEvent::Kickoff, &names, None), None);
    }
}
