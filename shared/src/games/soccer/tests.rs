//! Whole-game tests: kicks, goals and kick-offs, teams, NPCs that score, determinism, the pitch's
//! bounds, prediction against the server, and a bot playing through a real client.

use super::*;
use crate::client::{Client, ClientConfig};
use crate::codec::decode_client;
use crate::game::{BotPolicy, GameEvents, Prediction, SimClock};
use crate::ids::ClientId;
use crate::protocol::ClientMessage;
use crate::registry::ReplicationRegistry;
use crate::room::{Output, RoomCore, RoomSettings};

fn room(config: &GameConfig) -> (World, Schedule) {
    let mut world = World::new();
    let mut schedule = Schedule::default();
    crate::game::install::<SoccerGame>(&mut world, &mut schedule, config);
    (world, schedule)
}

fn registry() -> ReplicationRegistry {
    crate::game::registry::<SoccerGame>()
}

fn spawn_player(world: &mut World, name: &str) -> (Entity, NetId) {
    crate::game::spawn_player::<SoccerGame>(world, name)
}

fn state_hash(world: &mut World) -> u64 {
    crate::game::state_hash::<SoccerGame>(world)
}

/// Runs one tick and returns the events it produced.
fn tick(world: &mut World, schedule: &mut Schedule) -> Vec<SoccerEvent> {
    schedule.run(world);
    std::mem::take(&mut world.resource_mut::<GameEvents<SoccerEvent>>().0)
}

/// Hands `input` to a player's entity, as the room does before a tick.
fn give(world: &mut World, entity: Entity, input: SoccerInput) {
    SoccerGame::apply_input(&mut world.entity_mut(entity), &input);
}

fn no_npcs() -> GameConfig {
    GameConfig { npcs: 0, ..GameConfig::default() }
}

fn ball_entity(world: &mut World) -> Entity {
    world.query_filtered::<Entity, With<Ball>>().single(world).expect("one ball")
}

fn put_ball(world: &mut World, at: Vec2, velocity: Vec2) {
    let ball = ball_entity(world);
    world.get_mut::<Position>(ball).unwrap().0 = at;
    world.get_mut::<Velocity>(ball).unwrap().0 = velocity;
}

fn ball_at(world: &mut World) -> (Vec2, Vec2) {
    let ball = ball_entity(world);
    (world.get::<Position>(ball).unwrap().0, world.get::<Velocity>(ball).unwrap().0)
}

fn match_score(world: &mut World) -> MatchScore {
    *world.query::<&MatchScore>().single(world).expect("one score")
}

/// Puts a player at `at`, facing `facing`.
fn place(world: &mut World, player: Entity, at: Vec2, facing: f32) {
    world.get_mut::<Position>(player).unwrap().0 = at;
    world.get_mut::<Facing>(player).unwrap().0 = snap_angle(facing);
}

#[test]
fn registry_is_stable_with_position_first() {
    let a = registry();
    let b = registry();
    assert_eq!(a.index_of::<Position>().map(|i| i.0), Some(0));
    assert_eq!(a.position_offset(), Some(0));
    assert_eq!(a.len(), 8, "seven components and the engine's motion");
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert_ne!(
        a.fingerprint(),
        crate::game::registry::<crate::games::arena::ArenaGame>().fingerprint()
    );
}

#[test]
fn build_spawns_the_score_the_ball_and_alternating_npcs() {
    let (mut world, _) = room(&GameConfig::default());
    let state = registry().capture(&mut world);
    let r = registry();
    // The match entity first: a score and no position, so every client gets it.
    let first = state.entity(0);
    assert_eq!(first.id, NetId(1));
    assert_eq!(r.get::<MatchScore>(first), Some(MatchScore::default()));
    assert_eq!(r.position(first), None);
    let ball = state.entity(1);
    assert_eq!(r.get::<Role>(ball), Some(Role::Ball));
    assert_eq!(r.position(ball), Some(Vec2::ZERO));
    let teams: Vec<(Role, Team)> =
        state.iter().filter_map(|e| Some((r.get::<Role>(e)?, r.get::<Team>(e)?))).collect();
    assert_eq!(
        teams,
        [
            (Role::Npc, Team::Red),
            (Role::Npc, Team::Blue),
            (Role::Npc, Team::Red),
            (Role::Npc, Team::Blue)
        ]
    );
    // Red kicks off: its striker stands at the ball, Blue's outside the centre circle.
    let mut q = world.query::<(&Team, &FormationSlot, &Position)>();
    for (team, slot, p) in q.iter(&world) {
        if slot.0 == 0 {
            let d = p.0.length();
            assert!(
                if *team == Team::Red { d < 40.0 } else { d > CENTRE_CIRCLE_RADIUS },
                "{team:?} {}",
                p.0
            );
        }
    }
    let (_, id) = spawn_player(&mut world, "ann");
    assert_eq!(id, NetId(7));
    assert_eq!(world.resource::<SimClock>().dt, 1.0 / 60.0);
}

#[test]
fn a_kick_sends_the_ball_along_the_facing() {
    let (mut world, mut schedule) = room(&no_npcs());
    let (p, _) = spawn_player(&mut world, "ann");
    place(&mut world, p, Vec2::new(-25.0, 0.0), 0.0);
    put_ball(&mut world, Vec2::ZERO, Vec2::ZERO);
    give(&mut world, p, SoccerInput { kick: 255, ..SoccerInput::default() });
    tick(&mut world, &mut schedule);
    let (at, v) = ball_at(&mut world);
    assert!(v.x > 0.95 * MAX_KICK_SPEED && v.y.abs() < 1e-3, "{v}");
    assert!(at.x > 5.0, "{at}");
    // A kick is one tick: the next frames carry none, and the ball rolls on.
    give(
        &mut world,
        p,
        SoccerGame::repeat_input(&SoccerInput { kick: 255, ..SoccerInput::default() }),
    );
    for _ in 0..20 {
        tick(&mut world, &mut schedule);
    }
    let (at, v) = ball_at(&mut world);
    assert!(at.x > 150.0 && at.y.abs() < 1e-3 && v.x < 0.95 * MAX_KICK_SPEED, "{at} {v}");

    // Running diagonally and kicking in the same tick: the facing turns first.
    place(&mut world, p, Vec2::new(-15.0, -15.0), 0.0);
    put_ball(&mut world, Vec2::ZERO, Vec2::ZERO);
    give(&mut world, p, SoccerInput::new(Vec2::new(1.0, 1.0), 40, false));
    tick(&mut world, &mut schedule);
    let (_, v) = ball_at(&mut world);
    let angle = heading(v);
    assert!((angle - std::f32::consts::FRAC_PI_4).abs() < 0.01, "{v}");
    assert!(v.length() < 0.7 * MAX_KICK_SPEED, "a soft kick: {v}");

    // Out of reach nothing happens; behind the kicker neither; the cooldown holds.
    let ticks = u32::from(SoccerRules::new(&no_npcs()).kick_cooldown_ticks) + 1;
    for _ in 0..ticks {
        give(&mut world, p, SoccerInput::default());
        tick(&mut world, &mut schedule);
    }
    place(&mut world, p, Vec2::new(-100.0, 0.0), 0.0);
    put_ball(&mut world, Vec2::ZERO, Vec2::ZERO);
    give(&mut world, p, SoccerInput { kick: 255, ..SoccerInput::default() });
    tick(&mut world, &mut schedule);
    assert_eq!(ball_at(&mut world).1, Vec2::ZERO, "out of reach");
    place(&mut world, p, Vec2::new(25.0, 0.0), 0.0);
    for _ in 0..ticks {
        give(&mut world, p, SoccerInput { kick: 255, ..SoccerInput::default() });
        tick(&mut world, &mut schedule);
    }
    assert_eq!(ball_at(&mut world).1, Vec2::ZERO, "behind");
}

#[test]
fn a_kick_pressed_just_before_the_ball_arrives_is_taken() {
    let (mut world, mut schedule) = room(&no_npcs());
    let (p, _) = spawn_player(&mut world, "ann");
    place(&mut world, p, Vec2::new(-60.0, 0.0), 0.0);
    put_ball(&mut world, Vec2::ZERO, Vec2::ZERO);
    give(&mut world, p, SoccerInput::new(Vec2::X, 255, false));
    tick(&mut world, &mut schedule);
    assert_eq!(ball_at(&mut world).1, Vec2::ZERO, "not yet in reach");
    give(&mut world, p, SoccerInput::new(Vec2::X, 0, false));
    // In reach (34 units) seven ticks later, inside the 9-tick buffer.
    for _ in 0..7 {
        tick(&mut world, &mut schedule);
    }
    assert!(ball_at(&mut world).1.x > 0.8 * MAX_KICK_SPEED, "the buffered kick went off");
}

#[test]
fn a_goal_scores_credits_the_scorer_and_kicks_off() {
    let config = no_npcs();
    let (mut world, mut schedule) = room(&config);
    let (ann, ann_id) = spawn_player(&mut world, "ann");
    let (bob, _) = spawn_player(&mut world, "bob");
    assert_eq!(world.get::<Team>(ann), Some(&Team::Red));
    assert_eq!(world.get::<Team>(bob), Some(&Team::Blue));
    // Red attacks the right goal.
    place(&mut world, ann, Vec2::new(420.0, 30.0), 0.0);
    put_ball(&mut world, Vec2::new(445.0, 30.0), Vec2::ZERO);
    give(&mut world, ann, SoccerInput { kick: 255, ..SoccerInput::default() });
    let mut events = tick(&mut world, &mut schedule);
    give(&mut world, ann, SoccerInput::default());
    for _ in 0..20 {
        if !events.is_empty() {
            break;
        }
        events = tick(&mut world, &mut schedule);
    }
    assert_eq!(events, [SoccerEvent::Goal { team: Team::Red, scorer: Some(ann_id) }]);
    assert_eq!(match_score(&mut world), MatchScore { red: 1, blue: 0 });
    assert_eq!(world.get::<Goals>(ann), Some(&Goals(1)));
    assert_eq!(world.get::<Goals>(bob), Some(&Goals(0)));
    let (in_net, _) = ball_at(&mut world);
    assert!(in_net.x > HALF_LENGTH && in_net.y.abs() < GOAL_HALF_WIDTH, "{in_net}");

    // Play stops; after the delay, the kick-off: Blue (who conceded) kicks off.
    let rules = SoccerRules::new(&config);
    place(&mut world, bob, Vec2::new(200.0, -200.0), 0.0);
    for _ in 1..rules.kickoff_delay_ticks {
        assert_eq!(tick(&mut world, &mut schedule), []);
        assert_eq!(ball_at(&mut world).0, in_net, "the ball rests in the net");
    }
    assert_eq!(tick(&mut world, &mut schedule), [SoccerEvent::Kickoff]);
    assert_eq!(ball_at(&mut world), (Vec2::ZERO, Vec2::ZERO));
    assert_eq!(world.get::<Position>(ann).unwrap().0, formation_spot(Team::Red, 0, false));
    assert_eq!(world.get::<Position>(bob).unwrap().0, formation_spot(Team::Blue, 0, true));
    assert_eq!(world.get::<Facing>(bob).unwrap().0, snap_angle(std::f32::consts::PI));

    // An own goal: Bob (Blue defends the right goal) puts it into his own net.
    place(&mut world, bob, Vec2::new(420.0, 0.0), 0.0);
    put_ball(&mut world, Vec2::new(445.0, 0.0), Vec2::ZERO);
    give(&mut world, bob, SoccerInput { kick: 255, ..SoccerInput::default() });
    let goal = (0..20).find_map(|_| {
        let events = tick(&mut world, &mut schedule);
        give(&mut world, bob, SoccerInput::default());
        events.into_iter().next()
    });
    assert_eq!(goal, Some(SoccerEvent::Goal { team: Team::Red, scorer: None }));
    assert_eq!(match_score(&mut world), MatchScore { red: 2, blue: 0 });
    assert_eq!(world.get::<Goals>(bob), Some(&Goals(0)));
    let standings = SoccerGame::standings(&mut world);
    assert_eq!(standings.columns, ["goals"]);
    let rows: Vec<(&str, Vec<i64>)> =
        standings.rows.iter().map(|r| (r.label.as_str(), r.values.clone())).collect();
    assert_eq!(rows, [("red", vec![1]), ("blue", vec![0])]);
}

#[test]
fn newcomers_join_the_smaller_team_on_a_free_spot() {
    let (mut world, _) = room(&GameConfig { npcs: 3, ..GameConfig::default() });
    // NPCs: Red, Blue, Red.
    let teams: Vec<Team> = ["a", "b", "c", "d"]
        .iter()
        .map(|n| {
            let (e, _) = spawn_player(&mut world, n);
            *world.get::<Team>(e).unwrap()
        })
        .collect();
    assert_eq!(teams, [Team::Blue, Team::Red, Team::Blue, Team::Red]);
    let mut q = world.query::<(&Team, &FormationSlot, &Position)>();
    let mut spots: Vec<(Team, u16, [i32; 2])> =
        q.iter(&world).map(|(t, s, p)| (*t, s.0, crate::quantize::position2(p.0))).collect();
    spots.sort_unstable();
    let n = spots.len();
    assert_eq!(n, 7);
    spots.dedup_by_key(|s| (s.0, s.1));
    assert_eq!(spots.len(), n, "no two players share a slot");
    let mut places: Vec<[i32; 2]> = spots.iter().map(|s| s.2).collect();
    places.sort_unstable();
    places.dedup();
    assert_eq!(places.len(), n, "nor a spot");
    // A leaver's slot is the next newcomer's: "b" (Red, slot 2) leaves, "e" takes it.
    let mut q = world.query::<(Entity, &Team, &FormationSlot, &Role)>();
    let (b, _, slot, _) = q
        .iter(&world)
        .filter(|(_, t, _, r)| **t == Team::Red && **r == Role::Player)
        .min_by_key(|(_, _, s, _)| s.0)
        .map(|(e, t, s, r)| (e, *t, *s, *r))
        .expect("a red player");
    assert_eq!(slot, FormationSlot(2));
    SoccerGame::despawn_player(&mut world, b);
    let (e, _) = spawn_player(&mut world, "e");
    assert_eq!(world.get::<Team>(e), Some(&Team::Red), "three a side again: a tie goes to Red");
    assert_eq!(world.get::<FormationSlot>(e), Some(&FormationSlot(2)));
}

/// Runs a match of `npcs` NPCs for `secs` seconds; returns its goal events.
fn npc_match(npcs: usize, seed: u64, secs: u32) -> Vec<SoccerEvent> {
    let config = GameConfig { npcs, seed, ..GameConfig::default() };
    let (mut world, mut schedule) = room(&config);
    let mut goals = Vec::new();
    for _ in 0..secs * 60 {
        goals.extend(
            tick(&mut world, &mut schedule)
                .into_iter()
                .filter(|e| matches!(e, SoccerEvent::Goal { .. })),
        );
    }
    let score = match_score(&mut world);
    assert_eq!(usize::from(score.red + score.blue), goals.len());
    goals
}

#[test]
fn npcs_score_within_two_minutes() {
    for seed in [1, 2, 3] {
        let goals = npc_match(4, seed, 120);
        assert!(!goals.is_empty(), "seed {seed}: a 2 v 2 of NPCs scores in two minutes");
        // Goals are credited to a scorer of the scoring team (own goals aside).
        assert!(goals.iter().any(|g| matches!(g, SoccerEvent::Goal { scorer: Some(_), .. })));
    }
}

/// Scripted inputs for player `p` at tick `t`: runs in turning directions, sprints in bursts,
/// kicks now and then.
fn scripted(p: usize, t: u32) -> SoccerInput {
    let dirs = [Vec2::X, Vec2::new(0.6, 0.8), Vec2::NEG_Y, Vec2::new(-1.0, 0.3), Vec2::ZERO];
    let dir = dirs[(t / 50) as usize % dirs.len()] * if p == 1 { -1.0 } else { 1.0 };
    let sprint = (t / 120) % 3 == p as u32;
    let kick = if t % 37 == 5 + p as u32 { (t % 255) as u8 } else { 0 };
    SoccerInput::new(dir, kick, sprint)
}

fn run_match(seed: u64) -> (u64, Vec<SoccerEvent>) {
    let config = GameConfig { seed, ..GameConfig::default() };
    let (mut world, mut schedule) = room(&config);
    let players = [spawn_player(&mut world, "a").0, spawn_player(&mut world, "b").0];
    let mut events = Vec::new();
    let start = state_hash(&mut world);
    for t in 0..1_800 {
        for (p, &e) in players.iter().enumerate() {
            give(&mut world, e, scripted(p, t));
        }
        events.extend(tick(&mut world, &mut schedule));
    }
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
    assert_ne!(a, c, "the seed drives where the NPCs aim");
}

#[test]
fn players_never_leave_the_pitch_and_the_ball_stays_in() {
    let (mut world, mut schedule) = room(&GameConfig { npcs: 6, seed: 9, ..GameConfig::default() });
    let players = [spawn_player(&mut world, "a").0, spawn_player(&mut world, "b").0];
    for t in 0..3_600 {
        for (p, &e) in players.iter().enumerate() {
            // Always sprinting for the lines.
            let mut input = scripted(p, t);
            input.sprint = true;
            give(&mut world, e, input);
        }
        tick(&mut world, &mut schedule);
        let mut q = world.query::<(&Position, &Role)>();
        for (p, role) in q.iter(&world) {
            if role.is_player() {
                assert!(on_pitch(p.0, PLAYER_RADIUS), "tick {t}: {role:?} at {}", p.0);
            } else {
                let inside = on_pitch(p.0, BALL_RADIUS)
                    || (p.0.y.abs() < GOAL_HALF_WIDTH && p.0.x.abs() <= HALF_LENGTH + GOAL_DEPTH);
                assert!(inside, "tick {t}: the ball at {}", p.0);
            }
        }
    }
}

#[test]
fn prediction_steps_exactly_as_the_server() {
    for tick_rate in [60u16, 30] {
        let config = GameConfig { npcs: 2, tick_rate, seed: 3 };
        let (mut world, mut schedule) = room(&config);
        let (e, id) = spawn_player(&mut world, "me");
        let reg = registry();
        let prediction = SoccerPrediction::new(tick_rate);
        let mut compared = 0;
        for t in 0..1_200 {
            let before = reg.capture(&mut world);
            let mut predicted = prediction.read(&reg, before.get(id).unwrap()).expect("readable");
            let input = scripted(0, t);
            give(&mut world, e, input);
            prediction.step(&mut predicted, &input);
            let events = tick(&mut world, &mut schedule);
            if events.contains(&SoccerEvent::Kickoff) {
                continue; // The kick-off moves everyone: a correction, not a misprediction.
            }
            let after = reg.capture(&mut world);
            let server = prediction.read(&reg, after.get(id).unwrap()).unwrap();
            assert_eq!(predicted, server, "{tick_rate} Hz, tick {t}, input {input:?}");
            compared += 1;
        }
        assert!(compared > 1_100);
    }
}

#[test]
fn durations_follow_the_tick_rate() {
    for tick_rate in [30u16, 60, 120] {
        let rules = SoccerRules::new(&GameConfig { tick_rate, ..GameConfig::default() });
        let secs = |ticks: u32| ticks as f32 / f32::from(tick_rate);
        assert!((secs(rules.kickoff_delay_ticks) - KICKOFF_DELAY_SECS).abs() < 0.02);
        assert!((secs(u32::from(rules.kick_cooldown_ticks)) - KICK_COOLDOWN_SECS).abs() < 0.02);
    }
}

#[test]
fn inputs_repeat_without_the_kick_and_skipped_kicks_survive() {
    let kick = SoccerInput { run: [127, 0], kick: 200, sprint: true };
    assert_eq!(SoccerGame::repeat_input(&kick), SoccerInput { kick: 0, ..kick });
    let mut next = SoccerInput { run: [0, 5], kick: 0, sprint: false };
    SoccerGame::merge_skipped(&kick, &mut next);
    assert_eq!(next, SoccerInput { run: [0, 5], kick: 200, sprint: false });
    assert!(
        SoccerGame::validate_input(&SoccerInput { run: [-128, -128], kick: 255, sprint: true })
            .is_ok()
    );
}

/// Drives a room and one bot's client in memory: the bot sees only its client's snapshots.
struct BotMatch {
    core: RoomCore<SoccerGame>,
    client: Client<SoccerGame>,
    bot: SoccerBot,
    now_us: u64,
}

impl BotMatch {
    fn new(behavior: &str) -> BotMatch {
        let settings = RoomSettings {
            id: "bots".into(),
            tick_rate: 60,
            ticks_per_snapshot: 2,
            capacity: 4,
            interest_radius: 2_000.0,
            resume_grace_ticks: 60,
            idle_close_ticks: u64::MAX,
            npcs: 0,
            seed: 5,
            max_rewind_ms: crate::rewind::DEFAULT_MAX_REWIND_MS,
            client_kbps: 0,
        };
        let mut core = RoomCore::<SoccerGame>::new(settings);
        core.join(ClientId(1), "bot", "bot", None, || "token".into()).expect("joins");
        let bot = SoccerBot::new(behavior, 11).expect("a behaviour");
        BotMatch { core, client: Client::new(ClientConfig::default()), bot, now_us: 0 }
    }

    fn step(&mut self) {
        self.core.step();
        self.now_us += 16_667;
        while let Some(out) = self.core.poll_output() {
            match out {
                Output::Send { bytes, .. } => {
                    self.client.handle_bytes(self.now_us, &bytes[..]).expect("decodes");
                }
                Output::Snapshot { bytes, .. } => {
                    self.client.handle_bytes(self.now_us, &bytes[..]).expect("decodes");
                }
                _ => {}
            }
        }
        while self.client.poll_event().is_some() {}
        let input = self.bot.think(&self.client, 60);
        self.client.push_input(input);
        while let Some(bytes) = self.client.poll_transmit() {
            if let Ok(ClientMessage::Input(batch)) = decode_client(&bytes) {
                self.core.input(ClientId(1), &batch, self.now_us);
            }
        }
    }
}

#[test]
fn a_playing_bot_scores_on_its_own_and_an_idle_one_stands() {
    let mut m = BotMatch::new("play");
    for _ in 0..60 * 30 {
        m.step();
    }
    let score = match_score(m.core.world_mut());
    assert!(score.red >= 1, "a lone Red bot scores in 30 s: {score:?}");
    assert_eq!(score.blue, 0);

    let mut m = BotMatch::new("idle");
    let start = {
        let w = m.core.world_mut();
        let mut q = w.query::<(&Position, &Role)>();
        q.iter(w).find(|(_, r)| **r == Role::Player).map(|(p, _)| p.0)
    };
    for _ in 0..120 {
        m.step();
    }
    let w = m.core.world_mut();
    let mut q = w.query::<(&Position, &Role)>();
    let end = q.iter(w).find(|(_, r)| **r == Role::Player).map(|(p, _)| p.0);
    assert_eq!(start, end);
}

#[test]
fn a_saved_match_goes_on_exactly() {
    crate::room::check_a_saved_match_goes_on_exactly::<SoccerGame>(|rng| {
        let r = rng.next_u64();
        let axis = |shift: u32| ((r >> shift) % 3) as i8 - 1;
        let kick = if r.is_multiple_of(8) { (r >> 40) as u8 } else { 0 };
        SoccerInput { run: [axis(8) * 127, axis(16) * 127], kick, sprint: r % 3 == 0 }
    });
}
