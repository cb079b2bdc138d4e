//! The arena's fixed layout: bounds, obstacles, spawn points and pickup spots. Both the server
//! and the client build it with [`Arena::standard`], so obstacles are never replicated.

use bevy_ecs::resource::Resource;
use glam::Vec2;

/// A static, axis-aligned box that blocks movers and stops projectiles.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Obstacle {
    /// Its centre, in world units.
    pub center: Vec2,
    /// Half its width and height.
    pub half_extents: Vec2,
}

impl Obstacle {
    /// The point of the box closest to `p` (`p` itself when inside).
    #[must_use]
    pub fn closest_point(&self, p: Vec2) -> Vec2 {
        p.clamp(self.center - self.half_extents, self.center + self.half_extents)
    }

    /// Whether a circle at `center` with `radius` overlaps the box (touching does not count).
    #[must_use]
    pub fn overlaps_circle(&self, center: Vec2, radius: f32) -> bool {
        (center - self.closest_point(center)).length_squared() < radius * radius
    }
}

/// The playing field: a rectangle centred on the origin with obstacles inside.
#[derive(Clone, Debug, PartialEq, Resource)]
pub struct Arena {
    /// Half its width and height: it spans `-half_extents..=half_extents`.
    pub half_extents: Vec2,
    /// The boxes inside it.
    pub obstacles: Vec<Obstacle>,
}

/// Half the standard arena's size: 1200 × 800 units, about five seconds to cross at walking
/// speed, small enough that a handful of players meet often.
pub const STANDARD_HALF_EXTENTS: Vec2 = Vec2::new(600.0, 400.0);

/// The standard arena's obstacles as `(centre, half extents)`: a central block, four walls
/// around it and four pillars, symmetric so that no spawn point is favoured. None is thinner
/// than 40 units, more than the farthest a mover travels in one movement substep.
const STANDARD_OBSTACLES: [(Vec2, Vec2); 9] = [
    (Vec2::new(0.0, 0.0), Vec2::new(60.0, 60.0)),
    (Vec2::new(-300.0, -200.0), Vec2::new(80.0, 20.0)),
    (Vec2::new(300.0, 200.0), Vec2::new(80.0, 20.0)),
    (Vec2::new(-300.0, 200.0), Vec2::new(20.0, 80.0)),
    (Vec2::new(300.0, -200.0), Vec2::new(20.0, 80.0)),
    (Vec2::new(0.0, -300.0), Vec2::new(120.0, 20.0)),
    (Vec2::new(0.0, 300.0), Vec2::new(120.0, 20.0)),
    (Vec2::new(-480.0, 0.0), Vec2::new(20.0, 100.0)),
    (Vec2::new(480.0, 0.0), Vec2::new(20.0, 100.0)),
];

/// Where combatants (re)appear in the standard arena: corners and the open ring around the
/// centre, all clear of obstacles by more than a player's radius.
const STANDARD_SPAWN_POINTS: [Vec2; 8] = [
    Vec2::new(-520.0, -320.0),
    Vec2::new(520.0, 320.0),
    Vec2::new(-520.0, 320.0),
    Vec2::new(520.0, -320.0),
    Vec2::new(-160.0, 0.0),
    Vec2::new(160.0, 0.0),
    Vec2::new(0.0, -180.0),
    Vec2::new(0.0, 180.0),
];

/// Where health pickups sit in the standard arena: between the walls, away from spawns.
const STANDARD_PICKUP_SPOTS: [Vec2; 4] =
    [Vec2::new(-300.0, 0.0), Vec2::new(300.0, 0.0), Vec2::new(0.0, -120.0), Vec2::new(0.0, 120.0)];

impl Arena {
    /// The fixed layout every room uses (1200 × 800 with nine boxes).
    #[must_use]
    pub fn standard() -> Arena {
        Arena {
            half_extents: STANDARD_HALF_EXTENTS,
            obstacles: STANDARD_OBSTACLES
                .iter()
                .map(|&(center, half_extents)| Obstacle { center, half_extents })
                .collect(),
        }
    }

    /// Where combatants spawn, in a fixed order.
    #[must_use]
    pub fn spawn_points(&self) -> &'static [Vec2] {
        &STANDARD_SPAWN_POINTS
    }

    /// Where health pickups sit, in a fixed order.
    #[must_use]
    pub fn pickup_spots(&self) -> &'static [Vec2] {
        &STANDARD_PICKUP_SPOTS
    }

    /// Whether a circle at `center` with `radius` lies inside the bounds and touches no
    /// obstacle.
    #[must_use]
    pub fn is_free(&self, center: Vec2, radius: f32) -> bool {
        let inner = self.half_extents - Vec2::splat(radius);
        center.abs().cmple(inner).all()
            && !self.obstacles.iter().any(|o| o.overlaps_circle(center, radius))
    }

    /// Whether the segment from `a` to `b` crosses no obstacle (a line of sight).
    #[must_use]
    pub fn line_of_sight(&self, a: Vec2, b: Vec2) -> bool {
        self.obstacles.iter().all(|o| !segment_hits_box(a, b, o))
    }
}

/// Slab test: whether the segment `a..b` touches the box.
fn segment_hits_box(a: Vec2, b: Vec2, o: &Obstacle) -> bool {
    let lo = o.center - o.half_extents;
    let hi = o.center + o.half_extents;
    let d = b - a;
    let mut t0 = 0.0f32;
    let mut t1 = 1.0f32;
    for axis in 0..2 {
        let (start, dir, min, max) = (a[axis], d[axis], lo[axis], hi[axis]);
        if dir == 0.0 {
            if start < min || start > max {
                return false;
            }
        } else {
            let (mut near, mut far) = ((min - start) / dir, (max - start) / dir);
            if near > far {
                std::mem::swap(&mut near, &mut far);
            }
            t0 = t0.max(near);
            t1 = t1.min(far);
            if t0 > t1 {
                return false;
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::games::arena::PLAYER_RADIUS;

    #[test]
    fn spawn_points_and_pickup_spots_are_free() {
        let arena = Arena::standard();
        for &p in arena.spawn_points().iter().chain(arena.pickup_spots()) {
            assert!(arena.is_free(p, PLAYER_RADIUS * 2.0), "{p} is blocked");
        }
        assert!(!arena.is_free(Vec2::ZERO, PLAYER_RADIUS));
        assert!(!arena.is_free(Vec2::new(595.0, 0.0), PLAYER_RADIUS));
    }

    #[test]
    fn line_of_sight_is_blocked_by_boxes() {
        let arena = Arena::standard();
        assert!(!arena.line_of_sight(Vec2::new(-160.0, 0.0), Vec2::new(160.0, 0.0)));
        assert!(arena.line_of_sight(Vec2::new(-160.0, 100.0), Vec2::new(160.0, 100.0)));
    }
}
