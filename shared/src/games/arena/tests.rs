//! Whole-game tests: combat, respawn, pickups, determinism and the registry.

use super::*;
use crate::game::{GameEvents, SimClock};
use crate::registry::Replicate as _;
use crate::registry::ReplicationRegistry;
use crate::tick::Tick;

fn room(config: &GameConfig) -> (World, Schedule) {
    let mut world = World::new();
    let mut schedule = Schedule::default();
    crate::game::install::<ArenaGame>(&mut world, &mut schedule, config);
    (world, schedule)
}

fn registry() -> ReplicationRegistry {
    crate::game::registry::<ArenaGame>()
}

fn spawn_player(world: &mut World, name: &str) -> (Entity, NetId) {
    crate::game::spawn_player::<ArenaGame>(world, name)
}

fn state_hash(world: &mut World) -> u64 {
    crate::game::state_hash::<ArenaGame>(world)
}

/// Runs one tick and returns the events it produced.
fn tick(world: &mut World, schedule: &mut Schedule) -> Vec<ArenaEvent> {
    schedule.run(world);
    std::mem::take(&mut world.resource_mut::<GameEvents<ArenaEvent>>().0)
}

fn no_npcs() -> GameConfig {
    GameConfig { npcs: 0, ..GameConfig::default() }
}

#[test]
fn registry_is_stable_with_position_first() {
    let a = registry();
    let b = registry();
    assert_eq!(a.index_of::<Position>().map(|i| i.0), Some(0));
    assert_eq!(a.len(), 8, "seven components and the engine's motion");
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_eq!(a.index_of::<Dash>(), b.index_of::<Dash>());
}

#[test]
fn install_spawns_pickups_and_npcs() {
    let (mut world, _) = room(&GameConfig::default());
    let mut q = world.query::<(&NetId, &Kind)>();
    let mut kinds: Vec<(NetId, Kind)> = q.iter(&world).map(|(i, k)| (*i, *k)).collect();
    kinds.sort_unstable();
    let npcs = kinds.iter().filter(|k| k.1 == Kind::Npc).count();
    let pickups = kinds.iter().filter(|k| k.1 == Kind::Pickup).count();
    assert_eq!(npcs, 4);
    assert_eq!(pickups, Arena::standard().pickup_spots().len());
    assert_eq!(kinds[0].0, NetId(1));
    let (_, id) = spawn_player(&mut world, "ann");
    assert_eq!(id, NetId(9));
    assert_eq!(world.resource::<SimClock>().dt, 1.0 / 60.0);
}

#[test]
fn projectiles_kill_score_and_respawn() {
    let config = no_npcs();
    let (mut world, mut schedule) = room(&config);
    let (shooter, shooter_id) = spawn_player(&mut world, "shooter");
    let (victim, victim_id) = spawn_player(&mut world, "victim");
    world.get_mut::<Position>(shooter).unwrap().0 = Vec2::new(-160.0, 100.0);
    world.get_mut::<Position>(victim).unwrap().0 = Vec2::new(100.0, 100.0);
    *world.get_mut::<PlayerInput>(shooter).unwrap() =
        PlayerInput { movement: Vec2::ZERO, aim: 0.0, buttons: Buttons::FIRE };

    let mut killed_at = None;
    let mut hits_seen = Vec::new();
    for t in 0..300 {
        let events = tick(&mut world, &mut schedule);
        hits_seen.push(world.get::<Health>(victim).unwrap().0);
        if events.contains(&ArenaEvent::Killed { killer: Some(shooter_id), victim: victim_id }) {
            killed_at = Some(t);
            break;
        }
        assert!(events.is_empty(), "{events:?}");
    }
    let killed_at = killed_at.expect("the victim died");
    // Five hits: health went 100, 80, 60, 40, 20, 0.
    let mut distinct = hits_seen.clone();
    distinct.dedup();
    assert_eq!(distinct, vec![100.0, 80.0, 60.0, 40.0, 20.0, 0.0]);
    assert!(killed_at > 40, "hits are spaced by the fire cooldown: {killed_at}");
    assert_eq!(world.get::<Score>(shooter).unwrap(), &Score { kills: 1, deaths: 0 });
    assert_eq!(world.get::<Score>(victim).unwrap(), &Score { kills: 0, deaths: 1 });
    assert!(world.get::<Dead>(victim).is_some());

    // Stop shooting; the victim stays dead for respawn_ticks.
    *world.get_mut::<PlayerInput>(shooter).unwrap() = PlayerInput::default();
    for _ in 0..ArenaRules::new(&config).respawn_ticks - 1 {
        let events = tick(&mut world, &mut schedule);
        assert!(events.is_empty(), "{events:?}");
        assert!(world.get::<Dead>(victim).is_some());
        assert_eq!(world.get::<Health>(victim).unwrap().0, 0.0);
    }
    let events = tick(&mut world, &mut schedule);
    assert_eq!(events, vec![ArenaEvent::Respawned { entity: victim_id }]);
    assert!(world.get::<Dead>(victim).is_none());
    assert_eq!(world.get::<Health>(victim).unwrap().0, MAX_HEALTH);
    let at = world.get::<Position>(victim).unwrap().0;
    assert!(Arena::standard().spawn_points().contains(&at));
    assert!(at.distance(Vec2::new(-160.0, 100.0)) > 300.0, "respawned away from the shooter");
}

#[test]
fn projectiles_stop_at_obstacles_and_never_hit_their_owner() {
    let (mut world, mut schedule) = room(&no_npcs());
    let (shooter, _) = spawn_player(&mut world, "a");
    let (victim, _) = spawn_player(&mut world, "b");
    // The central block stands between them.
    world.get_mut::<Position>(shooter).unwrap().0 = Vec2::new(-160.0, 0.0);
    world.get_mut::<Position>(victim).unwrap().0 = Vec2::new(160.0, 0.0);
    *world.get_mut::<PlayerInput>(shooter).unwrap() =
        PlayerInput { movement: Vec2::ZERO, aim: 0.0, buttons: Buttons::FIRE };
    for _ in 0..200 {
        tick(&mut world, &mut schedule);
    }
    assert_eq!(world.get::<Health>(victim).unwrap().0, MAX_HEALTH);
    assert_eq!(world.get::<Health>(shooter).unwrap().0, MAX_HEALTH);
    let mut q = world.query::<&Kind>();
    let flying = q.iter(&world).filter(|k| **k == Kind::Projectile).count();
    assert!(flying <= 3, "projectiles are removed at the block: {flying}");
}

#[test]
fn a_projectile_replicates_its_launch_and_clients_compute_its_flight() {
    let (mut world, mut schedule) = room(&no_npcs());
    let (shooter, _) = spawn_player(&mut world, "a");
    // A clear lane along the bottom edge: 20 ticks of flight stay clear of every obstacle.
    world.get_mut::<Position>(shooter).unwrap().0 = Vec2::new(-550.0, -370.0);
    *world.get_mut::<PlayerInput>(shooter).unwrap() =
        PlayerInput { movement: Vec2::ZERO, aim: 0.05, buttons: Buttons::FIRE };
    tick(&mut world, &mut schedule);
    *world.get_mut::<PlayerInput>(shooter).unwrap() = PlayerInput::default();
    let reg = registry();
    let shot = |world: &mut World| {
        let state = reg.capture(world);
        let now = world.resource::<SimClock>().tick;
        let e = state.iter().find(|e| reg.get::<Kind>(*e) == Some(Kind::Projectile))?;
        let (origin, aim) = (reg.get::<Position>(e)?.0, reg.get::<Aim>(e)?.0);
        Some((state.clone(), origin, aim, reg.get::<Launched>(e)?, now))
    };
    let (first, origin, aim, launched, at) = shot(&mut world).expect("a projectile");
    assert_eq!(launched.ticks_until(at), 0, "first shown at its launch point");
    let dt = 1.0 / f32::from(GameConfig::default().tick_rate);
    for k in 1..=20u32 {
        tick(&mut world, &mut schedule);
        let (state, o, a, l, now) = shot(&mut world).expect("still flying");
        // Nothing replicated about it changes while it flies: its deltas are empty.
        assert_eq!((o, a, l), (origin, aim, launched));
        assert_eq!(state.iter().count(), first.iter().count());
        assert_eq!(l.ticks_until(now), k);
        // The rule a client draws it by is where the server has it.
        let mut q = world.query::<(&Kind, &Flight)>();
        let flight = q.iter(&world).find(|(k, _)| **k == Kind::Projectile).unwrap().1.0;
        let drawn = projectile_position(o, a, l.ticks_until(now) as f32 * dt);
        assert!(drawn.distance(flight) < 0.5, "tick {k}: drawn {drawn}, server {flight}");
    }
    // The launch tick survives the wire's modulus and a hostile value stays in range.
    let mut q = [0i32];
    Launched::at(crate::tick::Tick(5_000)).quantize(&mut q);
    assert_eq!(Launched::dequantize(&q).ticks_until(crate::tick::Tick(5_003)), 3);
    assert_eq!(Launched::dequantize(&[-7]).0 as u32, LAUNCH_TICK_MODULUS - 7);
}

#[test]
fn pickups_heal_and_come_back_with_a_new_id() {
    let (mut world, mut schedule) = room(&no_npcs());
    let (player, _) = spawn_player(&mut world, "p");
    let spot = Arena::standard().pickup_spots()[0];
    world.get_mut::<Position>(player).unwrap().0 = spot + Vec2::new(0.0, -60.0);
    world.get_mut::<Health>(player).unwrap().0 = 30.0;
    let pickup_at = |world: &mut World| {
        let mut q = world.query::<(&NetId, &Position, &Kind)>();
        q.iter(world).find(|(_, p, k)| **k == Kind::Pickup && p.0 == spot).map(|(i, _, _)| *i)
    };
    let first = pickup_at(&mut world).expect("a pickup on spot 0");
    *world.get_mut::<PlayerInput>(player).unwrap() =
        PlayerInput { movement: Vec2::Y, ..PlayerInput::default() };
    for _ in 0..30 {
        tick(&mut world, &mut schedule);
    }
    assert_eq!(world.get::<Health>(player).unwrap().0, 30.0 + PICKUP_HEAL);
    assert_eq!(pickup_at(&mut world), None);
    // Step away and wait for it.
    *world.get_mut::<PlayerInput>(player).unwrap() = PlayerInput::default();
    world.get_mut::<Position>(player).unwrap().0 = spot + Vec2::new(0.0, -100.0);
    for _ in 0..u32::from(ticks_for(PICKUP_RESPAWN_SECS, 1.0 / 60.0)) {
        tick(&mut world, &mut schedule);
    }
    let second = pickup_at(&mut world).expect("the pickup came back");
    assert!(second > first, "{second} is a new id after {first}");
}

/// Scripted inputs for player `p` at tick `t`.
fn scripted(p: usize, t: u32) -> PlayerInput {
    let dirs = [Vec2::X, Vec2::Y, Vec2::NEG_X, Vec2::NEG_Y];
    let phase = (t / 45) as usize + p;
    let mut buttons = Buttons::default();
    if t % 3 == p as u32 {
        buttons = buttons.with(Buttons::FIRE);
    }
    if t % 100 == 7 * p as u32 {
        buttons = buttons.with(Buttons::DASH);
    }
    PlayerInput { movement: dirs[phase % 4] * 0.9, aim: t as f32 * 0.05 + p as f32, buttons }
}

fn run_match(seed: u64) -> (u64, Vec<ArenaEvent>) {
    let config = GameConfig { seed, ..GameConfig::default() };
    let (mut world, mut schedule) = room(&config);
    let players = [spawn_player(&mut world, "a").0, spawn_player(&mut world, "b").0];
    let mut events = Vec::new();
    let start = state_hash(&mut world);
    for t in 0..600 {
        for (p, &e) in players.iter().enumerate() {
            *world.get_mut::<PlayerInput>(e).unwrap() = scripted(p, t);
        }
        events.extend(tick(&mut world, &mut schedule));
    }
    assert_eq!(world.resource::<SimClock>().tick, Tick(600));
    let end = state_hash(&mut world);
    assert_ne!(start, end, "the world changed");
    (end, events)
}

#[test]
fn same_seed_same_game_other_seed_other_game() {
    let (a, events_a) = run_match(42);
    let (b, events_b) = run_match(42);
    assert_eq!(a, b);
    assert_eq!(events_a, events_b);
    let (c, _) = run_match(43);
    assert_ne!(a, c, "the seed drives the NPCs");
}

#[test]
fn npcs_fight_a_lone_player() {
    let (mut world, mut schedule) = room(&GameConfig::default());
    spawn_player(&mut world, "lonely");
    let mut kills = 0;
    for _ in 0..(60 * 60) {
        kills += tick(&mut world, &mut schedule)
            .iter()
            .filter(|e| matches!(e, ArenaEvent::Killed { .. }))
            .count();
    }
    assert!(kills > 0, "a minute with four bots sees a kill");
    // Nobody ever stands inside an obstacle.
    let arena = Arena::standard();
    let mut q = world.query::<(&Position, &Kind)>();
    for (p, k) in q.iter(&world) {
        if k.is_combatant() {
            assert!(arena.is_free(p.0, PLAYER_RADIUS - 0.05), "{k:?} at {}", p.0);
        }
    }
}

#[test]
fn despawned_player_leaves_the_state() {
    let (mut world, _) = room(&no_npcs());
    let (e, id) = spawn_player(&mut world, "x");
    assert!(registry().capture(&mut world).get(id).is_some());
    ArenaGame::despawn_player(&mut world, e);
    assert!(registry().capture(&mut world).get(id).is_none());
}

#[test]
fn respawn_takes_the_same_time_at_any_tick_rate() {
    for tick_rate in [30u16, 60, 120] {
        let config = GameConfig { tick_rate, npcs: 0, seed: 1 };
        let (mut world, mut schedule) = room(&config);
        let (victim, victim_id) = spawn_player(&mut world, "v");
        let killed_at = world.resource::<SimClock>().tick;
        world
            .entity_mut(victim)
            .insert(Dead { respawn_at: killed_at.plus(ArenaRules::new(&config).respawn_ticks) });
        world.get_mut::<Health>(victim).unwrap().0 = 0.0;
        let mut ticks = 0u32;
        loop {
            ticks += 1;
            if tick(&mut world, &mut schedule)
                .contains(&ArenaEvent::Respawned { entity: victim_id })
            {
                break;
            }
            assert!(ticks < 1_000, "no respawn at {tick_rate} Hz");
        }
        let secs = ticks as f32 / f32::from(tick_rate);
        assert!(
            (secs - RESPAWN_SECS).abs() <= 1.5 / f32::from(tick_rate),
            "{tick_rate} Hz: {secs} s"
        );
    }
}

#[test]
fn a_saved_match_goes_on_exactly() {
    crate::room::check_a_saved_match_goes_on_exactly::<ArenaGame>(|rng| {
        let r = rng.next_u64();
        let axis = |shift: u32| ((r >> shift) % 3) as i8 - 1;
        let mut buttons = Buttons::default();
        if r.is_multiple_of(4) {
            buttons = buttons.with(Buttons::FIRE);
        }
        if r % 30 == 1 {
            buttons = buttons.with(Buttons::DASH);
        }
        ArenaInput { movement: [axis(8) * 127, axis(16) * 127], aim: (r >> 32) as u16, buttons }
    });
}

/// Lag compensation looks back up to the rewind cap: a restored room must see the same past.
#[test]
fn the_rewind_history_survives_a_restore() {
    use crate::rewind::RewindHistory;
    use crate::room::{RoomCore, RoomSettings};
    let settings = RoomSettings {
        id: "r".into(),
        tick_rate: 60,
        ticks_per_snapshot: 2,
        capacity: 4,
        interest_radius: 400.0,
        resume_grace_ticks: 60,
        idle_close_ticks: 6_000,
        npcs: 4,
        seed: 3,
        max_rewind_ms: 200,
        client_kbps: 0,
    };
    let mut a = RoomCore::<ArenaGame>::new(settings);
    for _ in 0..40 {
        a.step();
    }
    let mut b = RoomCore::<ArenaGame>::restore(&a.save().unwrap()).unwrap();
    let history = |room: &mut RoomCore<ArenaGame>| {
        let world = room.world_mut();
        let ids: Vec<NetId> = world.query::<&NetId>().iter(world).copied().collect();
        let h = world.resource::<RewindHistory<Position>>();
        let ticks: Vec<Tick> = h.ticks().collect();
        let mut values: Vec<(NetId, Tick, Position)> = Vec::new();
        for &t in &ticks {
            values.extend(ids.iter().filter_map(|&id| h.at(id, t).map(|p| (id, t, *p))));
        }
        values.sort_by_key(|(id, t, _)| (*id, t.0));
        (ticks, values)
    };
    let (ticks, values) = history(&mut a);
    assert_eq!(ticks.len(), 13, "the cap (12 ticks at 200 ms) and now");
    assert!(values.len() >= 4 * 13, "every NPC at every tick");
    assert_eq!(history(&mut b), (ticks, values));
}
