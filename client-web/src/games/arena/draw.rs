//! Canvas drawing of an arena frame.

use glam::Vec2;
use tickwire_shared::NetId;
use tickwire_shared::games::arena::{
    Arena, Kind, Launched, PICKUP_RADIUS, PLAYER_RADIUS, PROJECTILE_RADIUS, projectile_position,
};
use tickwire_shared::tick::Tick;
use web_sys::CanvasRenderingContext2d;

use super::{aim_at, aim_of, health_fraction, name_of};
use crate::games::Frame;
use crate::render::{self, Camera, circle};

/// Spacing of the floor grid, in world units; it makes motion visible away from obstacles.
const GRID_UNITS: f32 = 100.0;

/// One entity as drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Sprite {
    id: NetId,
    kind: Kind,
    position: Vec2,
    /// Facing, radians.
    aim: f32,
    /// Health in `0..=1` (combatants).
    health: Option<f32>,
}

/// Draws the whole frame: the floor and boxes, pickups, combatants, projectiles, and the own
/// player on top.
pub(super) fn frame(ctx: &CanvasRenderingContext2d, f: &Frame<'_>, arena: &Arena) {
    let cam = f.camera;
    draw_arena(ctx, cam, arena);
    let (latest, state) = f.latest;
    let reg = f.registry;
    let sprite = |id: NetId, position: Vec2| {
        let e = state.get(id)?;
        Some(Sprite {
            id,
            kind: reg.get::<Kind>(e).unwrap_or_default(),
            position,
            aim: aim_of(reg, e),
            health: health_fraction(reg, e),
        })
    };
    let mut sprites = Vec::with_capacity(f.interpolated.len());
    for &(id, position) in f.interpolated {
        let Some(mut s) = sprite(id, position) else { continue };
        // A projectile's replicated position is its launch point: it is drawn where its
        // straight flight has taken it by render time, and not yet when render time is before
        // its launch.
        if s.kind == Kind::Projectile
            && let Some(launched) = state.get(id).and_then(|e| reg.get::<Launched>(e))
        {
            let Some((tick, frac)) = f.render_at else { continue };
            let launch = latest.0.wrapping_sub(launched.ticks_until(latest));
            let elapsed = tick.diff(Tick(launch)) as f32 + frac;
            if elapsed < 0.0 {
                continue;
            }
            s.position = projectile_position(s.position, s.aim, elapsed * f.tick_secs);
        }
        sprites.push(s);
    }
    sprites.sort_by_key(|s| match s.kind {
        Kind::Pickup => 0,
        Kind::Npc | Kind::Player => 1,
        Kind::Projectile => 2,
    });
    for s in &sprites {
        draw_sprite(ctx, cam, s, false, f);
    }
    if let (Some(id), Some(at)) = (f.own, f.own_position)
        && let Some(mut own) = sprite(id, at)
    {
        // The own barrel follows the mouse at once, before the server confirms the aim.
        own.aim = aim_at(f.controls, at);
        draw_sprite(ctx, cam, &own, true, f);
    }
}

/// Draws the floor, the arena's bounds and obstacles.
fn draw_arena(ctx: &CanvasRenderingContext2d, cam: &Camera, arena: &Arena) {
    render::clear(ctx, cam, "#10141c");
    let he = arena.half_extents;
    render::world_rect(ctx, cam, Vec2::ZERO, he, "#1a2130", None);
    render::world_grid(ctx, cam, he, GRID_UNITS, "#232c3e");
    let (x0, y0) = cam.to_screen(Vec2::new(-he.x, he.y));
    ctx.set_stroke_style_str("#5b6b8c");
    ctx.set_line_width(3.0);
    ctx.stroke_rect(x0, y0, cam.len(he.x * 2.0), cam.len(he.y * 2.0));
    for o in &arena.obstacles {
        render::world_rect(ctx, cam, o.center, o.half_extents, "#3a4560", Some(("#56648a", 2.0)));
    }
}

/// Draws one entity; `own` marks the player's own.
fn draw_sprite(ctx: &CanvasRenderingContext2d, cam: &Camera, s: &Sprite, own: bool, f: &Frame<'_>) {
    let at = cam.to_screen(s.position);
    match s.kind {
        Kind::Projectile => {
            ctx.set_fill_style_str("#ffd24a");
            circle(ctx, at, cam.len(PROJECTILE_RADIUS).max(2.0));
            ctx.fill();
        }
        Kind::Pickup => {
            let r = cam.len(PICKUP_RADIUS).max(4.0);
            ctx.set_fill_style_str("#1f6f43");
            circle(ctx, at, r);
            ctx.fill();
            ctx.set_stroke_style_str("#7dffb0");
            ctx.set_line_width(2.0);
            ctx.stroke();
            ctx.begin_path();
            ctx.move_to(at.0 - r * 0.5, at.1);
            ctx.line_to(at.0 + r * 0.5, at.1);
            ctx.move_to(at.0, at.1 - r * 0.5);
            ctx.line_to(at.0, at.1 + r * 0.5);
            ctx.stroke();
        }
        Kind::Player | Kind::Npc => {
            let r = cam.len(PLAYER_RADIUS);
            let dead = s.health.is_some_and(|h| h <= 0.0);
            let (fill, ring) = match (own, s.kind) {
                (true, _) => ("#2ad4ff", "#e8fbff"),
                (false, Kind::Player) => ("#5a7dff", "#c9d4ff"),
                _ => ("#ff7a45", "#ffd0bd"),
            };
            ctx.set_global_alpha(if dead { 0.3 } else { 1.0 });
            // Aim: a barrel from the centre.
            let dir = Vec2::new(s.aim.cos(), s.aim.sin());
            let tip = cam.to_screen(s.position + dir * PLAYER_RADIUS * 1.7);
            ctx.set_stroke_style_str(ring);
            ctx.set_line_width((r * 0.35).max(2.0));
            ctx.begin_path();
            ctx.move_to(at.0, at.1);
            ctx.line_to(tip.0, tip.1);
            ctx.stroke();
            ctx.set_fill_style_str(fill);
            circle(ctx, at, r);
            ctx.fill();
            ctx.set_line_width(2.0);
            ctx.stroke();
            // Name above, health bar above the name line.
            let name = name_of(f.names, s.id, Some(s.kind));
            let label = if own { format!("{name} (you)") } else { name };
            render::label(ctx, at, r + 8.0, &label);
            if let Some(h) = s.health {
                render::health_bar(ctx, at, r + 7.0, r * 2.2, h);
            }
            ctx.set_global_alpha(1.0);
        }
    }
}
