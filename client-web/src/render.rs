//! The camera and small canvas helpers every game's drawing uses. World units are +y up; the
//! camera centres the own player.

use glam::Vec2;
use web_sys::CanvasRenderingContext2d;

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
    /// A camera centred on `center` for a canvas of `width` × `height` pixels showing
    /// `view_units` world units across its shorter side.
    #[must_use]
    pub fn new(center: Vec2, width: f64, height: f64, view_units: f64) -> Camera {
        Camera {
            center,
            scale: width.min(height).max(1.0) / view_units.max(1.0),
            size: (width, height),
        }
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

    /// Canvas pixels of a world length.
    #[must_use]
    pub fn len(&self, units: f32) -> f64 {
        f64::from(units) * self.scale
    }
}

/// Starts a path with a circle at canvas point `(x, y)` of radius `r` pixels (fill or stroke
/// it next).
pub fn circle(ctx: &CanvasRenderingContext2d, (x, y): (f64, f64), r: f64) {
    ctx.begin_path();
    let _ = ctx.arc(x, y, r.max(0.5), 0.0, std::f64::consts::TAU);
}

/// Fills the canvas with `color`.
pub fn clear(ctx: &CanvasRenderingContext2d, cam: &Camera, color: &str) {
    ctx.set_fill_style_str(color);
    ctx.fill_rect(0.0, 0.0, cam.size.0, cam.size.1);
}

/// Draws a rectangle of the world (`center` ± `half_extents`), filled and outlined.
pub fn world_rect(
    ctx: &CanvasRenderingContext2d,
    cam: &Camera,
    center: Vec2,
    half_extents: Vec2,
    fill: &str,
    stroke: Option<(&str, f64)>,
) {
    let (x, y) = cam.to_screen(center + Vec2::new(-half_extents.x, half_extents.y));
    let (w, h) = (cam.len(half_extents.x * 2.0), cam.len(half_extents.y * 2.0));
    ctx.set_fill_style_str(fill);
    ctx.fill_rect(x, y, w, h);
    if let Some((color, width)) = stroke {
        ctx.set_stroke_style_str(color);
        ctx.set_line_width(width);
        ctx.stroke_rect(x, y, w, h);
    }
}

/// Draws grid lines every `spacing` world units inside the world rectangle `±half_extents`.
pub fn world_grid(
    ctx: &CanvasRenderingContext2d,
    cam: &Camera,
    half_extents: Vec2,
    spacing: f32,
    color: &str,
) {
    let (x0, y0) = cam.to_screen(Vec2::new(-half_extents.x, half_extents.y));
    let (w, h) = (cam.len(half_extents.x * 2.0), cam.len(half_extents.y * 2.0));
    ctx.set_stroke_style_str(color);
    ctx.set_line_width(1.0);
    ctx.begin_path();
    let mut x = -half_extents.x + spacing;
    while x < half_extents.x {
        let (sx, _) = cam.to_screen(Vec2::new(x, 0.0));
        ctx.move_to(sx, y0);
        ctx.line_to(sx, y0 + h);
        x += spacing;
    }
    let mut y = -half_extents.y + spacing;
    while y < half_extents.y {
        let (_, sy) = cam.to_screen(Vec2::new(0.0, y));
        ctx.move_to(x0, sy);
        ctx.line_to(x0 + w, sy);
        y += spacing;
    }
    ctx.stroke();
}

/// Writes `text` centred above canvas point `at` (its baseline `above` pixels higher).
pub fn label(ctx: &CanvasRenderingContext2d, at: (f64, f64), above: f64, text: &str) {
    ctx.set_fill_style_str("#e6ebf5");
    ctx.set_font("12px sans-serif");
    ctx.set_text_align("center");
    ctx.set_text_baseline("bottom");
    let _ = ctx.fill_text(text, at.0, at.1 - above);
}

/// A bar of `fraction` (0..=1) of `width` pixels centred above `at`: green, yellow or red.
pub fn health_bar(
    ctx: &CanvasRenderingContext2d,
    at: (f64, f64),
    above: f64,
    width: f64,
    fraction: f32,
) {
    let (bx, by) = (at.0 - width / 2.0, at.1 - above);
    ctx.set_fill_style_str("#3b0d12");
    ctx.fill_rect(bx, by, width, 4.0);
    ctx.set_fill_style_str(if fraction > 0.5 {
        "#4cd964"
    } else if fraction > 0.25 {
        "#ffcc00"
    } else {
        "#ff3b30"
    });
    ctx.fill_rect(bx, by, width * f64::from(fraction.clamp(0.0, 1.0)), 4.0);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_camera_round_trips_and_puts_up_on_top() {
        let cam = Camera::new(Vec2::new(100.0, -50.0), 1400.0, 700.0, 700.0);
        assert_eq!(cam.to_screen(Vec2::new(100.0, -50.0)), (700.0, 350.0));
        let (_, above) = cam.to_screen(Vec2::new(100.0, 0.0));
        assert!(above < 350.0, "+y is up on screen");
        let w = cam.to_world(123.0, 456.0);
        let (x, y) = cam.to_screen(w);
        assert!((x - 123.0).abs() < 1e-3 && (y - 456.0).abs() < 1e-3);
    }
}
