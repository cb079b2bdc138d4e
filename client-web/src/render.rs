//! Canvas 2D drawing of the arena, the entities and their labels. World units are +y up with
//! the origin at the arena's centre; the camera centres the own player.

use glam::Vec2;
use tickwire_shared::game::{Arena, Kind, PICKUP_RADIUS, PLAYER_RADIUS, PROJECTILE_RADIUS};
use web_sys::CanvasRenderingContext2d;

use crate::world::{Names, Sprite};

/// World units visible across the shorter side of the canvas: 700 shows most of the 800-unit
/// high arena around the player, with room to see a shot coming.
pub const VIEW_UNITS: f64 = 700.0;

/// Spacing of the floor grid, in world units; it makes motion visible away from obstacles.
const GRID_UNITS: f32 = 100.0;

/// Maps world coordinates to canvas pixels.
#[derive(Clone, Copy, Debug)]
pub struct Camera {
    /// The world point at the canvas centre.
    pub center: Vec2,
    /// Pixels per world unit.
    pub scale: f64,
    /// Canvas size in pixels.
    pub size: (f64, f64),
}

impl Camera {
    /// A camera centred on `center` for a canvas of `width` × `height` pixels.
    #[must_use]
    pub fn new(center: Vec2, width: f64, height: f64) -> Camera {
        Camera { center, scale: width.min(height).max(1.0) / VIEW_UNITS, size: (width, height) }
    }

    /// Canvas pixels of a world point.
    #[must_use]
    pub fn to_screen(&self, p: Vec2) -> (f64, f64) {
        (
            self.size.0 / 2.0 + f64::from(p.x - self.center.x) * self.scale,
            self.size.1 / 2.0 - f64::from(p.y - self.center.y) * self.scale,
        )
    }

    /// The world point under canvas pixel `(x, y)`.
    #[must_use]
    pub fn to_world(&self, x: f64, y: f64) -> Vec2 {
        Vec2::new(
            ((x - self.size.0 / 2.0) / self.scale) as f32 + self.center.x,
            (-(y - self.size.1 / 2.0) / self.scale) as f32 + self.center.y,
        )
    }

    fn len(&self, units: f32) -> f64 {
        f64::from(units) * self.scale
    }
}

fn circle(ctx: &CanvasRenderingContext2d, (x, y): (f64, f64), r: f64) {
    ctx.begin_path();
    let _ = ctx.arc(x, y, r.max(0.5), 0.0, std::f64::consts::TAU);
}

/// Draws the floor, the arena's bounds and obstacles.
pub fn draw_arena(ctx: &CanvasRenderingContext2d, cam: &Camera, arena: &Arena) {
    ctx.set_fill_style_str("#10141c");
    ctx.fill_rect(0.0, 0.0, cam.size.0, cam.size.1);
    let he = arena.half_extents;
    let (x0, y0) = cam.to_screen(Vec2::new(-he.x, he.y));
    let (w, h) = (cam.len(he.x * 2.0), cam.len(he.y * 2.0));
    ctx.set_fill_style_str("#1a2130");
    ctx.fill_rect(x0, y0, w, h);
    ctx.set_stroke_style_str("#232c3e");
    ctx.set_line_width(1.0);
    ctx.begin_path();
    let mut x = -he.x + GRID_UNITS;
    while x < he.x {
        let (sx, _) = cam.to_screen(Vec2::new(x, 0.0));
        ctx.move_to(sx, y0);
        ctx.line_to(sx, y0 + h);
        x += GRID_UNITS;
    }
    let mut y = -he.y + GRID_UNITS;
    while y < he.y {
        let (_, sy) = cam.to_screen(Vec2::new(0.0, y));
        ctx.move_to(x0, sy);
        ctx.line_to(x0 + w, sy);
        y += GRID_UNITS;
    }
    ctx.stroke();
    ctx.set_stroke_style_str("#5b6b8c");
    ctx.set_line_width(3.0);
    ctx.stroke_rect(x0, y0, w, h);
    ctx.set_fill_style_str("#3a4560");
    ctx.set_stroke_style_str("#56648a");
    ctx.set_line_width(2.0);
    for o in &arena.obstacles {
        let (ox, oy) = cam.to_screen(o.center + Vec2::new(-o.half_extents.x, o.half_extents.y));
        let (ow, oh) = (cam.len(o.half_extents.x * 2.0), cam.len(o.half_extents.y * 2.0));
        ctx.fill_rect(ox, oy, ow, oh);
        ctx.stroke_rect(ox, oy, ow, oh);
    }
}

/// Draws one entity; `own` marks the player's own.
pub fn draw_sprite(
    ctx: &CanvasRenderingContext2d,
    cam: &Camera,
    s: &Sprite,
    own: bool,
    names: &Names,
) {
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
            ctx.set_fill_style_str("#e6ebf5");
            ctx.set_font("12px sans-serif");
            ctx.set_text_align("center");
            ctx.set_text_baseline("bottom");
            let name = names.of(s.id, s.kind);
            let label = if own { format!("{name} (you)") } else { name };
            let _ = ctx.fill_text(&label, at.0, at.1 - r - 8.0);
            if let Some(h) = s.health {
                let (bw, bh) = (r * 2.2, 4.0);
                let (bx, by) = (at.0 - bw / 2.0, at.1 - r - 7.0);
                ctx.set_fill_style_str("#3b0d12");
                ctx.fill_rect(bx, by, bw, bh);
                ctx.set_fill_style_str(if h > 0.5 {
                    "#4cd964"
                } else if h > 0.25 {
                    "#ffcc00"
                } else {
                    "#ff3b30"
                });
                ctx.fill_rect(bx, by, bw * f64::from(h), bh);
            }
            ctx.set_global_alpha(1.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_camera_round_trips_and_puts_up_on_top() {
        let cam = Camera::new(Vec2::new(100.0, -50.0), 1400.0, 700.0);
        assert_eq!(cam.to_screen(Vec2::new(100.0, -50.0)), (700.0, 350.0));
        let (_, above) = cam.to_screen(Vec2::new(100.0, 0.0));
        assert!(above < 350.0, "+y is up on screen");
        let w = cam.to_world(123.0, 456.0);
        let (x, y) = cam.to_screen(w);
        assert!((x - 123.0).abs() < 1e-3 && (y - 456.0).abs() < 1e-3);
    }
}
