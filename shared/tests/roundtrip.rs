//! Property tests of the wire: every client and server message (each variant, arbitrary field
//! values), each game's input frames and events, round trip through the codec; and snapshots,
//! full and delta, encoded by the server's prepared encoders for a client's view and applied by
//! a real [`Client`], reproduce the server's state, with the real games' registries.
//!
//! The strategies are written here by hand. `every_variant_is_generated` keeps them complete: a
//! new variant breaks the exhaustive `match` in `variant` (so it must be added here) and the
//! test fails until a strategy generates it.

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use tickwire_shared::bits::BitWriter;
use tickwire_shared::client::{Client, ClientConfig};
use tickwire_shared::codec;
use tickwire_shared::game::{Game, registry};
use tickwire_shared::games::arena::{ArenaEvent, ArenaGame, ArenaInput, Buttons};
use tickwire_shared::games::soccer::{SoccerEvent, SoccerGame, SoccerInput, Team};
use tickwire_shared::join::truncate_utf8;
use tickwire_shared::motion;
use tickwire_shared::protocol::{
    ClientMessage, DisconnectReason, InputBatch, MAX_CHAT_BYTES, MAX_INPUT_FRAMES, MAX_TEXT_BYTES,
    PROTOCOL_VERSION, RoomEvent, ServerMessage, SnapshotHeader, SnapshotMessage, Welcome,
};
use tickwire_shared::registry::{FieldKind, ReplicationRegistry};
use tickwire_shared::snapshot::{self, PreparedDelta, PreparedState, ReplicatedState, View};
use tickwire_shared::{ClientId, NetId, Tick};

// ---------------------------------------------------------------------------------------------
// Strategies: values of every wire type.

fn tick() -> impl Strategy<Value = Tick> {
    any::<u32>().prop_map(Tick)
}

fn net_id() -> impl Strategy<Value = NetId> {
    any::<u32>().prop_map(NetId)
}

/// Any Unicode text of at most `max_bytes` (cut at a character boundary).
fn text(max_bytes: usize) -> impl Strategy<Value = String> {
    ".{0,80}".prop_map(move |s| truncate_utf8(&s, max_bytes).to_owned())
}

fn arena_input() -> impl Strategy<Value = ArenaInput> {
    (any::<[i8; 2]>(), any::<u16>(), any::<u8>()).prop_map(|(movement, aim, b)| ArenaInput {
        movement,
        aim,
        buttons: Buttons(b),
    })
}

fn soccer_input() -> impl Strategy<Value = SoccerInput> {
    (any::<[i8; 2]>(), any::<u8>(), any::<bool>()).prop_map(|(run, kick, sprint)| SoccerInput {
        run,
        kick,
        sprint,
    })
}

fn arena_event() -> impl Strategy<Value = ArenaEvent> {
    prop_oneof![
        (proptest::option::of(net_id()), net_id())
            .prop_map(|(killer, victim)| ArenaEvent::Killed { killer, victim }),
        net_id().prop_map(|entity| ArenaEvent::Respawned { entity }),
    ]
}

fn soccer_event() -> impl Strategy<Value = SoccerEvent> {
    prop_oneof![
        (prop_oneof![Just(Team::Red), Just(Team::Blue)], proptest::option::of(net_id()))
            .prop_map(|(team, scorer)| SoccerEvent::Goal { team, scorer }),
        Just(SoccerEvent::Kickoff),
    ]
}

/// An input batch's frames: either game's, encoded, or any bytes (the envelope does not look
/// inside; the room does).
fn frames() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(arena_input(), 1..=MAX_INPUT_FRAMES)
            .prop_map(|f| codec::encode_inputs(&f).expect("1 to 8 frames encode")),
        proptest::collection::vec(soccer_input(), 1..=MAX_INPUT_FRAMES)
            .prop_map(|f| codec::encode_inputs(&f).expect("1 to 8 frames encode")),
        proptest::collection::vec(any::<u8>(), 1..200),
    ]
}

fn client_message() -> impl Strategy<Value = ClientMessage> {
    prop_oneof![
        (proptest::option::of(tick()), any::<u32>(), frames()).prop_map(
            |(ack, first_seq, frames)| ClientMessage::Input(InputBatch {
                ack,
                first_seq,
                frames,
                view: None
            })
        ),
        (any::<u32>(), any::<u64>())
            .prop_map(|(id, client_time_us)| ClientMessage::Ping { id, client_time_us }),
        text(MAX_CHAT_BYTES).prop_map(|text| ClientMessage::Chat { text }),
        Just(ClientMessage::Leave),
    ]
}

fn welcome() -> impl Strategy<Value = Welcome> {
    (
        (any::<u16>(), any::<u32>(), text(MAX_TEXT_BYTES), text(32), net_id()),
        (any::<u16>(), any::<u16>(), tick(), text(MAX_TEXT_BYTES), any::<u64>()),
    )
        .prop_map(
            |(
                (protocol, client, room, game, entity),
                (tick_rate, snapshot_rate, tick, resume_token, registry_fingerprint),
            )| Welcome {
                protocol,
                client_id: ClientId(client),
                room,
                game,
                entity,
                tick_rate,
                snapshot_rate,
                tick,
                resume_token,
                registry_fingerprint,
                schema: Box::new(tickwire_shared::schema::GameSchema::of::<
                    tickwire_shared::games::soccer::SoccerGame,
                >()),
            },
        )
}

fn room_event() -> impl Strategy<Value = RoomEvent> {
    prop_oneof![
        (any::<u32>(), net_id(), text(MAX_TEXT_BYTES)).prop_map(|(client, entity, name)| {
            RoomEvent::Joined { client: ClientId(client), entity, name }
        }),
        (net_id(), text(MAX_TEXT_BYTES))
            .prop_map(|(entity, name)| RoomEvent::Left { entity, name }),
    ]
}

fn server_message() -> impl Strategy<Value = ServerMessage> {
    prop_oneof![
        welcome().prop_map(ServerMessage::Welcome),
        (
            tick(),
            proptest::option::of(tick()),
            (proptest::option::of(any::<u32>()), any::<u32>(), proptest::option::of(any::<i16>()),),
            proptest::collection::vec(any::<u8>(), 0..600),
        )
            .prop_map(
                |(tick, baseline, (last_input_seq, inputs_late, input_margin), body)| {
                    ServerMessage::Snapshot(SnapshotMessage {
                        tick,
                        baseline,
                        last_input_seq,
                        inputs_late,
                        input_margin,
                        body,
                    })
                }
            ),
        (any::<u32>(), any::<u64>(), tick()).prop_map(|(id, client_time_us, tick)| {
            ServerMessage::Pong { id, client_time_us, tick }
        }),
        (net_id(), text(MAX_TEXT_BYTES), text(MAX_CHAT_BYTES))
            .prop_map(|(from, name, text)| ServerMessage::Chat { from, name, text }),
        room_event().prop_map(ServerMessage::Event),
        prop_oneof![
            arena_event().prop_map(|e| codec::encode_game_event(&e).expect("an event encodes")),
            soccer_event().prop_map(|e| codec::encode_game_event(&e).expect("an event encodes")),
            proptest::collection::vec(any::<u8>(), 0..100),
        ]
        .prop_map(|body| ServerMessage::GameEvent { body }),
        (proptest::sample::select(&DisconnectReason::ALL[..]), text(MAX_TEXT_BYTES))
            .prop_map(|(reason, message)| ServerMessage::Disconnect { reason, message }),
    ]
}

/// Which variant a message is; exhaustive, so a new variant must be named here.
fn variant(msg: &Message) -> &'static str {
    match msg {
        Message::Client(ClientMessage::Input(_)) => "client Input",
        Message::Client(ClientMessage::Ping { .. }) => "client Ping",
        Message::Client(ClientMessage::Chat { .. }) => "client Chat",
        Message::Client(ClientMessage::Leave) => "client Leave",
        Message::Server(ServerMessage::Welcome(_)) => "server Welcome",
        Message::Server(ServerMessage::Snapshot(_)) => "server Snapshot",
        Message::Server(ServerMessage::Pong { .. }) => "server Pong",
        Message::Server(ServerMessage::Chat { .. }) => "server Chat",
        Message::Server(ServerMessage::Event(RoomEvent::Joined { .. })) => "server Event Joined",
        Message::Server(ServerMessage::Event(RoomEvent::Left { .. })) => "server Event Left",
        Message::Server(ServerMessage::GameEvent { .. }) => "server GameEvent",
        Message::Server(ServerMessage::Disconnect { .. }) => "server Disconnect",
        Message::Arena(ArenaEvent::Killed { .. }) => "arena Killed",
        Message::Arena(ArenaEvent::Respawned { .. }) => "arena Respawned",
        Message::Soccer(SoccerEvent::Goal { .. }) => "soccer Goal",
        Message::Soccer(SoccerEvent::Kickoff) => "soccer Kickoff",
    }
}

/// Anything the strategies make, for [`variant`].
#[derive(Debug)]
enum Message {
    Client(ClientMessage),
    Server(ServerMessage),
    Arena(ArenaEvent),
    Soccer(SoccerEvent),
}

const VARIANTS: usize = 16;

#[test]
fn every_variant_is_generated() {
    let mut runner = TestRunner::deterministic();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..400 {
        let r = &mut runner;
        for msg in [
            Message::Client(client_message().new_tree(r).expect("a value").current()),
            Message::Server(server_message().new_tree(r).expect("a value").current()),
            Message::Arena(arena_event().new_tree(r).expect("a value").current()),
            Message::Soccer(soccer_event().new_tree(r).expect("a value").current()),
        ] {
            seen.insert(variant(&msg));
        }
    }
    assert_eq!(seen.len(), VARIANTS, "generated only {seen:?}");
}

// ---------------------------------------------------------------------------------------------
// Messages round trip.

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn client_messages_round_trip(msg in client_message()) {
        let bytes = codec::encode_client(&msg).expect("a valid message encodes");
        prop_assert_eq!(codec::decode_client(&bytes), Ok(msg.clone()));
        // Appending writes the same bytes after what is there.
        let mut out = vec![7];
        codec::encode_client_into(&msg, &mut out).expect("a valid message encodes");
        prop_assert_eq!(&out[1..], &bytes[..]);
    }

    #[test]
    fn server_messages_round_trip(msg in server_message()) {
        let bytes = codec::encode_server(&msg).expect("a message under the limit encodes");
        prop_assert_eq!(codec::decode_server(&bytes), Ok(msg.clone()));
        if let ServerMessage::Snapshot(s) = &msg {
            let mut out = Vec::new();
            codec::encode_snapshot_into(s.header(), &s.body, &mut out)
                .expect("a snapshot under the limit encodes");
            prop_assert_eq!(out, bytes, "the borrowed snapshot encoder writes the same bytes");
        }
    }

    #[test]
    fn input_frames_round_trip(
        arena in proptest::collection::vec(arena_input(), 1..=MAX_INPUT_FRAMES),
        soccer in proptest::collection::vec(soccer_input(), 1..=MAX_INPUT_FRAMES),
    ) {
        let mut back = Vec::new();
        codec::decode_inputs::<ArenaInput>(&codec::encode_inputs(&arena).expect("encodes"), &mut back)
            .expect("decodes");
        prop_assert_eq!(&back, &arena);
        let mut back = Vec::new();
        codec::decode_inputs::<SoccerInput>(&codec::encode_inputs(&soccer).expect("encodes"), &mut back)
            .expect("decodes");
        prop_assert_eq!(&back, &soccer);
    }

    #[test]
    fn game_events_round_trip(arena in arena_event(), soccer in soccer_event()) {
        let body = codec::encode_game_event(&arena).expect("encodes");
        prop_assert_eq!(codec::decode_game_event::<ArenaEvent>(&body), Ok(arena));
        let body = codec::encode_game_event(&soccer).expect("encodes");
        prop_assert_eq!(codec::decode_game_event::<SoccerEvent>(&body), Ok(soccer));
    }
}

// ---------------------------------------------------------------------------------------------
// Snapshots: the server's encoders, a real client's apply.

/// Fields generated per entity; every game's stride must fit.
const MAX_STRIDE: usize = 32;

/// What happens to one entity from one snapshot tick to the next.
#[derive(Clone, Debug)]
enum Fate {
    /// Not in this tick's state (despawned, or not yet spawned).
    Absent,
    /// As before.
    Same,
    /// Each field moved by a small amount (what most ticks look like).
    Nudge(Vec<i8>),
    /// A new row: components and any values (a spawn, a respawn, a teleport).
    Fresh(u32, Vec<i32>),
}

fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        1 => Just(Fate::Absent),
        2 => Just(Fate::Same),
        4 => proptest::collection::vec(any::<i8>(), MAX_STRIDE).prop_map(Fate::Nudge),
        2 => (any::<u32>(), proptest::collection::vec(any::<i32>(), MAX_STRIDE))
            .prop_map(|(mask, fields)| Fate::Fresh(mask, fields)),
    ]
}

/// One snapshot tick: each entity's fate, which of the present entities the client sees, and
/// which kept state the server deltas against (or a full snapshot).
#[derive(Clone, Debug)]
struct TickPlan {
    fates: Vec<Fate>,
    seen: Vec<bool>,
    baseline: Index,
    full: bool,
}

/// Entity ids (small ones, as the server allocates, and any below `u32::MAX`) and 2 to 7
/// snapshot ticks of them.
fn history() -> impl Strategy<Value = (Vec<u32>, Vec<TickPlan>)> {
    proptest::collection::btree_set(prop_oneof![1u32..300, 0u32..u32::MAX], 1..24).prop_flat_map(
        |ids| {
            let n = ids.len();
            let plan = (
                proptest::collection::vec(fate(), n),
                proptest::collection::vec(proptest::bool::weighted(0.85), n),
                any::<Index>(),
                proptest::bool::weighted(0.15),
            )
                .prop_map(|(fates, seen, baseline, full)| TickPlan {
                    fates,
                    seen,
                    baseline,
                    full,
                });
            (Just(ids.into_iter().collect::<Vec<_>>()), proptest::collection::vec(plan, 2..8))
        },
    )
}

/// A row as the registry allows it: only registered components, absent ones' fields zero,
/// angles in 16 bits.
fn normalise(reg: &ReplicationRegistry, mask: u32, fields: &mut [i32]) -> u32 {
    let mask = mask & reg.full_mask();
    for (idx, offset, specs) in reg.layout() {
        for (i, spec) in specs.iter().enumerate() {
            let f = &mut fields[offset + i];
            if mask & (1 << idx.0) == 0 {
                *f = 0;
            } else if spec.kind == FieldKind::Angle {
                *f &= 0xffff;
            }
        }
    }
    mask
}

/// The server's states, tick by tick, from the plan.
fn states(reg: &ReplicationRegistry, ids: &[u32], plans: &[TickPlan]) -> Vec<ReplicatedState> {
    let stride = reg.stride();
    let mut rows: Vec<Option<(u32, Vec<i32>)>> = vec![None; ids.len()];
    let mut out = Vec::new();
    for plan in plans {
        let mut state = ReplicatedState::new(stride);
        for ((id, row), fate) in ids.iter().zip(&mut rows).zip(&plan.fates) {
            match fate {
                Fate::Absent => *row = None,
                Fate::Same => {}
                Fate::Nudge(by) => {
                    if let Some((mask, fields)) = row {
                        for (f, d) in fields.iter_mut().zip(by) {
                            *f = f.wrapping_add(i32::from(*d));
                        }
                        *mask = normalise(reg, *mask, fields);
                    }
                }
                Fate::Fresh(mask, fields) => {
                    let mut fields = fields[..stride].to_vec();
                    let mask = normalise(reg, *mask, &mut fields);
                    *row = Some((mask, fields));
                }
            }
            if let Some((mask, fields)) = row {
                state.push(NetId(*id), *mask, fields).expect("ids ascend");
            }
        }
        out.push(state);
    }
    out
}

/// Which positions of `state` the client sees.
fn view_of(state: &ReplicatedState, ids: &[u32], seen: &[bool]) -> View {
    let mut view = View::empty(state.len());
    for (i, e) in state.iter().enumerate() {
        let k = ids.binary_search(&e.id.0).expect("a planned id");
        if seen[k] {
            view.insert(i);
        }
    }
    view
}

/// Plays `plans` from a server to a client of game `G`: each tick the server encodes the
/// client's view of its state, in full or as a delta against a state the client kept (with the
/// prepared encoders the room uses), and the client must then hold exactly that view.
fn server_to_client<G: Game>(ids: &[u32], plans: &[TickPlan]) -> Result<(), TestCaseError> {
    let reg = registry::<G>();
    prop_assert!(reg.stride() <= MAX_STRIDE);
    let mut client = Client::<G>::new(ClientConfig::default());
    let welcome = Welcome {
        protocol: PROTOCOL_VERSION,
        client_id: ClientId(1),
        room: "r".into(),
        game: G::NAME.into(),
        entity: NetId(1),
        tick_rate: 60,
        snapshot_rate: 30,
        tick: Tick(0),
        resume_token: "t".into(),
        registry_fingerprint: reg.fingerprint(),
        schema: Box::new(tickwire_shared::schema::GameSchema::of::<G>()),
    };
    let bytes = codec::encode_server(&ServerMessage::Welcome(welcome)).expect("encodes");
    client.handle_bytes(0, &bytes).expect("the welcome matches the game");

    // What the server sent: the tick, its whole state, the client's view of it.
    let mut sent: Vec<(Tick, ReplicatedState, View)> = Vec::new();
    for (i, (state, plan)) in states(&reg, ids, plans).into_iter().zip(plans).enumerate() {
        let tick = Tick(1_000 + 2 * i as u32);
        let view = view_of(&state, ids, &plan.seen);
        let sees = state.subset(&view.ids(&state));
        let prepared = PreparedState::new(&reg, &state);
        let base = if sent.is_empty() || plan.full { None } else { Some(plan.baseline.get(&sent)) };
        let (mut fast, mut plain) = (BitWriter::default(), BitWriter::default());
        match base {
            None => {
                snapshot::encode_full_prepared(&reg, &state, &prepared, &view, &mut fast);
                snapshot::encode_full(&reg, sees.iter(), &mut plain);
            }
            Some((base_tick, base_state, base_view)) => {
                // Against the baseline moved on by the motions in it, as the room does.
                let predicted = motion::predicted(&reg, base_state, tick.0 - base_tick.0);
                let base_state = predicted.as_ref().unwrap_or(base_state);
                let delta = PreparedDelta::new(&reg, base_state, &state);
                snapshot::encode_delta_prepared(&reg, &state, &delta, base_view, &view, &mut fast);
                let base_sees = base_state.subset(&base_view.ids(base_state));
                snapshot::encode_delta(&reg, base_sees.iter(), sees.iter(), &mut plain);
            }
        }
        let body = fast.finish();
        prop_assert_eq!(&body, &plain.finish(), "prepared and plain encoders agree");
        let mut msg = Vec::new();
        codec::encode_snapshot_into(
            SnapshotHeader {
                tick,
                baseline: base.map(|b| b.0),
                last_input_seq: None,
                inputs_late: 0,
                input_margin: None,
            },
            &body,
            &mut msg,
        )
        .expect("a small snapshot encodes");
        client.handle_bytes(u64::from(tick.0), &msg).expect("the client applies the snapshot");
        prop_assert_eq!(client.latest(), Some((tick, &sees)), "the client holds its view");
        sent.push((tick, state, view));
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn arena_snapshots_reach_the_client_intact((ids, plans) in history()) {
        server_to_client::<ArenaGame>(&ids, &plans)?;
    }

    #[test]
    fn soccer_snapshots_reach_the_client_intact((ids, plans) in history()) {
        server_to_client::<SoccerGame>(&ids, &plans)?;
    }
}
