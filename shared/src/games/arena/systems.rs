//! The arena's resources and its rule systems, in the order [`super::GameSet`] runs them:
//! input sanitizing, movement, combat (firing, hits, pickups) and lifecycle (respawns, the
//! clock).
//!
//! Every system that allocates ids, consumes randomness or resolves contests between entities
//! walks them sorted by [`NetId`], so a run is a pure function of the seed and the inputs.

use bevy_ecs::prelude::*;
use glam::Vec2;

use super::components::{
    Aim, Dash, Dead, Flight, Health, Kind, Launched, Lifetime, Owner, Pickup, PickupRespawn,
    Position, Score, ShotLag, Velocity, Weapon,
};
use super::input::{Buttons, PlayerInput};
use super::layout::Arena;
use super::movement::{MoverState, PLAYER_RADIUS, step_mover, ticks_for};
use super::{ArenaEvent, ArenaRules};
use crate::game::{GameEvents, NetIdAllocator, SimClock};
use crate::ids::NetId;
use crate::quantize;
use crate::rewind::{RewindHistory, ViewLag};

/// Full health of a player or NPC: five hits of [`PROJECTILE_DAMAGE`], fits
/// [`quantize::small`].
pub const MAX_HEALTH: f32 = 100.0;

/// Projectile speed in units per second: under 10 units a tick at 60 Hz, less than the
/// combined radii of a projectile and a player (20), so a hit is never skipped; about three
/// times walking speed, so a shot seen early can be dodged.
pub const PROJECTILE_SPEED: f32 = 600.0;

/// Radius of a projectile's collision circle, in units.
pub const PROJECTILE_RADIUS: f32 = 4.0;

/// Health one projectile hit takes: five hits kill, so a fight lasts about a second.
pub const PROJECTILE_DAMAGE: f32 = 20.0;

/// How long a projectile flies before it vanishes, in seconds: 900 units, most of the arena.
pub const PROJECTILE_LIFETIME_SECS: f32 = 1.5;

/// Time between two shots of one weapon, in seconds (5 shots a second): a stream dense enough
/// to feel responsive, sparse enough that a kill takes a second of aim.
pub const FIRE_COOLDOWN_SECS: f32 = 0.2;

/// Radius of a health pickup, in units (touching it takes it).
pub const PICKUP_RADIUS: f32 = 12.0;

/// Health a pickup restores, capped at [`MAX_HEALTH`]: two hits' worth.
pub const PICKUP_HEAL: f32 = 40.0;

/// Time a taken pickup stays away, in seconds: long enough to be worth fighting over.
pub const PICKUP_RESPAWN_SECS: f32 = 10.0;

/// The spawn point farthest from every position in `occupied` (the first point when nothing
/// is occupied; ties go to the earlier point).
#[must_use]
pub fn pick_spawn_point(arena: &Arena, occupied: &[Vec2]) -> Vec2 {
    let points = arena.spawn_points();
    let mut best = points[0];
    let mut best_d = f32::NEG_INFINITY;
    for &p in points {
        let d = occupied.iter().map(|&o| p.distance_squared(o)).fold(f32::INFINITY, f32::min);
        if d > best_d {
            best = p;
            best_d = d;
        }
    }
    best
}

/// Filter for living combatants: not dead, not a projectile.
type Living = (Without<Dead>, Without<Velocity>);

/// Filter for pickup takers: living combatants that are not pickups.
type LivingTaker = (Without<Dead>, Without<Pickup>, Without<Velocity>);

/// What [`respawn_dead`] changes on a dead combatant.
type DeadItem<'a> =
    (Entity, &'a NetId, &'a Dead, &'a mut Position, &'a mut Health, &'a mut Dash, &'a mut Weapon);

/// Replaces non-finite input values and over-long movement in every [`PlayerInput`]
/// (`GameSet::Input`).
pub fn sanitize_inputs(mut inputs: Query<'_, '_, &mut PlayerInput>) {
    for mut input in &mut inputs {
        let clean = input.sanitized();
        if clean.movement != input.movement || clean.aim.to_bits() != input.aim.to_bits() {
            *input = clean;
        }
    }
}

/// Steps every living combatant with [`step_mover`] and sets its aim from its input, snapped
/// to the angle grid (`GameSet::Movement`).
pub fn move_combatants(
    arena: Res<'_, Arena>,
    clock: Res<'_, SimClock>,
    mut movers: Query<'_, '_, (&PlayerInput, &mut Position, &mut Dash, &mut Aim), Living>,
) {
    for (input, mut position, mut dash, mut aim) in &mut movers {
        let mut state = MoverState {
            position: position.0,
            dash_cooldown: dash.cooldown,
            dash_ticks_left: dash.ticks_left,
        };
        step_mover(&mut state, input, &arena, clock.dt);
        position.0 = state.position;
        *dash = Dash { cooldown: state.dash_cooldown, ticks_left: state.dash_ticks_left };
        aim.0 = quantize::angle_value(quantize::angle(input.aim));
    }
}

/// Moves projectiles along their velocity (their [`Flight`]; the replicated [`Position`] stays
/// at the launch point) and counts their lifetime down (`GameSet::Movement`).
pub fn move_projectiles(
    clock: Res<'_, SimClock>,
    mut projectiles: Query<'_, '_, (&Velocity, &mut Flight, &mut Lifetime)>,
) {
    for (velocity, mut flight, mut lifetime) in &mut projectiles {
        flight.0 += velocity.0 * clock.dt;
        lifetime.0 = lifetime.0.saturating_sub(1);
    }
}

/// A combatant as [`fire_weapons`] sees it.
type ShooterItem<'a> =
    (&'a NetId, &'a Position, &'a Aim, &'a PlayerInput, &'a mut Weapon, Option<&'a ViewLag>);

/// Fires a projectile for every living combatant holding FIRE whose weapon is ready, carrying
/// its shooter's [`ViewLag`] as [`ShotLag`] (`GameSet::Combat`).
pub fn fire_weapons(
    mut commands: Commands<'_, '_>,
    clock: Res<'_, SimClock>,
    mut ids: ResMut<'_, NetIdAllocator>,
    mut shooters: Query<'_, '_, ShooterItem<'_>, Living>,
) {
    let mut shooters: Vec<_> = shooters.iter_mut().collect();
    shooters.sort_by_key(|s| *s.0);
    for (&id, position, aim, input, mut weapon, lag) in shooters {
        weapon.cooldown = weapon.cooldown.saturating_sub(1);
        if !input.buttons.contains(Buttons::FIRE) || weapon.cooldown > 0 {
            continue;
        }
        weapon.cooldown = ticks_for(FIRE_COOLDOWN_SECS, clock.dt);
        let dir = Vec2::from_angle(aim.0);
        let start = position.0 + dir * (PLAYER_RADIUS + PROJECTILE_RADIUS + 1.0);
        commands.spawn((
            ids.next(),
            Kind::Projectile,
            Position(start),
            Flight(start),
            // This run's state is captured as the next tick's.
            Launched::at(clock.tick.next()),
            Aim(aim.0),
            Velocity(dir * PROJECTILE_SPEED),
            Lifetime(u32::from(ticks_for(PROJECTILE_LIFETIME_SECS, clock.dt))),
            Owner(id),
            ShotLag(lag.map_or(0.0, |l| l.0)),
        ));
    }
}

/// A combatant as [`resolve_projectiles`] sees it.
type CombatantItem<'a> =
    (Entity, &'a NetId, &'a Position, &'a mut Health, &'a mut Score, Has<Dead>);

/// A projectile as [`resolve_projectiles`] sees it.
type ShotItem<'a> = (Entity, &'a NetId, &'a Flight, &'a Owner, &'a Lifetime, Option<&'a ShotLag>);

/// Removes projectiles that expired, left the arena or hit an obstacle, and applies hits:
/// damage, deaths (with [`Dead`], scores and [`ArenaEvent::Killed`]) (`GameSet::Combat`).
///
/// A projectile with a [`ShotLag`] is tested against each combatant where it was that many
/// ticks ago ([`RewindHistory::rewound`]); whether the combatant can still be hit is decided
/// now (a dead one cannot).
#[expect(clippy::too_many_arguments, reason = "a system's parameters are its data access")]
pub fn resolve_projectiles(
    mut commands: Commands<'_, '_>,
    clock: Res<'_, SimClock>,
    rules: Res<'_, ArenaRules>,
    arena: Res<'_, Arena>,
    history: Option<Res<'_, RewindHistory<Position>>>,
    mut events: ResMut<'_, GameEvents<ArenaEvent>>,
    projectiles: Query<'_, '_, ShotItem<'_>, With<Velocity>>,
    mut combatants: Query<'_, '_, CombatantItem<'_>, Without<Velocity>>,
) {
    // This run's positions are the state of the next tick (its snapshot's label).
    let now = clock.tick.next();
    let mut shots: Vec<_> = projectiles.iter().collect();
    shots.sort_by_key(|s| *s.1);
    // Every combatant once, by id: where it is and whether a shot can still hit it (alive and
    // not yet killed this tick), so the shots × combatants loop reads a flat array.
    let mut targets: Vec<(NetId, Entity, Vec2, bool)> = combatants
        .iter()
        .map(|(entity, &id, position, health, _, dead)| {
            (id, entity, position.0, !dead && health.0 > 0.0)
        })
        .collect();
    targets.sort_unstable_by_key(|t| t.0);

    for (shot, _, position, owner, lifetime, lag) in shots {
        if lifetime.0 == 0 || !arena.is_free(position.0, PROJECTILE_RADIUS) {
            commands.entity(shot).despawn();
            continue;
        }
        let lag = lag.map_or(0.0, |l| l.0);
        let reach = PLAYER_RADIUS + PROJECTILE_RADIUS;
        let mut hit: Option<(f32, usize)> = None;
        for (i, &(id, _, target, hittable)) in targets.iter().enumerate() {
            if !hittable || id == owner.0 {
                continue;
            }
            let target = match &history {
                Some(history) if lag > 0.0 => history.rewound(id, &Position(target), now, lag).0,
                _ => target,
            };
            let d2 = target.distance_squared(position.0);
            if d2 < reach * reach && hit.is_none_or(|(b, _)| d2 < b) {
                hit = Some((d2, i));
            }
        }
        let Some((_, victim)) = hit else { continue };
        commands.entity(shot).despawn();
        let (victim_id, victim_entity) = (targets[victim].0, targets[victim].1);
        let Ok((_, _, _, mut health, mut score, _)) = combatants.get_mut(victim_entity) else {
            continue;
        };
        health.0 = (health.0 - PROJECTILE_DAMAGE).max(0.0);
        if health.0 > 0.0 {
            continue;
        }
        targets[victim].3 = false;
        score.deaths = score.deaths.saturating_add(1);
        commands
            .entity(victim_entity)
            .insert(Dead { respawn_at: clock.tick.plus(rules.respawn_ticks) });
        events.0.push(ArenaEvent::Killed { killer: Some(owner.0), victim: victim_id });
        if let Ok(i) = targets.binary_search_by_key(&owner.0, |t| t.0)
            && let Ok((_, _, _, _, mut killer, _)) = combatants.get_mut(targets[i].1)
        {
            killer.kills = killer.kills.saturating_add(1);
        }
    }
}

/// Lets the living combatant touching a pickup (lowest [`NetId`] first) take it if hurt: it
/// heals, the pickup goes and a [`PickupRespawn`] waits to bring it back (`GameSet::Combat`).
pub fn collect_pickups(
    mut commands: Commands<'_, '_>,
    clock: Res<'_, SimClock>,
    pickups: Query<'_, '_, (Entity, &NetId, &Position, &Pickup)>,
    mut takers: Query<'_, '_, (&NetId, &Position, &mut Health), LivingTaker>,
) {
    let mut pickups: Vec<_> = pickups.iter().collect();
    pickups.sort_by_key(|p| *p.1);
    let mut takers: Vec<_> = takers.iter_mut().collect();
    takers.sort_by_key(|t| *t.0);
    let reach = PLAYER_RADIUS + PICKUP_RADIUS;
    for (entity, _, position, pickup) in pickups {
        let taker = takers.iter_mut().find(|(_, p, h)| {
            h.0 > 0.0 && h.0 < MAX_HEALTH && p.0.distance_squared(position.0) < reach * reach
        });
        let Some((_, _, health)) = taker else { continue };
        health.0 = (health.0 + PICKUP_HEAL).min(MAX_HEALTH);
        commands.entity(entity).despawn();
        commands.spawn(PickupRespawn {
            spot: pickup.spot,
            respawn_at: clock.tick.plus(u32::from(ticks_for(PICKUP_RESPAWN_SECS, clock.dt))),
        });
    }
}

/// Brings back dead combatants whose time has come, at the spawn point farthest from the
/// living, with full health, and pushes [`ArenaEvent::Respawned`] (`GameSet::Lifecycle`).
pub fn respawn_dead(
    mut commands: Commands<'_, '_>,
    clock: Res<'_, SimClock>,
    arena: Res<'_, Arena>,
    mut events: ResMut<'_, GameEvents<ArenaEvent>>,
    mut dead: Query<'_, '_, DeadItem<'_>, With<Dead>>,
    living: Query<'_, '_, &Position, (Without<Dead>, With<Health>)>,
) {
    let mut occupied: Vec<Vec2> = living.iter().map(|p| p.0).collect();
    let mut due: Vec<_> =
        dead.iter_mut().filter(|d| clock.tick.diff(d.2.respawn_at) >= 0).collect();
    due.sort_by_key(|d| *d.1);
    for (entity, &id, _, mut position, mut health, mut dash, mut weapon) in due {
        let at = pick_spawn_point(&arena, &occupied);
        occupied.push(at);
        position.0 = at;
        health.0 = MAX_HEALTH;
        *dash = Dash::default();
        *weapon = Weapon::default();
        commands.entity(entity).remove::<Dead>();
        events.0.push(ArenaEvent::Respawned { entity: id });
    }
}

/// Brings back taken pickups whose time has come, each with a new [`NetId`]
/// (`GameSet::Lifecycle`).
pub fn respawn_pickups(
    mut commands: Commands<'_, '_>,
    clock: Res<'_, SimClock>,
    arena: Res<'_, Arena>,
    mut ids: ResMut<'_, NetIdAllocator>,
    waiting: Query<'_, '_, (Entity, &PickupRespawn)>,
) {
    let mut due: Vec<_> =
        waiting.iter().filter(|(_, w)| clock.tick.diff(w.respawn_at) >= 0).collect();
    due.sort_by_key(|(_, w)| w.spot);
    for (entity, wait) in due {
        commands.entity(entity).despawn();
        commands.spawn(pickup_bundle(ids.next(), &arena, wait.spot));
    }
}

/// The components of a health pickup on `spot`.
pub(crate) fn pickup_bundle(id: NetId, arena: &Arena, spot: usize) -> impl Bundle {
    let at = arena.pickup_spots().get(spot).copied().unwrap_or(Vec2::ZERO);
    (id, Kind::Pickup, Position(at), Pickup { spot })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spawn_point_avoids_the_occupied() {
        let arena = Arena::standard();
        let pts = arena.spawn_points();
        assert_eq!(pick_spawn_point(&arena, &[]), pts[0]);
        let p = pick_spawn_point(&arena, &[pts[0]]);
        assert_eq!(p, pts[1], "the opposite corner");
    }
}
