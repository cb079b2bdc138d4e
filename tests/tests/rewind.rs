//! Lag compensation through the in-memory harness: a real `Room`, clients running the shared
//! sans-IO `Client` and `InterpolationBuffer` over conditioned links, the arena's projectiles
//! resolved against the combatants where the shooter saw them.

use glam::Vec2;
use tickwire_shared::NetId;
use tickwire_shared::client::{ClientEvent, InterpolationBuffer};
use tickwire_shared::games::arena::{
    Arena, ArenaInput, Buttons, Health, MAX_HEALTH, PLAYER_RADIUS, PROJECTILE_RADIUS,
    PROJECTILE_SPEED, Position,
};
use tickwire_shared::protocol::ViewTime;
use tickwire_shared::rewind::{RewindSettings, ViewLag};
use tickwire_shared::room::RoomSettings;
use tickwire_shared::tick::Tick;
use tickwire_tests::harness::{Conditioner, Harness, room_config};

const TICK_US: u64 = 1_000_000 / 60;

fn own(h: &Harness, idx: usize) -> NetId {
    h.clients[idx].client.own_entity().expect("welcomed")
}

/// Sets what `f` changes on entity `id` in the room's world.
fn edit<C: bevy_ecs::component::Component<Mutability = bevy_ecs::component::Mutable>>(
    h: &mut Harness,
    id: NetId,
    f: impl Fn(&mut C),
) {
    let world = h.room.core_mut().world_mut();
    let mut q = world.query::<(&NetId, &mut C)>();
    for (net_id, mut c) in q.iter_mut(world) {
        if *net_id == id {
            f(&mut c);
        }
    }
}

fn component<C: bevy_ecs::component::Component + Copy>(h: &mut Harness, id: NetId) -> Option<C> {
    let world = h.room.core_mut().world_mut();
    let mut q = world.query::<(&NetId, &C)>();
    q.iter(world).find(|(n, _)| **n == id).map(|(_, c)| *c)
}

/// A spawn point with a clear lane `range` units to its right and `half_span` units up and
/// down from there.
fn lane(range: f32, half_span: f32) -> (Vec2, Vec2) {
    let arena = Arena::standard();
    arena
        .spawn_points()
        .iter()
        .map(|&p| (p, p + Vec2::new(range, 0.0)))
        .find(|&(from, to)| {
            (-4..=4)
                .map(|k| to + Vec2::new(0.0, half_span * k as f32 / 4.0))
                .all(|t| arena.is_free(t, PLAYER_RADIUS + 2.0) && arena.line_of_sight(from, t))
        })
        .expect("a spawn point with a clear lane to its right")
}

/// What a duel came to.
#[derive(Debug)]
struct Duel {
    shots: u32,
    hits: u32,
    /// The shooter's view lag the room applied while it fired, in ticks: the mean and the
    /// largest.
    mean_lag: f32,
    max_lag: f32,
}

/// A duel over a link of `rtt_ms` (half each way) in a room rewinding at most
/// `max_rewind_ms`: the shooter stands still and fires at a target strafing up and down across
/// its line of fire, aiming where interpolation shows the target, led by its interpolated
/// velocity over the projectile's flight, and naming its render time with its inputs. The
/// target's health is put back after every hit, so it never dies and respawns elsewhere.
fn duel(rtt_ms: u32, max_rewind_ms: u32, seed: u64) -> Duel {
    let settings = RoomSettings { max_rewind_ms, ..room_config(0) };
    let mut h = Harness::new(settings, seed);
    let link: Conditioner = if rtt_ms == 0 {
        Conditioner::default()
    } else {
        format!("latency={}ms", rtt_ms / 2).parse().expect("a conditioner")
    };
    let (shooter, _) = h.join("ann", None, link).unwrap();
    let (target, _) = h.join("bob", None, link).unwrap();
    h.run(10);
    let (es, et) = (own(&h, shooter), own(&h, target));
    let (from, to) = lane(130.0, 90.0);
    edit::<Position>(&mut h, es, |p| p.0 = from);
    edit::<Position>(&mut h, et, |p| p.0 = to);
    // Both clients see where they were put.
    let seen = h.run_until(120, |h| {
        h.seen_position(shooter, et).is_some_and(|p| p.distance(to) < 1.0)
            && h.seen_position(target, et).is_some_and(|p| p.distance(to) < 1.0)
    });
    assert!(seen, "the teleport never reached the clients");

    let mut interp = InterpolationBuffer::new(60, 30);
    let mut events_seen = 0;
    let mut last_sample: Option<Vec2> = None;
    let mut duel = Duel { shots: 0, hits: 0, mean_lag: 0.0, max_lag: 0.0 };
    let mut lag_sum = 0.0;
    for step in 0..900u32 {
        let now_us = h.steps * TICK_US;
        // The shooter's eyes: new snapshots into its interpolation, sampled now.
        let events = &h.clients[shooter].events;
        for e in &events[events_seen..] {
            if let ClientEvent::Snapshot { tick, .. } = e {
                let c = &h.clients[shooter].client;
                if let Some(state) = c.state_at(*tick) {
                    let positions = state
                        .iter()
                        .filter(|e| e.id != es)
                        .filter_map(|e| c.registry().position(e).map(|p| (e.id, p)));
                    interp.push(*tick, now_us, positions.collect::<Vec<_>>());
                }
            }
        }
        events_seen = events.len();
        let seen_target = interp.sample(now_us).into_iter().find(|(id, _)| *id == et);
        let view = interp.render_tick().map(|(tick, frac)| ViewTime::new(tick, frac));
        h.clients[shooter].client.set_view(view);
        if let Some((_, p)) = seen_target {
            let velocity = last_sample.map_or(Vec2::ZERO, |last| (p - last) * 60.0);
            last_sample = Some(p);
            let flight = (p.distance(from) - PLAYER_RADIUS - PROJECTILE_RADIUS) / PROJECTILE_SPEED;
            let aim_at = p + velocity * flight;
            let dir = aim_at - from;
            h.input(shooter, ArenaInput::new(Vec2::ZERO, dir.y.atan2(dir.x), Buttons::FIRE));
        }
        // The target strafes: 20 ticks up, then 40 down, 40 up, …
        let up = ((step + 20) / 40).is_multiple_of(2);
        h.input(
            target,
            ArenaInput::new(Vec2::new(0.0, if up { 1.0 } else { -1.0 }), 0.0, Buttons::default()),
        );
        let cooled = component::<tickwire_shared::games::arena::Weapon>(&mut h, es);
        h.step();
        if let (Some(before), Some(after)) =
            (cooled, component::<tickwire_shared::games::arena::Weapon>(&mut h, es))
            && after.cooldown > before.cooldown
        {
            duel.shots += 1;
            let lag = component::<ViewLag>(&mut h, es).map_or(0.0, |l| l.0);
            duel.max_lag = duel.max_lag.max(lag);
            lag_sum += lag;
        }
        if component::<Health>(&mut h, et).is_some_and(|hp| hp.0 < MAX_HEALTH) {
            duel.hits += 1;
            edit::<Health>(&mut h, et, |hp| hp.0 = MAX_HEALTH);
        }
    }
    assert!(h.clients[shooter].errors.is_empty(), "{:?}", h.clients[shooter].errors);
    duel.mean_lag = lag_sum / duel.shots.max(1) as f32;
    duel
}

#[test]
fn a_duel_at_150_ms_hits_as_often_as_at_0_ms() {
    let local = duel(0, 400, 1);
    let far = duel(150, 400, 1);
    let uncompensated = duel(150, 0, 1);
    eprintln!("0 ms: {local:?}\n150 ms: {far:?}\n150 ms, no rewind: {uncompensated:?}");
    assert!(local.shots > 60, "{local:?}");
    // The lead aim hits most shots when what the shooter saw is what the room resolves.
    assert!(local.hits * 10 >= local.shots * 6, "{local:?}");
    // At 150 ms the shooter sees the target a round trip (9 ticks) further in the past than
    // at 0 ms; the room rewinds by that much more (within the 400 ms cap, 24 ticks) and the
    // hits match those at 0 ms within 10 % of the shots.
    assert!(far.mean_lag > local.mean_lag + 8.0 && far.max_lag <= 24.0, "{local:?} {far:?}");
    let tolerance = local.shots / 10;
    assert!(far.hits + tolerance >= local.hits, "0 ms: {local:?}, 150 ms: {far:?}");
    // Without rewind the same aim lands behind a strafing target.
    assert!(uncompensated.hits * 2 < local.hits, "{uncompensated:?} vs {local:?}");
}

/// A client claiming to see the world long ago gains at most the cap: the room rewinds it by
/// [`RewindSettings::max_ticks`] and not to the moment it names.
#[test]
fn the_cap_stops_a_client_claiming_a_view_too_far_back() {
    let run = |max_rewind_ms: u32| {
        let mut h = Harness::new(RoomSettings { max_rewind_ms, ..room_config(0) }, 3);
        let (shooter, _) = h.join("ann", None, Conditioner::default()).unwrap();
        let (target, _) = h.join("bob", None, Conditioner::default()).unwrap();
        h.run(4);
        let (es, et) = (own(&h, shooter), own(&h, target));
        let (from, to) = lane(150.0, 90.0);
        edit::<Position>(&mut h, es, |p| p.0 = from);
        edit::<Position>(&mut h, et, |p| p.0 = to);
        // The target stands in the lane for a second, then steps 80 units out of it and
        // stays there for another second.
        h.run(60);
        let stood = h.room.core_mut().tick();
        edit::<Position>(&mut h, et, |p| p.0 = to + Vec2::new(0.0, 80.0));
        h.run(60);
        // The shooter fires at the empty lane, claiming to see the world of a second ago.
        let claim = ViewTime::new(Tick(stood.0 - 30), 0.0);
        h.clients[shooter].client.set_view(Some(claim));
        let mut lag = 0.0;
        let mut hit = false;
        for _ in 0..40 {
            h.input(shooter, ArenaInput::new(Vec2::ZERO, 0.0, Buttons::FIRE));
            h.step();
            lag = component::<ViewLag>(&mut h, es).map_or(lag, |l| l.0.max(lag));
            hit |= component::<Health>(&mut h, et).is_some_and(|hp| hp.0 < MAX_HEALTH);
        }
        (lag, hit)
    };
    let cap = RewindSettings::from_ms(400, 60).max_ticks as f32;
    let (lag, hit) = run(400);
    assert_eq!(lag, cap, "the view lag is capped");
    assert!(!hit, "a claim a second back must not rewind past the cap");
    // The same claim in a room whose cap reaches it hits: the cap is what stopped it.
    let (lag, hit) = run(3_000);
    assert!(lag > 60.0, "{lag}");
    assert!(hit, "without the cap the claim hits the target where it stood");
}
