//! Tag in the browser: arrows or WASD run; runners are circles, "it" is red. The view of the
//! tutorial in `docs/EXTENDING.md`; in a real tree this file is
//! `client-web/src/games/tag/mod.rs` and `TagGame` comes from `tickwire_shared::games::tag`.

use glam::Vec2;
use tickwire_client_web::games::{Controls, Frame, GameView};
use tickwire_client_web::names::Names;
use tickwire_client_web::render;
use tickwire_shared::NetId;
use tickwire_shared::registry::ReplicationRegistry;
use tickwire_shared::snapshot::{EntityView, ReplicatedState};
use web_sys::CanvasRenderingContext2d;

use super::tag::{HALF, It, TagEvent, TagGame, TagInput};

// ANCHOR: view
/// Tag's [`GameView`].
pub struct TagView;

impl GameView for TagView {
    type Game = TagGame;

    const HELP: &'static str = "WASD / arrows run · touch someone to pass it on · Enter chats";

    fn new(_tick_rate: u16) -> TagView {
        TagView
    }

    fn is_game_key(code: &str) -> bool {
        matches!(code, "KeyW" | "KeyA" | "KeyS" | "KeyD") || code.starts_with("Arrow")
    }

    fn input(&mut self, c: &Controls, _own_at: Option<Vec2>) -> TagInput {
        let x = c.axis(&["KeyD", "ArrowRight"], &["KeyA", "ArrowLeft"]);
        let y = c.axis(&["KeyW", "ArrowUp"], &["KeyS", "ArrowDown"]);
        let q = tickwire_shared::quantize::axis;
        TagInput { run: [q(x), q(y)] }
    }

    fn draw(&mut self, ctx: &CanvasRenderingContext2d, f: &Frame<'_>) {
        render::clear(ctx, f.camera, "#10141c");
        render::world_rect(ctx, f.camera, Vec2::ZERO, HALF, "#1d2b22", Some(("#4c6b57", 3.0)));
        let (_, state) = f.latest;
        let own = f.own.zip(f.own_position);
        for &(id, at) in f.interpolated.iter().chain(own.iter()) {
            let it = state.get(id).and_then(|e| f.registry.get::<It>(e)).is_some_and(|i| i.0);
            ctx.set_fill_style_str(if it { "#ff4d4d" } else { "#5a9dff" });
            render::circle(ctx, f.camera.to_screen(at), f.camera.len(14.0));
            ctx.fill();
            let name = f.names.or_else(id, |id| format!("runner {}", id.0));
            render::label(ctx, f.camera.to_screen(at), f.camera.len(14.0) + 4.0, &name);
        }
    }

    fn describe(&mut self, event: &TagEvent, names: &Names, _own: Option<NetId>) -> Option<String> {
        let TagEvent::Tagged { from, to } = event;
        let name = |id: &NetId| names.or_else(*id, |id| format!("runner {}", id.0));
        Some(format!("{} tagged {}", name(from), name(to)))
    }

    fn scoreboard(
        &self,
        registry: &ReplicationRegistry,
        state: &ReplicatedState,
        names: &Names,
        _own: Option<NetId>,
    ) -> String {
        let it = state.iter().find(|e| registry.get::<It>(*e).is_some_and(|i| i.0));
        match it {
            Some(e) => format!("it: {}", names.or_else(e.id, |id| format!("runner {}", id.0))),
            None => "nobody is it".into(),
        }
    }

    fn kind(&self, registry: &ReplicationRegistry, entity: EntityView<'_>) -> &'static str {
        if registry.get::<It>(entity).is_some_and(|i| i.0) { "It" } else { "Runner" }
    }

    fn score(&self, registry: &ReplicationRegistry, e: EntityView<'_>) -> Vec<(&'static str, f64)> {
        vec![("it", f64::from(u8::from(registry.get::<It>(e).is_some_and(|i| i.0))))]
    }
}
// ANCHOR_END: view
