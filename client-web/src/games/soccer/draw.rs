//! Canvas drawing of a soccer frame: the whole pitch when the canvas is big enough (else a view
//! that follows the own player), its stripes and markings, the boards and goals, the players,
//! the ball, the kick charge, the score and the goal banner.

use std::f64::consts::{FRAC_PI_2, TAU};

use glam::Vec2;
use tickwire_shared::NetId;
use tickwire_shared::games::soccer::{
    BALL_RADIUS, CENTRE_CIRCLE_RADIUS, CORNER_CUT, Facing, GOAL_DEPTH, GOAL_HALF_WIDTH,
    HALF_LENGTH, HALF_WIDTH, MAX_STAMINA, MatchScore, PLAYER_RADIUS, Role, Stamina, Team,
};
use web_sys::CanvasRenderingContext2d;

use super::name_of;
use crate::games::Frame;
use crate::render::{self, Camera, circle};

/// How long the goal banner stays up, in seconds (the kick-off comes after 2 s).
pub(super) const GOAL_BANNER_SECS: f32 = 2.0;

/// World units shown beyond the goal lines on each side (the nets and the boards).
const MARGIN_X: f32 = 80.0;

/// World units shown beyond the touchlines on each side: room for the score above the pitch
/// and the page's panels in the corners.
const MARGIN_Y: f32 = 90.0;

/// Below this many pixels per unit the whole pitch is too small to play on: the view zooms in
/// and follows the own player instead.
const MIN_SCALE: f64 = 0.55;

/// Width of one mowing stripe, in world units: ten across the pitch.
const STRIPE_UNITS: f32 = 100.0;

/// The penalty area: depth from the goal line and half its width (drawn only).
const PENALTY_AREA: Vec2 = Vec2::new(140.0, 170.0);

/// The goal area: depth from the goal line and half its width (drawn only).
const GOAL_AREA: Vec2 = Vec2::new(50.0, 115.0);

/// The penalty spot's distance from the goal line (drawn only).
const PENALTY_SPOT: f32 = 100.0;

/// Spacing of the net's mesh, in world units.
const NET_MESH: f32 = 9.0;

/// Team colours: fill and the lighter ring.
fn team_colors(team: Team) -> (&'static str, &'static str) {
    match team {
        Team::Red => ("#e0413a", "#ffc9c4"),
        Team::Blue => ("#2f6fe0", "#c4d8ff"),
    }
}

/// What the view adds to the frame.
pub(super) struct Overlay {
    /// The match score.
    pub score: MatchScore,
    /// The own kick charge, `0..=1`, while held.
    pub charge: Option<f32>,
    /// The own facing while running (the prediction's), radians.
    pub own_facing: Option<f32>,
    /// The team that just scored, while the banner is up.
    pub goal: Option<Team>,
}

/// A player or the ball as drawn.
struct Sprite {
    id: NetId,
    role: Role,
    team: Team,
    position: Vec2,
    facing: f32,
    stamina: f32,
}

/// The camera: the whole pitch if it fits at [`MIN_SCALE`] or more, else following `own`
/// (kept from showing much beyond the pitch).
pub(super) fn camera(size: (f64, f64), own: Option<Vec2>) -> Camera {
    let (w, h) = size;
    let fit = (w / f64::from(2.0 * (HALF_LENGTH + MARGIN_X)))
        .min(h / f64::from(2.0 * (HALF_WIDTH + MARGIN_Y)));
    if fit >= MIN_SCALE {
        return Camera { center: Vec2::ZERO, scale: fit, size };
    }
    let half_view = Vec2::new((w / MIN_SCALE / 2.0) as f32, (h / MIN_SCALE / 2.0) as f32);
    let room =
        (Vec2::new(HALF_LENGTH + MARGIN_X, HALF_WIDTH + MARGIN_Y) - half_view).max(Vec2::ZERO);
    let center = own.unwrap_or_default().clamp(-room, room);
    Camera { center, scale: MIN_SCALE, size }
}

/// Draws the whole frame.
pub(super) fn frame(ctx: &CanvasRenderingContext2d, f: &Frame<'_>, overlay: &Overlay) {
    let cam = *f.camera;
    draw_pitch(ctx, &cam);
    let (_, state) = f.latest;
    let reg = f.registry;
    let sprite = |id: NetId, position: Vec2| {
        let e = state.get(id)?;
        let role = reg.get::<Role>(e)?;
        Some(Sprite {
            id,
            role,
            team: reg.get::<Team>(e).unwrap_or_default(),
            position,
            facing: reg.get::<Facing>(e).map_or(0.0, |a| a.0),
            stamina: reg.get::<Stamina>(e).map_or(MAX_STAMINA, |s| s.0),
        })
    };
    let mut sprites: Vec<Sprite> =
        f.interpolated.iter().filter_map(|&(id, at)| sprite(id, at)).collect();
    let own = match (f.own, f.own_position) {
        (Some(id), Some(at)) => sprite(id, at).map(|mut s| {
            if let Some(facing) = overlay.own_facing {
                s.facing = facing;
            }
            s
        }),
        _ => None,
    };
    // Players, then the own player, then the ball on top.
    sprites.sort_by_key(|s| (s.role == Role::Ball, s.id));
    let (balls, players): (Vec<Sprite>, Vec<Sprite>) =
        sprites.into_iter().partition(|s| s.role == Role::Ball);
    for s in players.iter().chain(own.as_ref()) {
        shadow(ctx, &cam, s.position, PLAYER_RADIUS);
    }
    for s in &players {
        draw_player(ctx, &cam, s, false, f);
    }
    if let Some(s) = &own {
        draw_player(ctx, &cam, s, true, f);
        if let Some(charge) = overlay.charge {
            draw_charge(ctx, &cam, s.position, charge);
        }
    }
    for b in &balls {
        draw_ball(ctx, &cam, b.position);
    }
    draw_score(ctx, &cam, overlay.score);
    if let Some(team) = overlay.goal {
        draw_goal_banner(ctx, &cam, team);
    }
}

/// The grass, its stripes, the markings, the boards and the goals.
fn draw_pitch(ctx: &CanvasRenderingContext2d, cam: &Camera) {
    render::clear(ctx, cam, "#0d2414");
    // The surround: darker grass up to the boards.
    let surround = Vec2::new(HALF_LENGTH + GOAL_DEPTH + 14.0, HALF_WIDTH + 22.0);
    render::world_rect(ctx, cam, Vec2::ZERO, surround, "#25692f", Some(("#0a1a0f", 6.0)));
    // Mowing stripes.
    let mut x = -HALF_LENGTH;
    let mut dark = false;
    while x < HALF_LENGTH {
        let w = STRIPE_UNITS.min(HALF_LENGTH - x);
        let color = if dark { "#2f8a3a" } else { "#36963f" };
        render::world_rect(
            ctx,
            cam,
            Vec2::new(x + w / 2.0, 0.0),
            Vec2::new(w / 2.0, HALF_WIDTH),
            color,
            None,
        );
        x += w;
        dark = !dark;
    }
    // Markings.
    ctx.set_stroke_style_str("rgba(255, 255, 255, 0.85)");
    ctx.set_line_width(cam.len(3.0).max(1.5));
    let (x0, y0) = cam.to_screen(Vec2::new(-HALF_LENGTH, HALF_WIDTH));
    ctx.stroke_rect(x0, y0, cam.len(2.0 * HALF_LENGTH), cam.len(2.0 * HALF_WIDTH));
    line(ctx, cam, Vec2::new(0.0, HALF_WIDTH), Vec2::new(0.0, -HALF_WIDTH));
    circle(ctx, cam.to_screen(Vec2::ZERO), cam.len(CENTRE_CIRCLE_RADIUS));
    ctx.stroke();
    ctx.set_fill_style_str("rgba(255, 255, 255, 0.9)");
    circle(ctx, cam.to_screen(Vec2::ZERO), cam.len(4.0).max(2.0));
    ctx.fill();
    for side in [-1.0f32, 1.0] {
        let goal_line = side * HALF_LENGTH;
        for (depth, half) in [(PENALTY_AREA.x, PENALTY_AREA.y), (GOAL_AREA.x, GOAL_AREA.y)] {
            let inner = goal_line - side * depth;
            line(ctx, cam, Vec2::new(goal_line, half), Vec2::new(inner, half));
            line(ctx, cam, Vec2::new(inner, half), Vec2::new(inner, -half));
            line(ctx, cam, Vec2::new(inner, -half), Vec2::new(goal_line, -half));
        }
        circle(
            ctx,
            cam.to_screen(Vec2::new(goal_line - side * PENALTY_SPOT, 0.0)),
            cam.len(3.0).max(1.5),
        );
        ctx.fill();
        // The arc at the edge of the penalty area.
        let (cx, cy) = cam.to_screen(Vec2::new(goal_line - side * PENALTY_SPOT, 0.0));
        let r = cam.len(CENTRE_CIRCLE_RADIUS * 0.75);
        let reach =
            f64::from((PENALTY_AREA.x - PENALTY_SPOT) / (CENTRE_CIRCLE_RADIUS * 0.75)).acos();
        let facing = if side > 0.0 { std::f64::consts::PI } else { 0.0 };
        ctx.begin_path();
        let _ = ctx.arc(cx, cy, r, facing - reach, facing + reach);
        ctx.stroke();
        draw_boards(ctx, cam, side);
        draw_goal(ctx, cam, side);
    }
}

/// The two cut corners of one end: dark boards the ball bounces off.
fn draw_boards(ctx: &CanvasRenderingContext2d, cam: &Camera, side: f32) {
    for up in [-1.0f32, 1.0] {
        let corner = Vec2::new(side * HALF_LENGTH, up * HALF_WIDTH);
        let a = cam.to_screen(corner - Vec2::new(side * CORNER_CUT, 0.0));
        let b = cam.to_screen(corner);
        let c = cam.to_screen(corner - Vec2::new(0.0, up * CORNER_CUT));
        ctx.begin_path();
        ctx.move_to(a.0, a.1);
        ctx.line_to(b.0, b.1);
        ctx.line_to(c.0, c.1);
        ctx.close_path();
        ctx.set_fill_style_str("rgba(10, 26, 15, 0.55)");
        ctx.fill();
        ctx.set_stroke_style_str("#d9e4dc");
        ctx.set_line_width(cam.len(3.0).max(1.5));
        ctx.begin_path();
        ctx.move_to(a.0, a.1);
        ctx.line_to(c.0, c.1);
        ctx.stroke();
    }
}

/// The goal at `side` (±1): the net, its mesh, the frame and the posts.
fn draw_goal(ctx: &CanvasRenderingContext2d, cam: &Camera, side: f32) {
    let centre = Vec2::new(side * (HALF_LENGTH + GOAL_DEPTH / 2.0), 0.0);
    let half = Vec2::new(GOAL_DEPTH / 2.0, GOAL_HALF_WIDTH);
    render::world_rect(ctx, cam, centre, half, "rgba(235, 240, 245, 0.22)", None);
    ctx.set_stroke_style_str("rgba(255, 255, 255, 0.35)");
    ctx.set_line_width(1.0);
    ctx.begin_path();
    let mut y = -GOAL_HALF_WIDTH + NET_MESH;
    while y < GOAL_HALF_WIDTH {
        let a = cam.to_screen(Vec2::new(side * HALF_LENGTH, y));
        let b = cam.to_screen(Vec2::new(side * (HALF_LENGTH + GOAL_DEPTH), y));
        ctx.move_to(a.0, a.1);
        ctx.line_to(b.0, b.1);
        y += NET_MESH;
    }
    let mut d = NET_MESH;
    while d < GOAL_DEPTH {
        let a = cam.to_screen(Vec2::new(side * (HALF_LENGTH + d), GOAL_HALF_WIDTH));
        let b = cam.to_screen(Vec2::new(side * (HALF_LENGTH + d), -GOAL_HALF_WIDTH));
        ctx.move_to(a.0, a.1);
        ctx.line_to(b.0, b.1);
        d += NET_MESH;
    }
    ctx.stroke();
    ctx.set_stroke_style_str("#f4f7fa");
    ctx.set_line_width(cam.len(4.0).max(2.0));
    let back = side * (HALF_LENGTH + GOAL_DEPTH);
    ctx.begin_path();
    let p = |x: f32, y: f32| cam.to_screen(Vec2::new(x, y));
    let (a, b, c, e) = (
        p(side * HALF_LENGTH, GOAL_HALF_WIDTH),
        p(back, GOAL_HALF_WIDTH),
        p(back, -GOAL_HALF_WIDTH),
        p(side * HALF_LENGTH, -GOAL_HALF_WIDTH),
    );
    ctx.move_to(a.0, a.1);
    ctx.line_to(b.0, b.1);
    ctx.line_to(c.0, c.1);
    ctx.line_to(e.0, e.1);
    ctx.stroke();
    ctx.set_fill_style_str("#ffffff");
    for y in [-GOAL_HALF_WIDTH, GOAL_HALF_WIDTH] {
        circle(ctx, p(side * HALF_LENGTH, y), cam.len(4.5).max(2.0));
        ctx.fill();
    }
}

/// A straight world line in the current stroke style.
fn line(ctx: &CanvasRenderingContext2d, cam: &Camera, a: Vec2, b: Vec2) {
    let (a, b) = (cam.to_screen(a), cam.to_screen(b));
    ctx.begin_path();
    ctx.move_to(a.0, a.1);
    ctx.line_to(b.0, b.1);
    ctx.stroke();
}

/// A soft shadow under something round of `radius` at `at`.
fn shadow(ctx: &CanvasRenderingContext2d, cam: &Camera, at: Vec2, radius: f32) {
    let (x, y) = cam.to_screen(at + Vec2::new(radius * 0.25, -radius * 0.35));
    let r = cam.len(radius);
    ctx.set_fill_style_str("rgba(0, 0, 0, 0.28)");
    ctx.begin_path();
    let _ = ctx.ellipse(x, y, r * 1.05, r * 0.8, 0.0, 0.0, TAU);
    ctx.fill();
}

/// Text centred above `at` with a dark outline, readable on the grass.
fn outlined_text(
    ctx: &CanvasRenderingContext2d,
    at: (f64, f64),
    text: &str,
    font: &str,
    fill: &str,
) {
    ctx.set_font(font);
    ctx.set_text_align("center");
    ctx.set_text_baseline("bottom");
    ctx.set_line_width(3.0);
    ctx.set_stroke_style_str("rgba(5, 20, 10, 0.85)");
    let _ = ctx.stroke_text(text, at.0, at.1);
    ctx.set_fill_style_str(fill);
    let _ = ctx.fill_text(text, at.0, at.1);
}

/// One player: its circle in team colours (the own one ringed in gold), its facing tick, its
/// name and its stamina bar.
fn draw_player(ctx: &CanvasRenderingContext2d, cam: &Camera, s: &Sprite, own: bool, f: &Frame<'_>) {
    let at = cam.to_screen(s.position);
    let r = cam.len(PLAYER_RADIUS);
    let (fill, ring) = team_colors(s.team);
    if own {
        // A halo under the own player.
        ctx.set_fill_style_str("rgba(255, 214, 74, 0.28)");
        circle(ctx, at, r * 1.75);
        ctx.fill();
    }
    ctx.set_fill_style_str(fill);
    circle(ctx, at, r);
    ctx.fill();
    ctx.set_stroke_style_str(if own { "#ffd64a" } else { ring });
    ctx.set_line_width(if own { 3.0 } else { 2.0 });
    ctx.stroke();
    // The facing: a tick from the rim outwards.
    let dir = Vec2::new(s.facing.cos(), s.facing.sin());
    let from = cam.to_screen(s.position + dir * (PLAYER_RADIUS * 0.35));
    let to = cam.to_screen(s.position + dir * (PLAYER_RADIUS + 7.0));
    ctx.set_stroke_style_str("#ffffff");
    ctx.set_line_width((r * 0.22).max(2.0));
    ctx.set_line_cap("round");
    ctx.begin_path();
    ctx.move_to(from.0, from.1);
    ctx.line_to(to.0, to.1);
    ctx.stroke();
    ctx.set_line_cap("butt");
    // The name above.
    let name = name_of(f.names, s.id, Some(s.role));
    let label = if own { format!("{name} (you)") } else { name };
    let (font, color) =
        if own { ("bold 13px sans-serif", "#ffe58a") } else { ("12px sans-serif", "#f2f6f3") };
    // Above the kick-charge ring of the own player.
    let above = if own { r + 15.0 } else { r + 5.0 };
    outlined_text(ctx, (at.0, at.1 - above), &label, font, color);
    // The stamina bar below (below the charge ring for the own player).
    let width = r * 2.2;
    let below = if own { r + 14.0 } else { r + 5.0 };
    let (bx, by) = (at.0 - width / 2.0, at.1 + below);
    let fraction = f64::from((s.stamina / MAX_STAMINA).clamp(0.0, 1.0));
    ctx.set_fill_style_str("rgba(5, 20, 10, 0.7)");
    ctx.fill_rect(bx - 1.0, by - 1.0, width + 2.0, 5.0);
    ctx.set_fill_style_str(if fraction > 0.3 { "#7ee8fa" } else { "#ff9f43" });
    ctx.fill_rect(bx, by, width * fraction, 3.0);
}

/// The own kick charge: an arc around the player filling clockwise from the top, yellow to
/// red.
fn draw_charge(ctx: &CanvasRenderingContext2d, cam: &Camera, at: Vec2, charge: f32) {
    let (x, y) = cam.to_screen(at);
    let r = cam.len(PLAYER_RADIUS) + 9.0;
    ctx.set_line_width(5.0);
    ctx.set_stroke_style_str("rgba(5, 20, 10, 0.6)");
    circle(ctx, (x, y), r);
    ctx.stroke();
    let color = if charge < 0.5 {
        "#ffe14d"
    } else if charge < 0.9 {
        "#ff9f1a"
    } else {
        "#ff3b30"
    };
    ctx.set_stroke_style_str(color);
    ctx.begin_path();
    let start = -FRAC_PI_2;
    let _ = ctx.arc(x, y, r, start, start + TAU * f64::from(charge.clamp(0.01, 1.0)));
    ctx.stroke();
}

/// The ball: white with a dark rim and a patch, on its shadow.
fn draw_ball(ctx: &CanvasRenderingContext2d, cam: &Camera, at: Vec2) {
    shadow(ctx, cam, at, BALL_RADIUS);
    let p = cam.to_screen(at);
    let r = cam.len(BALL_RADIUS).max(3.0);
    ctx.set_fill_style_str("#fbfbf8");
    circle(ctx, p, r);
    ctx.fill();
    ctx.set_stroke_style_str("#20252b");
    ctx.set_line_width(1.5);
    ctx.stroke();
    ctx.set_fill_style_str("#2b3038");
    circle(ctx, (p.0 - r * 0.2, p.1 - r * 0.15), r * 0.38);
    ctx.fill();
}

/// The score at the top: "RED 2 : 1 BLUE" on a dark pill, each name in its colour.
fn draw_score(ctx: &CanvasRenderingContext2d, cam: &Camera, score: MatchScore) {
    let cx = cam.size.0 / 2.0;
    let top = 40.0;
    ctx.set_fill_style_str("rgba(8, 12, 16, 0.72)");
    ctx.fill_rect(cx - 120.0, top, 240.0, 34.0);
    ctx.set_text_baseline("middle");
    ctx.set_font("bold 20px sans-serif");
    let mid = top + 17.0;
    ctx.set_text_align("right");
    ctx.set_fill_style_str(team_colors(Team::Red).1);
    let _ = ctx.fill_text("RED", cx - 42.0, mid);
    ctx.set_text_align("left");
    ctx.set_fill_style_str(team_colors(Team::Blue).1);
    let _ = ctx.fill_text("BLUE", cx + 42.0, mid);
    ctx.set_text_align("center");
    ctx.set_fill_style_str("#ffffff");
    let _ = ctx.fill_text(&format!("{}  :  {}", score.red, score.blue), cx, mid);
}

/// "GOAL!" across the pitch in the scoring team's colour.
fn draw_goal_banner(ctx: &CanvasRenderingContext2d, cam: &Camera, team: Team) {
    let (cx, cy) = (cam.size.0 / 2.0, cam.size.1 / 2.0);
    ctx.set_fill_style_str("rgba(8, 12, 16, 0.55)");
    ctx.fill_rect(0.0, cy - 48.0, cam.size.0, 96.0);
    ctx.set_text_align("center");
    ctx.set_text_baseline("middle");
    ctx.set_font("bold 64px sans-serif");
    ctx.set_line_width(6.0);
    ctx.set_stroke_style_str("rgba(5, 10, 8, 0.9)");
    let text = format!("GOAL! {}", team.name().to_uppercase());
    let _ = ctx.stroke_text(&text, cx, cy);
    ctx.set_fill_style_str(team_colors(team).0);
    let _ = ctx.fill_text(&text, cx, cy);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_whole_pitch_fits_a_laptop_screen_and_small_ones_follow_the_player() {
        let cam = camera((1280.0, 720.0), Some(Vec2::new(-300.0, 100.0)));
        assert_eq!(cam.center, Vec2::ZERO);
        let (l, t) = cam.to_screen(Vec2::new(-HALF_LENGTH - GOAL_DEPTH, HALF_WIDTH));
        let (r, b) = cam.to_screen(Vec2::new(HALF_LENGTH + GOAL_DEPTH, -HALF_WIDTH));
        assert!(l >= 0.0 && t >= 0.0 && r <= 1280.0 && b <= 720.0, "{l} {t} {r} {b}");
        let small = camera((400.0, 300.0), Some(Vec2::new(-450.0, 0.0)));
        assert_eq!(small.scale, MIN_SCALE);
        assert!(small.center.x > -450.0, "kept from showing much beyond the pitch");
        assert!(small.center.x < 0.0);
    }
}
