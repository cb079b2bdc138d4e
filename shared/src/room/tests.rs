//! The room core with a minimal game of its own: dots that move, and a scoreboard entity with
//! no position.

use bevy_ecs::prelude::*;
use bevy_ecs::world::EntityWorldMut;
use glam::Vec2;
use serde::{Deserialize, Serialize};

use super::*;
use crate::codec::{decode_server, encode_inputs};
use crate::game::{IdleBot, NetIdAllocator, NoPrediction, StandingRow, TickSet};
use crate::registry::{Registrar, RegistryError, Replicate};

struct Dots;

#[derive(Component, Replicate, Clone, Copy, Debug, Default, PartialEq)]
struct Spot(#[quantize(position)] Vec2);

#[derive(Component, Replicate, Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Board {
    moves: u16,
}

#[derive(Component, Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Step([i8; 2]);

impl Game for Dots {
    const NAME: &'static str = "dots";
    const DESCRIPTION: &'static str = "the room core's tests";
    type Input = Step;
    type Event = u32;
    type Prediction = NoPrediction<Step>;
    type Bot = IdleBot;

    fn replicate(r: &mut impl Registrar) -> Result<(), RegistryError> {
        r.component::<Spot>()?;
        r.component::<Board>()?;
        r.position::<Spot>()
    }

    fn build(world: &mut World, schedule: &mut Schedule, _: &GameConfig) {
        let id = world.resource_mut::<NetIdAllocator>().next();
        world.spawn((id, Board::default()));
        schedule.add_systems(
            (|mut q: Query<'_, '_, (&Step, &mut Spot)>, mut b: Query<'_, '_, &mut Board>| {
                for (step, mut spot) in &mut q {
                    if step.0 != [0, 0] {
                        spot.0 += Vec2::new(f32::from(step.0[0]), f32::from(step.0[1]));
                        for mut board in &mut b {
                            board.moves += 1;
                        }
                    }
                }
            })
            .in_set(TickSet::Simulate),
        );
    }

    fn spawn_player(world: &mut World, name: &str) -> Entity {
        let id = world.resource_mut::<NetIdAllocator>().next();
        let x = if name == "far" { 10_000.0 } else { 0.0 };
        world.spawn((id, Spot(Vec2::new(x, 0.0)), Step::default())).id()
    }

    fn apply_input(entity: &mut EntityWorldMut<'_>, input: &Step) {
        entity.insert(*input);
    }

    fn standings(_: &mut World) -> Standings {
        Standings { columns: vec![], rows: Vec::<StandingRow>::new() }
    }
}

fn settings() -> RoomSettings {
    RoomSettings {
        id: "t".into(),
        tick_rate: 60,
        ticks_per_snapshot: 1,
        capacity: 4,
        interest_radius: 500.0,
        resume_grace_ticks: 10,
        idle_close_ticks: 100,
        npcs: 0,
        seed: 1,
        max_rewind_ms: crate::rewind::DEFAULT_MAX_REWIND_MS,
    }
}

/// The ids in the newest full snapshot sent to `client`.
fn seen(outputs: &[Output], registry: &ReplicationRegistry, client: ClientId) -> Vec<NetId> {
    let bytes = outputs
        .iter()
        .rev()
        .find_map(|o| match o {
            Output::Snapshot { client: c, bytes, full: true, .. } if *c == client => Some(bytes),
            _ => None,
        })
        .expect("a full snapshot");
    let Ok(ServerMessage::Snapshot(s)) = decode_server(bytes) else { panic!("not a snapshot") };
    let state = crate::snapshot::decode_full(registry, &s.body).expect("decodes");
    state.ids().to_vec()
}

fn drain(core: &mut RoomCore<Dots>) -> Vec<Output> {
    std::iter::from_fn(|| core.poll_output()).collect()
}

#[test]
fn entities_without_a_position_are_everyones_and_the_rest_is_by_interest() {
    let mut core = RoomCore::<Dots>::new(settings());
    let near = core.join(ClientId(1), "near", "s", None, || "a".into()).unwrap();
    let far = core.join(ClientId(2), "far", "s", None, || "b".into()).unwrap();
    core.step();
    let out = drain(&mut core);
    let board = NetId(1);
    let registry = game::registry::<Dots>();
    assert_eq!(seen(&out, &registry, ClientId(1)), [board, near.entity]);
    assert_eq!(seen(&out, &registry, ClientId(2)), [board, far.entity]);
}

#[test]
fn the_delta_history_spans_about_a_second_within_its_bounds() {
    assert_eq!(history_snapshots(30.0), HISTORY_LEN);
    assert_eq!(history_snapshots(60.0), HISTORY_LEN);
    assert_eq!(history_snapshots(10.0), 11);
    assert_eq!(history_snapshots(1.0), MIN_HISTORY);
    assert_eq!(history_snapshots(0.0), MIN_HISTORY);
    // A room ticking (and snapshotting) once a second remembers a few snapshots per client.
    let mut slow = settings();
    slow.tick_rate = 1;
    let mut core = RoomCore::<Dots>::new(slow);
    core.join(ClientId(1), "p", "s", None, || "a".into()).unwrap();
    for _ in 0..10 {
        core.step();
    }
    drain(&mut core);
    assert_eq!(core.clients[&ClientId(1)].replica.kept(), MIN_HISTORY);
}

#[test]
fn clients_that_see_the_same_entities_share_one_view() {
    let mut settings = settings();
    settings.interest_radius = 5_000.0;
    let mut core = RoomCore::<Dots>::new(settings);
    for i in 1..=3 {
        core.join(ClientId(i), &format!("p{i}"), "s", None, move || format!("t{i}")).unwrap();
    }
    core.step();
    drain(&mut core);
    let views: Vec<_> = (1..=3)
        .map(|i| core.clients[&ClientId(i)].replica.last_view().expect("a snapshot").clone())
        .collect();
    assert!(Arc::ptr_eq(&views[0], &views[1]) && Arc::ptr_eq(&views[1], &views[2]));
    assert_eq!(views[0].iter().count(), 4, "the board and three players");
}

#[test]
fn inputs_are_applied_once_and_echoed_and_bad_ones_close_the_session() {
    let mut core = RoomCore::<Dots>::new(settings());
    core.join(ClientId(1), "p", "s", None, || "a".into()).unwrap();
    let frames = encode_inputs(&[Step([1, 0]), Step([1, 0])]).unwrap();
    core.input(
        ClientId(1),
        &InputBatch { ack: None, first_seq: 0, frames: frames.clone(), view: None },
        7,
    );
    // The same frames again (a redundant copy) change nothing.
    core.input(ClientId(1), &InputBatch { ack: None, first_seq: 0, frames, view: None }, 8);
    // The first frame runs ANCHOR_LEAD_TICKS after the next tick.
    for _ in 0..4 + super::ANCHOR_LEAD_TICKS {
        core.step();
    }
    let board = core.world_mut().query::<&Board>().single(core.world_mut()).copied();
    assert_eq!(board.map(|b| b.moves).ok(), Some(4), "the last input repeats while none arrives");
    let out = drain(&mut core);
    let arrivals: Vec<u64> = out
        .iter()
        .flat_map(|o| match o {
            Output::Snapshot { arrivals, .. } => arrivals.clone(),
            _ => Vec::new(),
        })
        .collect();
    assert_eq!(arrivals, [7, 7], "each applied frame is reported once, with its arrival");
    core.input(
        ClientId(1),
        &InputBatch { ack: None, first_seq: 2, frames: vec![1, 0xff], view: None },
        9,
    );
    let out = drain(&mut core);
    assert!(
        matches!(&out[..], [Output::Close { reason: DisconnectReason::ProtocolError, .. }]),
        "{out:?}"
    );
    assert_eq!(core.stats().input_errors, 1);
}

#[test]
fn a_full_room_refuses_and_a_leaver_is_forgotten() {
    let mut core = RoomCore::<Dots>::new(RoomSettings { capacity: 1, ..settings() });
    core.join(ClientId(1), "p", "s", None, || "a".into()).unwrap();
    assert_eq!(core.join(ClientId(2), "q", "s", None, || "b".into()), Err(JoinRefused::Full));
    // Resuming takes the player over and closes the old session.
    let again = core.join(ClientId(3), "p", "s", Some("a"), || unreachable!()).unwrap();
    assert!(again.resumed);
    let out = drain(&mut core);
    assert!(out.iter().any(|o| matches!(
        o,
        Output::Close { client: ClientId(1), reason: DisconnectReason::Replaced, .. }
    )));
    core.disconnect(ClientId(3), true);
    let out = drain(&mut core);
    assert!(out.contains(&Output::Forget { token: "a".into() }), "{out:?}");
    assert_eq!(core.player_count(), 0);
    // Idle once empty for `idle_close_ticks` steps.
    for _ in 0..100 {
        assert!(!core.is_idle());
        core.step();
    }
    core.step();
    assert!(core.is_idle());
}

#[test]
fn names_are_unique_in_a_room_and_fit_with_their_suffix() {
    let mut core = RoomCore::<Dots>::new(RoomSettings { capacity: 8, ..settings() });
    let long = "x".repeat(crate::protocol::MAX_NAME_CHARS);
    for (i, token) in ["a", "b", "c"].into_iter().enumerate() {
        core.join(ClientId(i as u32 + 1), &long, token, None, || token.into()).unwrap();
    }
    core.join(ClientId(9), "ANN", "d", None, || "d".into()).unwrap();
    core.join(ClientId(10), "ann", "e", None, || "e".into()).unwrap();
    let names: Vec<String> = drain(&mut core)
        .into_iter()
        .filter_map(|o| match o {
            Output::Send { bytes, .. } => match decode_server(&bytes) {
                Ok(ServerMessage::Event(crate::protocol::RoomEvent::Joined { name, .. })) => {
                    Some(name)
                }
                _ => None,
            },
            _ => None,
        })
        .collect();
    let want_2 = format!("{} (2)", "x".repeat(crate::protocol::MAX_NAME_CHARS - 4));
    assert!(names.contains(&want_2), "{names:?}");
    assert!(names.iter().all(|n| n.chars().count() <= crate::protocol::MAX_NAME_CHARS));
    assert!(names.contains(&"ann (2)".to_owned()), "case does not make a name new: {names:?}");
}
