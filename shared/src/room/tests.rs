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
        client_kbps: 0,
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

/// Changes the replicated state (the board's move count) without anyone's input.
fn stir(core: &mut RoomCore<Dots>) {
    let world = core.world_mut();
    let mut board = world.query::<&mut Board>().single_mut(world).expect("one board");
    board.moves += 1;
}

/// The snapshots sent to `client` in `outputs`: (full, bytes).
fn snapshots_to(outputs: &[Output], client: ClientId) -> Vec<(bool, &[u8])> {
    outputs
        .iter()
        .filter_map(|o| match o {
            Output::Snapshot { client: c, bytes, full, .. } if *c == client => {
                Some((*full, bytes.as_slice()))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn despawns_leave_no_growing_trail_in_the_world() {
    // A standalone bevy world keeps a removal record for every component of every despawned
    // entity until `World::clear_trackers`: a room that never called it grew by each
    // projectile it ever despawned.
    let mut core = RoomCore::<Dots>::new(settings());
    core.join(ClientId(1), "p", "s", None, || "a".into()).unwrap();
    for _ in 0..600 {
        let world = core.world_mut();
        let shot = world.spawn((Spot(Vec2::ZERO), Step::default())).id();
        world.despawn(shot);
        core.step();
    }
    let kept: usize = core.world_mut().removed_components().iter().map(|(_, m)| m.len()).sum();
    // Two components per despawn, kept for at most two ticks.
    assert!(kept <= 4, "{kept} removal records kept after 600 despawns");
}

#[test]
fn a_silent_client_in_a_still_room_is_sent_nothing_new_until_something_changes() {
    let mut core = RoomCore::<Dots>::new(settings());
    core.join(ClientId(1), "p", "s", None, || "a".into()).unwrap();
    for _ in 0..10 {
        core.step();
    }
    let out = drain(&mut core);
    assert_eq!(snapshots_to(&out, ClientId(1)).len(), 1, "only the first snapshot: {out:?}");
    assert_eq!(core.replicator.skipped(), 9);
    // The board changes: the next snapshot goes (full: the client never acknowledged one),
    // then the room is still again.
    stir(&mut core);
    for _ in 0..5 {
        core.step();
    }
    let out = drain(&mut core);
    let sent = snapshots_to(&out, ClientId(1));
    assert_eq!(sent.len(), 1, "{out:?}");
    assert!(sent[0].0, "full");
    assert_eq!(core.replicator.skipped(), 13);
    // A second client joining changes the state (its entity): both are sent it.
    core.join(ClientId(2), "q", "s", None, || "b".into()).unwrap();
    core.step();
    let out = drain(&mut core);
    assert_eq!(snapshots_to(&out, ClientId(1)).len(), 1);
    assert_eq!(snapshots_to(&out, ClientId(2)).len(), 1);
}

#[test]
fn a_client_that_sends_inputs_is_sent_every_snapshot_of_a_still_room() {
    let mut core = RoomCore::<Dots>::new(settings());
    core.join(ClientId(1), "p", "s", None, || "a".into()).unwrap();
    core.join(ClientId(2), "q", "s", None, || "b".into()).unwrap();
    // Client 1 stands still (neutral input every tick); client 2 sends nothing.
    let still = encode_inputs(&[Step([0, 0])]).unwrap();
    let mut sent = Vec::new();
    for seq in 0..20 {
        let batch = InputBatch { ack: None, first_seq: seq, frames: still.clone(), view: None };
        core.input(ClientId(1), &batch, u64::from(seq));
        core.step();
        sent.push(snapshots_to(&drain(&mut core), ClientId(1)).len());
    }
    // Once its frames run (ANCHOR_LEAD_TICKS after the first tick), every tick's snapshot goes
    // to client 1: each echoes a newer input. Before, only those with a new margin report.
    let first_run = 1 + super::ANCHOR_LEAD_TICKS as usize;
    assert!(sent[first_run..].iter().all(|&n| n == 1), "{sent:?}");
    assert_eq!(sent[0], 1);
    let skipped_1 = sent.iter().filter(|&&n| n == 0).count() as u64;
    // Client 2 learns nothing from the echoes of others: the first snapshot only.
    assert_eq!(core.replicator.skipped(), 19 + skipped_1);
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
        // Something changes every tick, so every snapshot is sent.
        stir(&mut core);
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

/// Puts the entity `id` at `to` (spawning it with only a position when there is none).
fn place(core: &mut RoomCore<Dots>, id: Option<NetId>, to: Vec2) -> NetId {
    let world = core.world_mut();
    if let Some(id) = id {
        let mut q = world.query::<(&NetId, &mut Spot)>();
        for (net_id, mut spot) in q.iter_mut(world) {
            if *net_id == id {
                spot.0 = to;
            }
        }
        return id;
    }
    let id = world.resource_mut::<NetIdAllocator>().next();
    world.spawn((id, Spot(to)));
    id
}

#[test]
fn clients_in_one_interest_cell_share_its_view_which_holds_all_within_the_radius() {
    // Radius 500: cells of 62.5 units, each seeing what is within 500 of any of its points
    // (up to 544 units from its centre).
    let mut core = RoomCore::<Dots>::new(settings());
    let registry = game::registry::<Dots>();
    let a = core.join(ClientId(1), "a", "s", None, || "a".into()).unwrap().entity;
    let b = core.join(ClientId(2), "b", "s", None, || "b".into()).unwrap().entity;
    let c = core.join(ClientId(3), "c", "s", None, || "c".into()).unwrap().entity;
    let board = NetId(1);
    // `a` at the corner of cell (0, 0), `b` at the opposite corner, `c` in the next cell.
    place(&mut core, Some(b), Vec2::new(60.0, 60.0));
    place(&mut core, Some(c), Vec2::new(70.0, 0.0));
    // Within the radius of `a`, 531 units from its cell's centre; 562 from `b`, 569 from `c`.
    let west = place(&mut core, None, Vec2::new(-499.0, 0.0));
    // 560 from `a`: past any point of its cell's reach.
    let far_west = place(&mut core, None, Vec2::new(-560.0, 0.0));
    core.step();
    let out = drain(&mut core);
    assert_eq!(seen(&out, &registry, ClientId(1)), [board, a, b, c, west]);
    // `b` shares `a`'s cell, so its view (`west` included) and its snapshot's bytes.
    assert_eq!(seen(&out, &registry, ClientId(2)), [board, a, b, c, west]);
    assert_eq!(snapshots_to(&out, ClientId(1)), snapshots_to(&out, ClientId(2)));
    let view = |core: &RoomCore<Dots>, i| {
        core.clients[&ClientId(i)].replica.last_view().expect("a snapshot").clone()
    };
    assert!(Arc::ptr_eq(&view(&core, 1), &view(&core, 2)));
    assert_eq!(seen(&out, &registry, ClientId(3)), [board, a, b, c]);
    for i in 1..=3 {
        assert!(!seen(&out, &registry, ClientId(i)).contains(&far_west));
    }
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

/// A room core and real clients ([`crate::client::Client`]) on perfect links: each step, every
/// client's input (if it has one) goes in, the room steps, and each client gets its outputs.
struct Rig {
    core: RoomCore<Dots>,
    clients: Vec<(ClientId, crate::client::Client<Dots>, Option<Step>)>,
    /// The snapshots of the last step: client, full, baseline tick.
    snapshots: Vec<(ClientId, bool, Option<Tick>)>,
}

impl Rig {
    fn new(grace_ticks: u64) -> Rig {
        let settings = RoomSettings { resume_grace_ticks: grace_ticks, ..settings() };
        Rig { core: RoomCore::new(settings), clients: Vec::new(), snapshots: Vec::new() }
    }

    /// Joins `id` with a new client (resuming `resume`); returns its index.
    fn join(&mut self, id: ClientId, resume: Option<&str>, token: &str) -> (usize, JoinInfo) {
        let client = crate::client::Client::new(crate::client::ClientConfig::default());
        self.join_with(id, resume, token, client)
    }

    fn join_with(
        &mut self,
        id: ClientId,
        resume: Option<&str>,
        token: &str,
        client: crate::client::Client<Dots>,
    ) -> (usize, JoinInfo) {
        let token = token.to_owned();
        let info = self.core.join(id, "p", "s", resume, move || token).unwrap();
        self.clients.push((id, client, None));
        self.deliver();
        (self.clients.len() - 1, info)
    }

    /// Drops client `idx`'s connection (not for good) and hands back its client.
    fn drop_connection(&mut self, idx: usize) -> crate::client::Client<Dots> {
        let (id, client, _) = self.clients.remove(idx);
        self.core.disconnect(id, false);
        client
    }

    fn step(&mut self) {
        for (id, client, input) in &mut self.clients {
            if let Some(step) = *input {
                client.push_input(step);
            }
            while let Some(bytes) = client.poll_transmit() {
                if let Ok(crate::protocol::ClientMessage::Input(batch)) =
                    crate::codec::decode_client(&bytes)
                {
                    self.core.input(*id, &batch, 0);
                }
            }
        }
        self.core.step();
        self.deliver();
    }

    fn deliver(&mut self) {
        self.snapshots.clear();
        while let Some(out) = self.core.poll_output() {
            let (to, bytes, full) = match &out {
                Output::Send { client, bytes } => (*client, bytes.to_vec(), None),
                Output::Snapshot { client, bytes, full, .. } => {
                    (*client, bytes.clone(), Some(*full))
                }
                _ => continue,
            };
            if let Some(full) = full {
                let Ok(ServerMessage::Snapshot(s)) = decode_server(&bytes) else { panic!() };
                self.snapshots.push((to, full, s.baseline));
            }
            if let Some((_, client, _)) = self.clients.iter_mut().find(|(id, _, _)| *id == to) {
                // Refusals are counted in the client's stats.
                let _ = client.handle_bytes(0, &bytes);
            }
        }
    }

    fn run(&mut self, n: u64) {
        for _ in 0..n {
            self.step();
        }
    }

    /// The snapshot `id` got on the last step.
    fn snapshot_of(&self, id: ClientId) -> Option<(bool, Option<Tick>)> {
        self.snapshots.iter().find(|(c, _, _)| *c == id).map(|&(_, full, base)| (full, base))
    }
}

#[test]
fn a_resume_later_than_the_history_gets_a_delta_against_the_acked_baseline() {
    // A grace of 10 s; the resume comes after 3 s, far past the history (32 ticks here).
    let mut rig = Rig::new(600);
    let (ann, first) = rig.join(ClientId(1), None, "ann");
    let (bob, _) = rig.join(ClientId(2), None, "bob");
    rig.clients[ann].2 = Some(Step([1, 0]));
    rig.clients[bob].2 = Some(Step([0, 1]));
    rig.run(19);
    // What ann's last input acknowledges; the snapshot after it is never acknowledged.
    let acked = rig.clients[ann].1.ack().expect("ann acknowledged snapshots");
    rig.step();
    let ann_client = rig.drop_connection(ann);
    assert!(ann_client.ack().unwrap().is_after(acked));
    let next_seq = ann_client.next_input_seq();
    rig.run(180);
    assert!(rig.core.tick().0 - acked.0 > 32 * 5, "the baseline is long out of the history");
    let (ann, again) = rig.join_with(ClientId(3), Some("ann"), "new", ann_client);
    assert!(again.resumed);
    assert_eq!(again.entity, first.entity);
    rig.step();
    assert_eq!(rig.snapshot_of(ClientId(3)), Some((false, Some(acked))), "a delta from the ack");
    let client = &rig.clients[ann].1;
    assert_eq!(client.stats().decode_errors, 0);
    // The client decoded the delta to the room's state (everyone is in view).
    let truth = rig.core.newest_state().map(|(_, s)| s.clone()).expect("a state");
    assert_eq!(client.latest().map(|(_, s)| s), Some(&truth));
    assert_eq!(client.stats().full_snapshots, 1, "only the first snapshot of the first session");
    // The input numbering carries on, and the room applies and echoes the new inputs.
    rig.clients[ann].2 = Some(Step([-1, 0]));
    let spot = |rig: &mut Rig| {
        let mut q = rig.core.world_mut().query::<(&NetId, &Spot)>();
        q.iter(rig.core.world_mut()).find(|(id, _)| **id == first.entity).map(|(_, s)| s.0)
    };
    let before = spot(&mut rig).unwrap();
    rig.run(20);
    let client = &rig.clients[ann].1;
    assert!(client.next_input_seq() >= next_seq + 20, "numbering continued");
    let echoed = client.last_applied_input().expect("an echo");
    assert!(echoed >= next_seq, "echoed {echoed}, first after the resume {next_seq}");
    assert_eq!(client.stats().decode_errors, 0);
    assert_eq!(client.stats().full_snapshots, 1, "deltas ever since");
    assert!(spot(&mut rig).unwrap().x < before.x, "the new inputs are applied");
}

#[test]
fn a_resume_without_an_ack_or_after_the_grace_gets_a_full_snapshot() {
    let mut rig = Rig::new(600);
    // Never acknowledged: the client sent no input.
    let (ann, _) = rig.join(ClientId(1), None, "ann");
    rig.run(3);
    let ann_client = rig.drop_connection(ann);
    assert!(ann_client.latest().is_some(), "it got snapshots");
    rig.run(180);
    let (_, again) = rig.join_with(ClientId(2), Some("ann"), "new", ann_client);
    assert!(again.resumed);
    rig.step();
    assert_eq!(rig.snapshot_of(ClientId(2)), Some((true, None)));

    // Past the grace period: a new player, a full snapshot.
    let mut rig = Rig::new(60);
    let (ann, _) = rig.join(ClientId(1), None, "ann");
    rig.clients[ann].2 = Some(Step([1, 0]));
    rig.run(20);
    let ann_client = rig.drop_connection(ann);
    rig.run(61);
    assert_eq!(rig.core.player_count(), 0, "the player and its parked replica are gone");
    let (idx, later) = rig.join_with(ClientId(2), Some("ann"), "new", ann_client);
    assert!(!later.resumed);
    assert_eq!(later.token, "new");
    rig.step();
    assert_eq!(rig.snapshot_of(ClientId(2)), Some((true, None)));
    assert_eq!(rig.clients[idx].1.stats().decode_errors, 0);
}

/// Client `ann` (room client 2) refused a delta: its next input acknowledges nothing, the room
/// forgets the baseline and sends a full snapshot, and the client follows the room from there
/// with no other decode error.
fn full_after_the_next_input(rig: &mut Rig, ann: usize) {
    rig.clients[ann].2 = Some(Step([1, 0]));
    rig.step();
    assert_eq!(rig.snapshot_of(ClientId(2)), Some((true, None)));
    rig.run(10);
    let client = &rig.clients[ann].1;
    assert_eq!(client.stats().decode_errors, 1);
    assert!(client.stats().snapshots >= 10);
    let truth = rig.core.newest_state().map(|(_, s)| s.clone()).expect("a state");
    assert_eq!(rig.clients[ann].1.latest().map(|(_, s)| s), Some(&truth));
}

#[test]
fn a_client_without_the_baseline_gets_a_full_snapshot_after_its_next_input() {
    let mut rig = Rig::new(600);
    let (ann, _) = rig.join(ClientId(1), None, "ann");
    rig.clients[ann].2 = Some(Step([1, 0]));
    rig.run(20);
    rig.drop_connection(ann);
    rig.run(100);
    // Another page resumes the player: a new client, with no states.
    let (ann, again) = rig.join(ClientId(2), Some("ann"), "new");
    assert!(again.resumed);
    rig.step();
    assert_eq!(rig.snapshot_of(ClientId(2)).map(|(full, _)| full), Some(false));
    assert_eq!(rig.clients[ann].1.stats().decode_errors, 1, "a baseline it never had");
    full_after_the_next_input(&mut rig, ann);
}

#[test]
fn a_resumed_client_that_dropped_the_baseline_gets_a_full_snapshot_next() {
    let mut rig = Rig::new(600);
    // A client keeping one state: by the drop it has dropped the one it acknowledged last.
    let config = crate::client::ClientConfig { max_stored_states: 1, ..Default::default() };
    let (ann, _) = rig.join_with(ClientId(1), None, "ann", crate::client::Client::new(config));
    rig.clients[ann].2 = Some(Step([1, 0]));
    rig.run(20);
    let ann_client = rig.drop_connection(ann);
    rig.run(100);
    let (ann, again) = rig.join_with(ClientId(2), Some("ann"), "new", ann_client);
    assert!(again.resumed);
    rig.step();
    assert_eq!(rig.snapshot_of(ClientId(2)).map(|(full, _)| full), Some(false));
    let client = &rig.clients[ann].1;
    assert_eq!(client.stats().decode_errors, 1, "a baseline it no longer has");
    assert_eq!(client.ack(), None, "it dropped its states");
    full_after_the_next_input(&mut rig, ann);
}

#[test]
fn a_resume_that_replaces_a_live_session_gets_a_delta_too() {
    let mut rig = Rig::new(600);
    let (ann, _) = rig.join(ClientId(1), None, "ann");
    rig.clients[ann].2 = Some(Step([1, 0]));
    rig.run(20);
    // The connection failed but the room has not noticed: it goes on sending into it.
    let (_, ann_client, _) = rig.clients.remove(ann);
    rig.run(100);
    let decoded = ann_client.stats().snapshots;
    let (ann, again) = rig.join_with(ClientId(2), Some("ann"), "new", ann_client);
    assert!(again.resumed);
    rig.step();
    assert_eq!(rig.snapshot_of(ClientId(2)).map(|(full, _)| full), Some(false));
    let client = &rig.clients[ann].1;
    assert_eq!(client.stats().decode_errors, 0);
    assert_eq!(client.stats().snapshots, decoded + 1, "the delta decoded");
}

/// The bandwidth governor (`RoomSettings::client_kbps`) against real clients decoding every
/// snapshot: a room of moving dots (some steady, some weaving, some crossing the edge of the
/// view) and one walking player.
mod governed {
    use std::collections::HashMap;

    use super::*;
    use crate::client::{Client, ClientConfig};
    use crate::game::NetIdAllocator;

    const NPCS: usize = 80;
    const TICKS: u32 = 600;
    const CLIENT: ClientId = ClientId(1);

    /// A pseudo-random number from `k` (a few bits of a multiplicative hash).
    fn mix(k: usize, salt: u64) -> i64 {
        let h = (k as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ salt;
        (h.wrapping_mul(0xbf58_476d_1ce4_e5b9) >> 33) as i64
    }

    /// Each dot's step at `tick`: a fifth stand still, a fifth walk straight and turn back
    /// every 40 ticks, the rest weave (their step changes every tick or two, so no motion
    /// predicts them: NPCs steering), and the last five walk in and out of the interest radius
    /// (500) along x.
    fn step_of(k: usize, tick: u32) -> [i8; 2] {
        let back = if (tick / 40).is_multiple_of(2) { 1 } else { -1 };
        if k >= NPCS - 5 {
            return [(4 * back) as i8, 0];
        }
        let t = i64::from(tick) + mix(k, 5) % 8;
        match k % 5 {
            0 => [0, 0],
            1 => {
                let (x, y) = (mix(k, 1) % 7 - 3, mix(k, 2) % 7 - 3);
                [(x * back) as i8, (y * back) as i8]
            }
            2 => [(1 + t % 3) as i8 * back as i8, (2 - t % 3) as i8],
            3 => [(-3 * back) as i8, (t % 2) as i8],
            _ => [((t / 2) % 5 - 2) as i8, (2 - (t / 3) % 5) as i8],
        }
    }

    struct Run {
        core: RoomCore<Dots>,
        client: Client<Dots>,
        npcs: Vec<Entity>,
        own: NetId,
        /// Every `lose`th snapshot is lost on the way (0: none).
        lose: usize,
        made: usize,
        /// The client's id on its current connection.
        id: ClientId,
        /// Whether the newest snapshot made was full.
        full: bool,
    }

    impl Run {
        fn new(client_kbps: u32) -> Run {
            let settings = RoomSettings { ticks_per_snapshot: 2, client_kbps, ..settings() };
            let mut core = RoomCore::<Dots>::new(settings);
            let world = core.world_mut();
            let npcs = (0..NPCS)
                .map(|k| {
                    let id = world.resource_mut::<NetIdAllocator>().next();
                    let at = if k >= NPCS - 5 {
                        Vec2::new(420.0 + 10.0 * (k % 5) as f32, 40.0 * (k % 5) as f32)
                    } else {
                        Vec2::new((mix(k, 3) % 700 - 350) as f32, (mix(k, 4) % 700 - 350) as f32)
                    };
                    world.spawn((id, Spot(at), Step([0, 0]))).id()
                })
                .collect();
            let info = core.join(CLIENT, "ann", "s", None, || "a".into()).unwrap();
            let client = Client::new(ClientConfig::default());
            let mut run = Run {
                core,
                client,
                npcs,
                own: info.entity,
                lose: 0,
                made: 0,
                id: CLIENT,
                full: false,
            };
            run.deliver();
            run
        }

        /// One tick: the player's input, the dots' steps, the step; the client's snapshot
        /// bytes, if it was due one, and whether it arrived.
        fn step(&mut self) -> Option<(usize, bool)> {
            let tick = self.core.tick().0;
            let back = if (tick / 120).is_multiple_of(2) { 1 } else { -1 };
            self.client.push_input(Step([back, 0]));
            while let Some(bytes) = self.client.poll_transmit() {
                if let Ok(crate::protocol::ClientMessage::Input(batch)) =
                    crate::codec::decode_client(&bytes)
                {
                    self.core.input(self.id, &batch, 0);
                }
            }
            for (k, &e) in self.npcs.iter().enumerate() {
                self.core.world_mut().entity_mut(e).insert(Step(step_of(k, tick)));
            }
            self.core.step();
            self.deliver()
        }

        fn deliver(&mut self) -> Option<(usize, bool)> {
            let mut snapshot = None;
            while let Some(out) = self.core.poll_output() {
                let bytes = match &out {
                    Output::Send { bytes, .. } => bytes.to_vec(),
                    Output::Snapshot { bytes, full, .. } => {
                        self.made += 1;
                        self.full = *full;
                        if self.lose != 0 && self.made.is_multiple_of(self.lose) {
                            snapshot = Some((bytes.len(), false));
                            continue;
                        }
                        snapshot = Some((bytes.len(), true));
                        bytes.clone()
                    }
                    _ => continue,
                };
                self.client.handle_bytes(0, &bytes).expect("the client decodes every message");
            }
            snapshot
        }
    }

    #[test]
    fn a_resumed_governed_client_goes_on_with_deltas_against_what_it_was_sent() {
        let mut run = Run::new(12);
        let mut states: VecDeque<(Tick, ReplicatedState)> = VecDeque::new();
        let record = |run: &Run, states: &mut VecDeque<(Tick, ReplicatedState)>| {
            let (tick, server) = run.core.newest_state().expect("a snapshot was made");
            states.truncate(39);
            states.push_front((tick, server.clone()));
        };
        for _ in 0..100 {
            if run.step().is_some() {
                record(&run, &mut states);
            }
        }
        // The connection drops; the room goes on without the client for a while (within the
        // grace period of 10 ticks).
        run.core.disconnect(run.id, false);
        for _ in 0..5 {
            run.step();
        }
        run.id = ClientId(2);
        let info = run.core.join(run.id, "ann", "s", Some("a"), || "b".into()).unwrap();
        assert!(info.resumed);
        run.deliver();
        let mut first = true;
        for _ in 0..200 {
            let Some(_) = run.step() else { continue };
            record(&run, &mut states);
            if first {
                assert!(!run.full, "the first snapshot after the resume is a delta");
                first = false;
            }
            let (tick, held) = run.client.latest().expect("decoded");
            assert_eq!(held.get(run.own), states[0].1.get(run.own), "own player at {tick:?}");
            for e in held.iter() {
                let row = Some((e.mask, e.fields.to_vec()));
                assert!(
                    states.iter().any(|(t, s)| predicted_row(s, e.id, tick.0 - t.0) == row),
                    "{} at {tick:?} holds {row:?}, which the server never had",
                    e.id
                );
            }
        }
        assert!(!first, "snapshots after the resume");
        assert!(run.core.inspect_clients()[0].governor.is_some_and(|g| g.left_out > 0));
    }

    /// Mean snapshot bytes over the last `TICKS / 2` ticks of an unconstrained run.
    fn unconstrained_bytes_per_snapshot() -> f64 {
        let mut run = Run::new(0);
        let sizes: Vec<usize> =
            (0..TICKS / 2).filter_map(|_| run.step()).map(|(n, _)| n).skip(20).collect();
        sizes.iter().sum::<usize>() as f64 / sizes.len() as f64
    }

    /// `state`'s entity `id` as the client works it out `ticks` after it was sent: moved on by
    /// its motion (the sum of the hops between snapshots: motion is whole cells a tick).
    fn predicted_row(state: &ReplicatedState, id: NetId, ticks: u32) -> Option<(u32, Vec<i32>)> {
        let registry = game::registry::<Dots>();
        let (pos, motion) = (registry.position_index()?, registry.motion_index()?);
        let (po, mo) = (registry.offset(pos), registry.offset(motion));
        let e = state.get(id)?;
        let mut row = e.fields.to_vec();
        if e.mask & (1 << pos.0) != 0 && e.mask & (1 << motion.0) != 0 {
            row[po] += row[mo] * ticks as i32;
            row[po + 1] += row[mo + 1] * ticks as i32;
        }
        Some((e.mask, row))
    }

    #[test]
    fn the_budget_is_not_saved_so_saves_keep_their_layout() {
        // Saves are bincode: a new field would make every earlier save unreadable (and this
        // build's saves unreadable to an older instance in a rolling restart).
        let governed = RoomSettings { client_kbps: 64, ..settings() };
        let encoded = crate::persist::encode(&governed).unwrap();
        assert_eq!(encoded, crate::persist::encode(&settings()).unwrap());
        let decoded: RoomSettings = crate::persist::decode(&encoded).unwrap();
        assert_eq!(decoded, settings(), "restored unlimited, until the server sets its own");
    }

    #[test]
    fn at_a_third_of_the_rate_every_entity_in_view_is_fresh_within_the_staleness_bound() {
        check(0);
    }

    #[test]
    fn with_snapshots_lost_the_client_still_holds_only_what_the_server_sent() {
        // Every third snapshot lost: deltas come against older acknowledged states, which
        // left out other entities. Each value held must still be one the server sent.
        check(3);
    }

    /// The governed run at a third of the unconstrained rate, every `lose`th snapshot lost (0:
    /// none; the staleness bound and the bytes are checked only without losses).
    fn check(lose: usize) {
        let unconstrained = unconstrained_bytes_per_snapshot();
        // A third of it, in kilobits a second at 30 snapshots a second.
        let kbps = (unconstrained / 3.0 * 30.0 * 8.0 / 1000.0) as u32;
        let budget = f64::from(snapshot_budget(kbps, 60, 2).unwrap());
        assert!(budget <= unconstrained / 3.0 + 5.0, "{budget} of {unconstrained}");

        let mut run = Run::new(kbps);
        run.lose = lose;
        let registry = game::registry::<Dots>();
        let pos = registry.position_offset().unwrap();
        let radius = f64::from(crate::quantize::position(500.0));
        // N: an entity in view is left out of at most MAX_STALE_SNAPSHOTS - 1 snapshots in a
        // row, so its value on the client is at most that many snapshots old; a lost snapshot
        // delays what it carried to the next one.
        let bound = MAX_STALE_SNAPSHOTS * 2 + if lose == 0 { 0 } else { 2 };
        // The server's state of each snapshot made (the newest 40), newest first.
        let mut states: VecDeque<(Tick, ReplicatedState)> = VecDeque::new();
        // Per entity, the first snapshot of its current stay within the radius.
        let mut in_view_since: HashMap<NetId, Tick> = HashMap::new();
        let (mut sizes, mut worst_age, mut ages_near, mut ages_far) =
            (Vec::new(), 0u32, Vec::new(), Vec::new());
        for _ in 0..TICKS {
            let Some((size, arrived)) = run.step() else { continue };
            let (tick, server) = run.core.newest_state().expect("a snapshot was made");
            states.truncate(39);
            states.push_front((tick, server.clone()));
            if !arrived {
                continue;
            }
            let server = &states[0].1;
            let (got_tick, held) = run.client.latest().expect("decoded");
            assert_eq!(got_tick, tick);
            sizes.push(size);
            // The own player: in every snapshot, with its current value.
            let own = server.get(run.own).unwrap();
            assert_eq!(held.get(run.own), Some(own), "own player at {tick:?}");
            let at = [f64::from(own.fields[pos]), f64::from(own.fields[pos + 1])];
            // Every entity the client holds is the server's at some snapshot tick, moved on by
            // the motion it had then: its age is the newest such tick's.
            let mut fresh_at = HashMap::new();
            for e in held.iter() {
                let row = Some((e.mask, e.fields.to_vec()));
                let Some((then, _)) =
                    states.iter().find(|(t, s)| predicted_row(s, e.id, tick.0 - t.0) == row)
                else {
                    panic!("{} at {tick:?} holds {row:?}, which the server never had", e.id)
                };
                fresh_at.insert(e.id, *then);
            }
            // Every entity within the radius is fresh within the bound.
            for e in server.iter() {
                let d = if e.mask & 1 == 0 {
                    0.0
                } else {
                    (f64::from(e.fields[pos]) - at[0]).hypot(f64::from(e.fields[pos + 1]) - at[1])
                };
                if d > radius {
                    in_view_since.remove(&e.id);
                    continue;
                }
                let since = *in_view_since.entry(e.id).or_insert(tick);
                let current = fresh_at.get(&e.id).filter(|t| !since.is_after(**t)).copied();
                let age = tick.0 - current.unwrap_or(since).0;
                assert!(age <= bound, "{} is {age} ticks old at {tick:?}", e.id);
                worst_age = worst_age.max(age);
                if tick.0 > 100 && e.mask & 1 != 0 {
                    if d < radius / 3.0 {
                        ages_near.push(age);
                    } else if d > radius * 2.0 / 3.0 {
                        ages_far.push(age);
                    }
                }
            }
        }
        let view = run.core.inspect_clients().pop().unwrap();
        let stats = view.governor.expect("governed");
        let steady = &sizes[20..];
        let mean = steady.iter().sum::<usize>() as f64 / steady.len() as f64;
        let max = *steady.iter().max().unwrap();
        let mean_age = |ages: &[u32]| ages.iter().sum::<u32>() as f64 / ages.len().max(1) as f64;
        eprintln!(
            "unconstrained {unconstrained:.1} B/snapshot; {kbps} kbps = {budget} B/snapshot: \
             mean {mean:.1}, max {max}; oldest {worst_age} ticks (server: {} ticks); near \
             entities {:.2} ticks old on average, far ones {:.2}; {stats:?}",
            stats.max_stale_ticks,
            mean_age(&ages_near),
            mean_age(&ages_far),
        );
        assert!(stats.left_out > 0 && stats.max_stale_ticks <= bound, "{stats:?}");
        assert_eq!(run.client.stats().decode_errors, 0);
        if lose != 0 {
            return;
        }
        // Within the budget on average, and no snapshot over what the bucket allows plus the
        // own player's entry (its share: under 16 bytes here).
        assert!(mean <= budget + 2.0, "mean {mean} over {budget}");
        assert!(max as f64 <= budget * (1.0 + CARRY) + 16.0, "{max} over {budget}");
        // The priorities at work: nearer entities are fresher.
        assert!(mean_age(&ages_near) < mean_age(&ages_far), "{ages_near:?} {ages_far:?}");
    }
}
