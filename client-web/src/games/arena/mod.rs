//! The arena in the browser: WASD or arrows move, the mouse aims, click fires, space dashes; the
//! floor, the boxes, the combatants with their names and health, pickups and projectiles
//! (drawn where their straight flight has taken them).

mod draw;

use glam::Vec2;
use tickwire_shared::NetId;
use tickwire_shared::games::arena::{
    Aim, ArenaEvent, ArenaGame, ArenaInput, Buttons, Health, Kind, MAX_HEALTH, Score,
};
use tickwire_shared::registry::ReplicationRegistry;
use tickwire_shared::snapshot::{EntityView, ReplicatedState};
use web_sys::CanvasRenderingContext2d;

use super::{Controls, Frame, GameView};
use crate::names::Names;

const UP: &[&str] = &["KeyW", "ArrowUp"];
const DOWN: &[&str] = &["KeyS", "ArrowDown"];
const LEFT: &[&str] = &["KeyA", "ArrowLeft"];
const RIGHT: &[&str] = &["KeyD", "ArrowRight"];
const DASH: &[&str] = &["Space"];

/// The arena's [`GameView`].
#[derive(Debug)]
pub struct ArenaView {
    arena: tickwire_shared::games::arena::Arena,
}

/// The name shown for an arena entity.
fn name_of(names: &Names, id: NetId, kind: Option<Kind>) -> String {
    names.or_else(id, |id| match kind {
        Some(Kind::Npc) => format!("bot {}", id.0),
        Some(_) => format!("player {}", id.0),
        None => format!("#{}", id.0),
    })
}

/// The aim from `own_at` towards the pointer, in radians (0 when they coincide).
fn aim_at(controls: &Controls, own_at: Vec2) -> f32 {
    let dir = controls.pointer - own_at;
    if dir.length_squared() > 0.0 { dir.y.atan2(dir.x) } else { 0.0 }
}

impl GameView for ArenaView {
    type Game = ArenaGame;

    const HELP: &'static str =
        "WASD / arrows move · mouse aims · click fires · space dashes · Enter chats";

    fn new(_tick_rate: u16) -> ArenaView {
        ArenaView { arena: tickwire_shared::games::arena::Arena::standard() }
    }

    fn is_game_key(code: &str) -> bool {
        [UP, DOWN, LEFT, RIGHT, DASH].iter().any(|keys| keys.contains(&code))
    }

    fn input(&mut self, controls: &Controls, own_at: Option<Vec2>) -> ArenaInput {
        let movement = Vec2::new(controls.axis(RIGHT, LEFT), controls.axis(UP, DOWN));
        let aim = own_at.map_or(0.0, |at| aim_at(controls, at));
        let mut buttons = Buttons::default();
        if controls.primary {
            buttons = buttons.with(Buttons::FIRE);
        }
        if controls.any(DASH) {
            buttons = buttons.with(Buttons::DASH);
        }
        ArenaInput::new(movement, aim, buttons)
    }

    fn draw(&mut self, ctx: &CanvasRenderingContext2d, frame: &Frame<'_>) {
        draw::frame(ctx, frame, &self.arena);
    }

    fn describe(
        &mut self,
        event: &ArenaEvent,
        names: &Names,
        own: Option<NetId>,
    ) -> Option<String> {
        let name =
            |id: NetId| if Some(id) == own { "you".to_owned() } else { name_of(names, id, None) };
        match *event {
            ArenaEvent::Killed { killer: Some(k), victim } if k != victim => {
                Some(format!("{} killed {}", name(k), name(victim)))
            }
            ArenaEvent::Killed { victim, .. } => Some(format!("{} died", name(victim))),
            ArenaEvent::Respawned { .. } => None,
        }
    }

    fn scoreboard(
        &self,
        registry: &ReplicationRegistry,
        state: &ReplicatedState,
        names: &Names,
        own: Option<NetId>,
    ) -> String {
        let mut lines: Vec<(NetId, Kind, Score)> = state
            .iter()
            .filter_map(|e| {
                let kind = registry.get::<Kind>(e)?;
                let score = registry.get::<Score>(e)?;
                kind.is_combatant().then_some((e.id, kind, score))
            })
            .collect();
        lines.sort_by_key(|(id, _, s)| (std::cmp::Reverse(s.kills), s.deaths, *id));
        let mut board = String::from("score        K   D");
        for (id, kind, score) in lines.iter().take(10) {
            let mut name = name_of(names, *id, Some(*kind));
            if Some(*id) == own {
                name.push_str(" ★");
            }
            let name: String = name.chars().take(12).collect();
            board.push_str(&format!("\n{name:<12} {:>2}  {:>2}", score.kills, score.deaths));
        }
        board
    }

    fn kind(&self, registry: &ReplicationRegistry, entity: EntityView<'_>) -> &'static str {
        match registry.get::<Kind>(entity).unwrap_or_default() {
            Kind::Player => "Player",
            Kind::Npc => "Npc",
            Kind::Projectile => "Projectile",
            Kind::Pickup => "Pickup",
        }
    }

    fn score(
        &self,
        registry: &ReplicationRegistry,
        entity: EntityView<'_>,
    ) -> Vec<(&'static str, f64)> {
        let s = registry.get::<Score>(entity).unwrap_or_default();
        vec![("kills", f64::from(s.kills)), ("deaths", f64::from(s.deaths))]
    }
}

/// Health as a fraction of [`MAX_HEALTH`], for combatants.
fn health_fraction(registry: &ReplicationRegistry, entity: EntityView<'_>) -> Option<f32> {
    registry.get::<Health>(entity).map(|h| (h.0 / MAX_HEALTH).clamp(0.0, 1.0))
}

/// The replicated aim, radians.
fn aim_of(registry: &ReplicationRegistry, entity: EntityView<'_>) -> f32 {
    registry.get::<Aim>(entity).map_or(0.0, |a| a.0)
}

#[cfg(test)]
mod tests {
    use bevy_ecs::world::World;
    use tickwire_shared::game::registry;
    use tickwire_shared::games::arena::Position;

    use super::*;

    #[test]
    fn the_scoreboard_ranks_combatants_and_marks_the_own() {
        let r = registry::<ArenaGame>();
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
            Position(Vec2::ZERO),
            Health(0.0),
            Score { kills: 2, deaths: 1 },
        ));
        world.spawn((NetId(7), Kind::Pickup, Position(Vec2::ZERO)));
        let state = r.capture(&mut world);
        let mut names = Names::default();
        names.insert(NetId(5), "ann".into());
        let board = ArenaView::new(60).scoreboard(&r, &state, &names, Some(NetId(5)));
        assert_eq!(board, "score        K   D\nann ★         2   1\nbot 3         1   0");
        let npc = state.get(NetId(3)).unwrap();
        assert_eq!(health_fraction(&r, npc), Some(0.5));
        assert_eq!(ArenaView::new(60).kind(&r, state.get(NetId(7)).unwrap()), "Pickup");
    }

    #[test]
    fn keys_become_input() {
        let mut c = Controls::default();
        c.keys.insert("KeyD".into());
        c.keys.insert("Space".into());
        c.primary = true;
        c.pointer = Vec2::new(0.0, 10.0);
        let input = ArenaView::new(60).input(&c, Some(Vec2::ZERO));
        assert_eq!(input, ArenaInput::new(Vec2::X, std::f32::consts::FRAC_PI_2, Buttons(3)));
        assert!(ArenaView::is_game_key("ArrowUp") && !ArenaView::is_game_key("KeyQ"));
    }
}
