//! Unit tests of [`Client`]: server messages are built with the real codec and snapshot encoder.

use bevy_ecs::prelude::*;
use bevy_ecs::world::EntityWorldMut;
use serde::{Deserialize, Serialize};

use super::*;
use crate::bits::BitWriter;
use crate::codec::{decode_client, decode_inputs, encode_game_event, encode_server};
use crate::game::{GameConfig, IdleBot, NoPrediction, Standings};
use crate::ids::ClientId;
use crate::protocol::{DisconnectReason, RoomEvent};
use crate::registry::{FieldSpec, Registrar, RegistryError, Replicate};

/// A test-only replicated position on the integer grid.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
struct P {
    x: i32,
    y: i32,
}

impl Replicate for P {
    const NAME: &'static str = "test_p";
    const FIELDS: &'static [FieldSpec] = &[FieldSpec::int("x"), FieldSpec::int("y")];
    fn quantize(&self, out: &mut [i32]) {
        out[0] = self.x;
        out[1] = self.y;
    }
    fn dequantize(fields: &[i32]) -> Self {
        P { x: fields[0], y: fields[1] }
    }
}

/// Another component, only to make a registry with a different fingerprint.
#[derive(Component, Clone, Copy, Debug, PartialEq, Eq)]
struct Q(i32);

impl Replicate for Q {
    const NAME: &'static str = "test_q";
    const FIELDS: &'static [FieldSpec] = &[FieldSpec::int("q")];
    fn quantize(&self, out: &mut [i32]) {
        out[0] = self.0;
    }
    fn dequantize(fields: &[i32]) -> Self {
        Q(fields[0])
    }
}

/// A game with one replicated component and a small input, for the client alone.
struct TestGame;

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct TestInput {
    movement: [i8; 2],
    aim: u16,
    fire: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
enum TestEvent {
    Boom(NetId),
}

impl Game for TestGame {
    const NAME: &'static str = "test";
    const DESCRIPTION: &'static str = "the client's unit tests";
    type Input = TestInput;
    type Event = TestEvent;
    type Prediction = NoPrediction<TestInput>;
    type Bot = IdleBot;

    fn replicate(r: &mut impl Registrar) -> Result<(), RegistryError> {
        r.component::<P>()
    }
    fn build(_: &mut World, _: &mut Schedule, _: &GameConfig) {}
    fn spawn_player(world: &mut World, _: &str) -> Entity {
        world.spawn(NetId(1)).id()
    }
    fn apply_input(_: &mut EntityWorldMut<'_>, _: &TestInput) {}
    fn standings(_: &mut World) -> Standings {
        Standings::default()
    }
}

type Client = super::Client<TestGame>;
type ClientEvent = super::ClientEvent<TestEvent>;

fn registry() -> ReplicationRegistry {
    crate::game::registry::<TestGame>()
}

/// The frames of an input batch with their sequence numbers.
fn sequenced(batch: &InputBatch) -> Vec<(u32, TestInput)> {
    let mut frames = Vec::new();
    decode_inputs::<TestInput>(&batch.frames, &mut frames).expect("valid frames");
    (0u32..).map(|i| batch.first_seq.wrapping_add(i)).zip(frames).collect()
}

fn frame_count(batch: &InputBatch) -> usize {
    sequenced(batch).len()
}

fn state(entities: &[(u32, i32, i32)]) -> ReplicatedState {
    let mut s = ReplicatedState::new(2);
    for &(id, x, y) in entities {
        s.push(NetId(id), 1, &[x, y]).expect("ascending ids");
    }
    s
}

fn welcome_for(registry: &ReplicationRegistry) -> Welcome {
    Welcome {
        protocol: PROTOCOL_VERSION,
        client_id: ClientId(3),
        room: "lobby".into(),
        game: TestGame::NAME.into(),
        entity: NetId(1),
        tick_rate: 60,
        snapshot_rate: 30,
        tick: Tick(100),
        resume_token: String::new(),
        registry_fingerprint: registry.fingerprint(),
        schema: Box::new(crate::schema::GameSchema::of::<TestGame>()),
    }
}

fn welcome_bytes() -> Vec<u8> {
    encode_server(&ServerMessage::Welcome(welcome_for(&registry()))).expect("encode")
}

fn full_bytes(tick: u32, s: &ReplicatedState, last_input_seq: Option<u32>) -> Vec<u8> {
    let mut w = BitWriter::new(Vec::new());
    snapshot::encode_full(&registry(), s.iter(), &mut w);
    let msg = SnapshotMessage {
        tick: Tick(tick),
        baseline: None,
        last_input_seq,
        inputs_late: 0,
        input_margin: None,
        body: w.finish(),
    };
    encode_server(&ServerMessage::Snapshot(msg)).expect("encode")
}

fn delta_bytes(
    tick: u32,
    baseline_tick: u32,
    baseline: &ReplicatedState,
    s: &ReplicatedState,
    last_input_seq: Option<u32>,
) -> Vec<u8> {
    let mut w = BitWriter::new(Vec::new());
    snapshot::encode_delta(&registry(), baseline.iter(), s.iter(), &mut w);
    let msg = SnapshotMessage {
        tick: Tick(tick),
        baseline: Some(Tick(baseline_tick)),
        last_input_seq,
        inputs_late: 0,
        input_margin: None,
        body: w.finish(),
    };
    encode_server(&ServerMessage::Snapshot(msg)).expect("encode")
}

fn welcomed() -> Client {
    let mut c = Client::new(ClientConfig::default());
    c.handle_bytes(0, &welcome_bytes()).expect("welcome");
    c
}

fn events(c: &mut Client) -> Vec<ClientEvent> {
    std::iter::from_fn(|| c.poll_event()).collect()
}

fn transmits(c: &mut Client) -> Vec<ClientMessage> {
    std::iter::from_fn(|| c.poll_transmit()).map(|b| decode_client(&b).expect("valid")).collect()
}

fn frame(n: i8) -> TestInput {
    TestInput { movement: [n, -n], aim: 7, fire: true }
}

#[test]
fn welcome_full_then_delta() {
    let mut c = Client::new(ClientConfig::default());
    assert_eq!(c.welcome(), None);
    assert_eq!(c.own_entity(), None);
    c.handle_bytes(10, &welcome_bytes()).expect("welcome");
    assert_eq!(c.own_entity(), Some(NetId(1)));
    assert!(matches!(events(&mut c).as_slice(), [ClientEvent::Welcomed(w)] if w.tick == Tick(100)));

    let s1 = state(&[(1, 10, 20), (4, -5, 0)]);
    let b1 = full_bytes(102, &s1, None);
    c.handle_bytes(20, &b1).expect("full");
    assert_eq!(c.latest(), Some((Tick(102), &s1)));
    assert_eq!(c.ack(), Some(Tick(102)));

    // Entity 1 moves, 4 leaves, 9 arrives.
    let s2 = state(&[(1, 11, 22), (9, 3, 3)]);
    let b2 = delta_bytes(104, 102, &s1, &s2, None);
    c.handle_bytes(30, &b2).expect("delta");
    assert_eq!(c.latest(), Some((Tick(104), &s2)));
    assert_eq!(c.ack(), Some(Tick(104)));
    let e1 = c.latest().and_then(|(_, s)| s.get(NetId(1))).expect("entity 1");
    assert_eq!(c.registry().get::<P>(e1), Some(P { x: 11, y: 22 }));

    assert_eq!(
        events(&mut c),
        vec![
            ClientEvent::Snapshot { tick: Tick(102), full: true, bytes: b1.len() },
            ClientEvent::Snapshot { tick: Tick(104), full: false, bytes: b2.len() },
        ]
    );
    let st = c.stats();
    assert_eq!((st.snapshots, st.full_snapshots, st.decode_errors), (2, 1, 0));
    let total = (welcome_bytes().len() + b1.len() + b2.len()) as u64;
    assert_eq!(st.bytes_received, total);
}

#[test]
fn unknown_baseline_is_an_error_and_the_client_recovers() {
    let mut c = welcomed();
    let s1 = state(&[(1, 0, 0)]);
    c.handle_bytes(1, &full_bytes(10, &s1, None)).expect("full");
    let s2 = state(&[(1, 1, 0)]);
    let err = c.handle_bytes(2, &delta_bytes(12, 8, &s1, &s2, None)).unwrap_err();
    assert_eq!(err, ClientError::UnknownBaseline(Tick(8)));
    assert_eq!(c.stats().decode_errors, 1);
    assert_eq!(c.latest(), Some((Tick(10), &s1)), "nothing changed");
    // Still works: a delta against the kept baseline applies.
    c.handle_bytes(3, &delta_bytes(12, 10, &s1, &s2, None)).expect("delta");
    assert_eq!(c.latest(), Some((Tick(12), &s2)));
}

#[test]
fn baselines_are_kept_in_a_bounded_ring() {
    let config = ClientConfig { max_stored_states: 3, ..ClientConfig::default() };
    let mut c = Client::new(config);
    c.handle_bytes(0, &welcome_bytes()).expect("welcome");
    let states: Vec<ReplicatedState> = (0..5).map(|i| state(&[(1, i, 0)])).collect();
    for (i, s) in states.iter().enumerate() {
        c.handle_bytes(1, &full_bytes(10 + i as u32, s, None)).expect("full");
    }
    assert!(c.state_at(Tick(11)).is_none(), "oldest dropped");
    assert_eq!(c.state_at(Tick(12)), Some(&states[2]));
    let next = state(&[(1, 99, 0)]);
    let err = c.handle_bytes(2, &delta_bytes(15, 11, &states[1], &next, None)).unwrap_err();
    assert_eq!(err, ClientError::UnknownBaseline(Tick(11)));
    c.handle_bytes(2, &delta_bytes(15, 12, &states[2], &next, None)).expect("delta");
    assert_eq!(c.latest(), Some((Tick(15), &next)));
}

#[test]
fn older_snapshot_after_newer_is_stale() {
    let mut c = welcomed();
    let new = state(&[(1, 5, 5)]);
    let old = state(&[(1, 4, 4)]);
    c.handle_bytes(1, &full_bytes(20, &new, None)).expect("newer");
    c.handle_bytes(2, &full_bytes(18, &old, None)).expect("stale is not an error");
    c.handle_bytes(3, &full_bytes(20, &old, None)).expect("duplicate is not an error");
    assert_eq!(c.latest(), Some((Tick(20), &new)));
    assert_eq!(c.ack(), Some(Tick(20)));
    assert_eq!(c.stats().stale_snapshots, 2);
    assert_eq!(c.stats().snapshots, 1);
    assert_eq!(events(&mut c).len(), 2, "welcome and one snapshot");
}

/// A server whose game differs is refused with what differs, not a bare fingerprint.
#[test]
fn a_server_with_another_build_of_the_game_is_refused_with_what_differs() {
    use crate::schema::ComponentSchema;
    let mut welcome = welcome_for(&registry());
    let p = welcome.schema.components.iter_mut().find(|c| c.name == P::NAME).unwrap();
    p.fields[0].quantization = "u8 in 0..=9".into();
    let q = ComponentSchema { name: Q::NAME.into(), fields: Vec::new() };
    welcome.schema.components.push(q);
    let bytes = encode_server(&ServerMessage::Welcome(welcome)).expect("encode");
    let mut c = Client::new(ClientConfig::default());
    let err = c.handle_bytes(0, &bytes).unwrap_err();
    let ClientError::SchemaMismatch { differences, .. } = &err else { panic!("{err:?}") };
    assert_eq!(differences.len(), 2, "{differences:#?}");
    let text = err.to_string();
    assert!(text.contains(&format!("component {}: only on the server", Q::NAME)), "{text}");
    assert!(text.contains("as u8 in 0..=9 on the server"), "{text}");
    assert_eq!(c.welcome(), None);
}

#[test]
fn registry_fingerprint_mismatch_is_an_error() {
    let mut other = ReplicationRegistry::new();
    other.register::<P>().expect("P");
    other.register::<Q>().expect("Q");
    let bytes = encode_server(&ServerMessage::Welcome(welcome_for(&other))).expect("encode");
    let mut c = Client::new(ClientConfig::default());
    let err = c.handle_bytes(0, &bytes).unwrap_err();
    assert_eq!(
        err,
        ClientError::RegistryMismatch {
            server: other.fingerprint(),
            client: registry().fingerprint()
        }
    );
    assert_eq!(c.welcome(), None);
    assert_eq!(c.stats().decode_errors, 1);
    // Snapshots are refused until a good welcome.
    let s = state(&[(1, 0, 0)]);
    assert_eq!(c.handle_bytes(1, &full_bytes(5, &s, None)), Err(ClientError::NotWelcomed));
}

#[test]
fn protocol_version_mismatch_is_an_error() {
    let mut w = welcome_for(&registry());
    w.protocol = PROTOCOL_VERSION + 1;
    let bytes = encode_server(&ServerMessage::Welcome(w)).expect("encode");
    let mut c = Client::new(ClientConfig::default());
    assert!(matches!(c.handle_bytes(0, &bytes), Err(ClientError::ProtocolMismatch { .. })));
}

#[test]
fn input_messages_carry_redundant_frames_and_the_ack() {
    let mut c = welcomed();
    // Before any snapshot: no ack.
    assert_eq!(c.push_input(frame(0)), 0);
    let sent = transmits(&mut c);
    assert_eq!(
        sent,
        vec![ClientMessage::Input(InputBatch {
            ack: None,
            first_seq: 0,
            frames: crate::codec::encode_inputs(&[frame(0)]).unwrap(),
            view: None
        })]
    );
    c.handle_bytes(1, &full_bytes(50, &state(&[(1, 0, 0)]), None)).expect("full");
    let mut last = Vec::new();
    for n in 1..6 {
        assert_eq!(c.push_input(frame(n)), n as u32);
        last = transmits(&mut c);
        assert_eq!(last.len(), 1, "{last:?}");
    }
    let ClientMessage::Input(batch) = &last[0] else { panic!("not an input: {last:?}") };
    assert_eq!(batch.ack, Some(Tick(50)));
    assert_eq!(frame_count(batch), DEFAULT_INPUT_REDUNDANCY);
    let seqs: Vec<u32> = sequenced(batch).into_iter().map(|(s, _)| s).collect();
    assert_eq!(seqs, vec![2, 3, 4, 5]);
    let frames: Vec<TestInput> = sequenced(batch).into_iter().map(|(_, f)| f).collect();
    assert_eq!(frames, vec![frame(2), frame(3), frame(4), frame(5)]);
    assert_eq!(c.stats().inputs_superseded, 0);
    assert!(c.stats().bytes_sent > 0);
}

#[test]
fn input_messages_name_the_moment_the_player_sees() {
    let mut c = welcomed();
    c.handle_bytes(1, &full_bytes(50, &state(&[(1, 0, 0)]), None)).expect("full");
    let view = |c: &mut Client| match transmits(c).pop() {
        Some(ClientMessage::Input(batch)) => batch.view,
        other => panic!("not an input: {other:?}"),
    };
    // By default: the newest snapshot.
    c.push_input(frame(0));
    assert_eq!(view(&mut c), Some(ViewTime { tick: Tick(50), frac: 0 }));
    // What the driver draws, once it says.
    c.set_view(Some(ViewTime::new(Tick(47), 0.5)));
    c.push_input(frame(1));
    assert_eq!(view(&mut c), Some(ViewTime { tick: Tick(47), frac: 128 }));
    c.set_view(None);
    c.push_input(frame(2));
    assert_eq!(view(&mut c), Some(ViewTime { tick: Tick(50), frac: 0 }));
}

#[test]
fn unpolled_input_messages_are_merged_into_the_newest() {
    let mut c = welcomed();
    c.push_input(frame(0));
    let _ = transmits(&mut c);
    // Frames 1..=6 are pushed without polling: one message carries all of them (and frame 0,
    // for redundancy), more than the redundancy of four, so none is lost.
    c.send_ping(5);
    for n in 1..=6 {
        c.push_input(frame(n));
    }
    let sent = transmits(&mut c);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(matches!(sent[0], ClientMessage::Ping { .. }));
    let ClientMessage::Input(batch) = &sent[1] else { panic!("{sent:?}") };
    assert_eq!((batch.first_seq, frame_count(batch)), (0, 7));
    assert_eq!(c.stats().inputs_superseded, 5);
}

#[test]
fn redundancy_is_clamped_and_long_stalls_stay_bounded() {
    let config = ClientConfig { input_redundancy: 0, ..ClientConfig::default() };
    let mut c = Client::new(config);
    assert_eq!(c.config().input_redundancy, 1);
    c.push_input(frame(1));
    let _ = transmits(&mut c);
    c.push_input(frame(2));
    let sent = transmits(&mut c);
    let [ClientMessage::Input(batch)] = sent.as_slice() else { panic!("{sent:?}") };
    assert_eq!((batch.first_seq, frame_count(batch)), (1, 1));

    let big = ClientConfig { input_redundancy: 100, ..ClientConfig::default() };
    let mut c = Client::new(big);
    assert_eq!(c.config().input_redundancy, MAX_INPUT_FRAMES);
    for n in 0..20 {
        c.push_input(frame(n));
    }
    // Each message is full, and together they cover every frame once the queue is drained.
    let sent = transmits(&mut c);
    let mut covered = Vec::new();
    for m in &sent {
        let ClientMessage::Input(batch) = m else { panic!("{sent:?}") };
        assert_eq!(frame_count(batch), MAX_INPUT_FRAMES);
        covered.extend(sequenced(batch).into_iter().map(|(s, _)| s));
    }
    covered.sort_unstable();
    covered.dedup();
    assert_eq!(covered, (0..20).collect::<Vec<u32>>());
    assert!(sent.len() < 20, "{} messages for 20 frames", sent.len());
}

#[test]
fn echoed_input_seq_prunes_unacked_inputs() {
    let mut c = welcomed();
    for n in 0..6 {
        c.push_input(frame(n));
    }
    let _ = transmits(&mut c);
    assert_eq!(c.unacked_inputs().count(), 6);
    assert_eq!(c.last_applied_input(), None);
    c.handle_bytes(1, &full_bytes(10, &state(&[(1, 0, 0)]), Some(3))).expect("full");
    assert_eq!(c.last_applied_input(), Some(3));
    let left: Vec<(u32, TestInput)> = c.unacked_inputs().collect();
    assert_eq!(left, vec![(4, frame(4)), (5, frame(5))]);
    // The next message repeats only unapplied frames.
    c.push_input(frame(6));
    let sent = transmits(&mut c);
    let [ClientMessage::Input(batch)] = sent.as_slice() else { panic!("{sent:?}") };
    assert_eq!((batch.first_seq, frame_count(batch), batch.ack), (4, 3, Some(Tick(10))));
    // An echo past the newest frame sent: the room ran those ticks without them (the frames
    // were late), so none is left to replay.
    c.handle_bytes(2, &full_bytes(11, &state(&[]), Some(500))).expect("an echo ahead");
    assert_eq!(c.unacked_inputs().count(), 0);
    assert_eq!(c.ack(), Some(Tick(11)));
}

#[test]
fn unacked_ring_is_bounded() {
    let mut c = welcomed();
    for n in 0..(MAX_UNACKED_INPUTS + 10) {
        c.push_input(frame((n % 100) as i8));
    }
    assert_eq!(c.unacked_inputs().count(), MAX_UNACKED_INPUTS);
    assert_eq!(c.unacked_inputs().next().map(|(s, _)| s), Some(10));
    assert_eq!(c.stats().inputs_dropped, 10);
}

#[test]
fn garbage_is_an_error_and_counted() {
    let mut c = welcomed();
    let err = c.handle_bytes(1, &[0xff, 0xfe, 0x00, 0x13, 0x37]).unwrap_err();
    assert!(matches!(err, ClientError::Codec(_)), "{err:?}");
    assert_eq!(c.stats().decode_errors, 1);
    // A snapshot whose body is garbage.
    let msg = SnapshotMessage {
        tick: Tick(3),
        baseline: None,
        last_input_seq: None,
        inputs_late: 0,
        input_margin: None,
        body: vec![0xff; 40],
    };
    let bytes = encode_server(&ServerMessage::Snapshot(msg)).expect("encode");
    assert!(matches!(c.handle_bytes(2, &bytes), Err(ClientError::Snapshot(_))));
    assert_eq!(c.stats().decode_errors, 2);
    assert_eq!(c.latest(), None);
    // Still usable.
    c.handle_bytes(3, &full_bytes(4, &state(&[(1, 2, 3)]), None)).expect("full");
    assert_eq!(c.ack(), Some(Tick(4)));
}

#[test]
fn truncations_of_every_message_never_panic() {
    let s1 = state(&[(1, 10, 20), (4, -5, 0)]);
    let s2 = state(&[(1, 11, 20), (5, 1, 1)]);
    let msgs = [welcome_bytes(), full_bytes(2, &s1, Some(0)), delta_bytes(4, 2, &s1, &s2, None)];
    for msg in &msgs {
        for cut in 0..msg.len() {
            let mut c = welcomed();
            c.push_input(frame(1));
            c.handle_bytes(1, &full_bytes(2, &s1, None)).expect("baseline");
            let _ = c.handle_bytes(2, &msg[..cut]);
            let mut flipped = msg.clone();
            flipped[cut] ^= 0x5a;
            let _ = c.handle_bytes(3, &flipped);
        }
    }
}

#[test]
fn ping_pong_measures_rtt() {
    let mut c = welcomed();
    let _ = events(&mut c);
    c.send_ping(1_000);
    c.send_ping(2_000);
    let sent = transmits(&mut c);
    assert_eq!(
        sent,
        vec![
            ClientMessage::Ping { id: 0, client_time_us: 1_000 },
            ClientMessage::Ping { id: 1, client_time_us: 2_000 },
        ]
    );
    let pong = ServerMessage::Pong { id: 1, client_time_us: 2_000, tick: Tick(9) };
    c.handle_bytes(47_000, &encode_server(&pong).expect("encode")).expect("pong");
    assert_eq!(events(&mut c), vec![ClientEvent::Pong { id: 1, rtt_us: 45_000 }]);
    assert_eq!(c.stats().rtt_us, Some(45_000));
    // A pong from the future gives 0, not a wrapped value.
    let pong = ServerMessage::Pong { id: 0, client_time_us: 90_000, tick: Tick(9) };
    c.handle_bytes(50_000, &encode_server(&pong).expect("encode")).expect("pong");
    assert_eq!(events(&mut c), vec![ClientEvent::Pong { id: 0, rtt_us: 0 }]);
    assert_eq!(c.stats().last_rtt_us, Some(0));
    assert_eq!(c.stats().rtt_us, Some(45_000 - 45_000 / RTT_SMOOTHING));
}

#[test]
fn chat_events_and_disconnect_surface() {
    let mut c = welcomed();
    let _ = events(&mut c);
    let msgs = [
        ServerMessage::Chat { from: NetId(2), name: "ann".into(), text: "hi".into() },
        ServerMessage::Event(RoomEvent::Left { entity: NetId(3), name: "bo".into() }),
        ServerMessage::GameEvent { body: encode_game_event(&TestEvent::Boom(NetId(2))).unwrap() },
        ServerMessage::Disconnect { reason: DisconnectReason::Timeout, message: "bye".into() },
    ];
    for m in &msgs {
        c.handle_bytes(5, &encode_server(m).expect("encode")).expect("handled");
    }
    assert_eq!(
        events(&mut c),
        vec![
            ClientEvent::Chat { from: NetId(2), name: "ann".into(), text: "hi".into() },
            ClientEvent::Room(RoomEvent::Left { entity: NetId(3), name: "bo".into() }),
            ClientEvent::Game(TestEvent::Boom(NetId(2))),
            ClientEvent::Disconnected { reason: DisconnectReason::Timeout, message: "bye".into() },
        ]
    );
}

#[test]
fn chat_is_truncated_and_leave_stops_sending() {
    let mut c = welcomed();
    let long = "é".repeat(MAX_CHAT_BYTES); // two bytes each
    c.send_chat(&long);
    c.leave();
    c.leave();
    c.send_chat("after");
    c.send_ping(1);
    c.push_input(frame(1));
    let sent = transmits(&mut c);
    assert_eq!(sent.len(), 2, "{sent:?}");
    let ClientMessage::Chat { text } = &sent[0] else { panic!("{sent:?}") };
    assert_eq!(text.len(), MAX_CHAT_BYTES);
    assert_eq!(sent[1], ClientMessage::Leave);
    assert!(c.has_left());
}

#[test]
fn event_queue_drops_snapshots_first_and_keeps_chat() {
    let mut c = welcomed();
    let s = state(&[(1, 0, 0)]);
    for t in 0..(MAX_QUEUED_EVENTS as u32 + 50) {
        c.handle_bytes(1, &full_bytes(10 + t, &s, None)).expect("full");
        if t % 10 == 0 {
            let chat =
                ServerMessage::Chat { from: NetId(1), name: "a".into(), text: t.to_string() };
            c.handle_bytes(1, &encode_server(&chat).expect("encode")).expect("chat");
        }
    }
    let evs = events(&mut c);
    assert_eq!(evs.len(), MAX_QUEUED_EVENTS);
    let chats = evs.iter().filter(|e| matches!(e, ClientEvent::Chat { .. })).count();
    assert_eq!(chats, (MAX_QUEUED_EVENTS + 50).div_ceil(10), "no chat dropped");
    assert!(matches!(evs[0], ClientEvent::Welcomed(_)), "welcome kept");
    assert!(c.stats().events_dropped > 0);
    // The newest snapshot event survives.
    let last = MAX_QUEUED_EVENTS as u32 + 49 + 10;
    assert!(evs.contains(&ClientEvent::Snapshot {
        tick: Tick(last),
        full: true,
        bytes: full_bytes(last, &s, None).len()
    }));
}

#[test]
fn transmit_queue_is_bounded() {
    let mut c = welcomed();
    for t in 0..(MAX_QUEUED_TRANSMITS as u64 + 10) {
        c.send_ping(t);
    }
    c.send_chat("kept");
    let sent = transmits(&mut c);
    assert_eq!(sent.len(), MAX_QUEUED_TRANSMITS);
    assert_eq!(sent.last(), Some(&ClientMessage::Chat { text: "kept".into() }));
    assert_eq!(c.stats().transmits_dropped, 11);
}

#[test]
fn snapshots_apply_across_the_tick_wrap() {
    let mut c = welcomed();
    let s1 = state(&[(1, 0, 0)]);
    let s2 = state(&[(1, 1, 1)]);
    c.handle_bytes(1, &full_bytes(u32::MAX, &s1, None)).expect("full");
    c.handle_bytes(2, &delta_bytes(1, u32::MAX, &s1, &s2, None)).expect("delta across the wrap");
    assert_eq!(c.latest(), Some((Tick(1), &s2)));
    c.handle_bytes(3, &full_bytes(u32::MAX - 1, &s1, None)).expect("stale");
    assert_eq!(c.stats().stale_snapshots, 1);
    assert_eq!(c.ack(), Some(Tick(1)));
}

fn welcome_with(token: &str, entity: u32, client_id: u32) -> Vec<u8> {
    let w = Welcome {
        resume_token: token.into(),
        entity: NetId(entity),
        client_id: ClientId(client_id),
        tick: Tick(client_id * 1000),
        ..welcome_for(&registry())
    };
    encode_server(&ServerMessage::Welcome(w)).expect("encode")
}

#[test]
fn a_second_welcome_for_a_new_player_drops_the_kept_baselines() {
    let s1 = state(&[(1, 0, 0)]);
    let s2 = state(&[(1, 1, 0)]);
    // A new token (the resume was not honoured), or the same token for another entity.
    for (token, entity) in [("other", 1), ("tok", 2)] {
        let mut c = Client::new(ClientConfig::default());
        c.handle_bytes(0, &welcome_with("tok", 1, 3)).expect("welcome");
        c.handle_bytes(1, &full_bytes(10, &s1, None)).expect("full");
        c.push_input(frame(1));
        c.handle_bytes(2, &welcome_with(token, entity, 4)).expect("welcome again");
        assert_eq!(c.ack(), None, "{token} {entity}");
        let err = c.handle_bytes(3, &delta_bytes(12, 10, &s1, &s2, None)).unwrap_err();
        assert_eq!(err, ClientError::UnknownBaseline(Tick(10)));
        assert_eq!(c.push_input(frame(2)), 1, "input numbering continues");
    }
}

#[test]
fn a_resumed_welcome_keeps_the_states_and_a_delta_against_the_old_ack_decodes() {
    let mut c = Client::new(ClientConfig::default());
    c.handle_bytes(0, &welcome_with("tok", 1, 3)).expect("welcome");
    let s1 = state(&[(1, 0, 0), (5, 9, 9)]);
    let s2 = state(&[(1, 1, 0), (5, 9, 9)]);
    c.handle_bytes(1, &full_bytes(10, &s1, None)).expect("full");
    c.handle_bytes(2, &delta_bytes(12, 10, &s1, &s2, Some(0))).expect("delta");
    c.push_input(frame(1));
    c.push_input(frame(2));
    // The connection drops; the same player is resumed on a new one (a new client id).
    c.handle_bytes(3, &welcome_with("tok", 1, 4)).expect("resumed");
    assert!(matches!(events(&mut c).last(), Some(ClientEvent::Welcomed(_))));
    assert_eq!(c.ack(), Some(Tick(12)), "the acknowledged state is kept");
    // The room's first snapshot is a delta against it, some 3 s later.
    let s3 = state(&[(1, 40, 2), (7, 1, 1)]);
    c.handle_bytes(4, &delta_bytes(200, 12, &s2, &s3, Some(1))).expect("delta after resume");
    assert_eq!(c.latest(), Some((Tick(200), &s3)));
    assert_eq!(c.stats().full_snapshots, 1);
    assert_eq!(c.last_applied_input(), Some(1));
    assert_eq!(c.push_input(frame(3)), 2, "input numbering continues");
    let Some(ClientMessage::Input(batch)) = transmits(&mut c).pop() else { panic!("an input") };
    assert_eq!(batch.ack, Some(Tick(200)));
}

#[test]
fn a_welcome_for_another_game_is_refused() {
    let mut w = welcome_for(&registry());
    w.game = "chess".into();
    let bytes = encode_server(&ServerMessage::Welcome(w)).expect("encode");
    let mut c = Client::new(ClientConfig::default());
    assert_eq!(
        c.handle_bytes(0, &bytes),
        Err(ClientError::GameMismatch { server: "chess".into(), client: "test" })
    );
    // A game event that is not the game's type is a decode error, and the client goes on.
    let mut c = welcomed();
    let bad = ServerMessage::GameEvent { body: vec![9, 9, 9] };
    assert!(c.handle_bytes(1, &encode_server(&bad).unwrap()).is_err());
    assert_eq!(c.stats().decode_errors, 1);
}

#[test]
fn after_a_resume_a_delta_against_a_dropped_baseline_drops_the_states() {
    let config = ClientConfig { max_stored_states: 2, ..ClientConfig::default() };
    let mut c = Client::new(config);
    c.handle_bytes(0, &welcome_with("tok", 1, 3)).expect("welcome");
    let s1 = state(&[(1, 0, 0)]);
    let s2 = state(&[(1, 1, 0)]);
    let s3 = state(&[(1, 2, 0)]);
    c.handle_bytes(1, &full_bytes(10, &s1, None)).expect("full");
    c.handle_bytes(2, &delta_bytes(12, 10, &s1, &s2, None)).expect("delta");
    c.handle_bytes(3, &delta_bytes(14, 12, &s2, &s3, None)).expect("delta");
    // Within a session a refused baseline keeps the states: the ack names the newest.
    let err = c.handle_bytes(4, &delta_bytes(16, 10, &s1, &s3, None)).unwrap_err();
    assert_eq!(err, ClientError::UnknownBaseline(Tick(10)));
    assert_eq!(c.ack(), Some(Tick(14)));
    // After a resume the room knows only its baseline: without it, nothing kept is of use.
    c.handle_bytes(5, &welcome_with("tok", 1, 4)).expect("resumed");
    assert_eq!(c.ack(), Some(Tick(14)));
    let err = c.handle_bytes(6, &delta_bytes(200, 10, &s1, &s3, None)).unwrap_err();
    assert_eq!(err, ClientError::UnknownBaseline(Tick(10)));
    assert_eq!(c.ack(), None, "the next input asks for a full snapshot");
    c.push_input(frame(1));
    let Some(ClientMessage::Input(batch)) = transmits(&mut c).pop() else { panic!("an input") };
    assert_eq!(batch.ack, None);
    c.handle_bytes(7, &full_bytes(202, &s3, None)).expect("full");
    assert_eq!(c.latest(), Some((Tick(202), &s3)));
}
