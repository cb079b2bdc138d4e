//! Tickwire's fuzz targets, as plain functions of the input bytes.
//!
//! Each `fuzz_targets/<name>.rs` hands libFuzzer's input to the function of the same name here
//! (`scripts/fuzz.sh` builds and runs them). The same functions replay the pinned corpus
//! (`fuzz/corpus/<name>/`) without libFuzzer: `tests/tests/fuzz_corpus.rs` in the main workspace
//! includes this file, so an ordinary `cargo test` runs every seed and every regression.
//!
//! A target fails by panicking: on a decoder that panics, and on a property that breaks (what
//! decodes re-encodes and decodes to the same value; what the client applies re-encodes to the
//! same state; a handshake is refused only with a client error).
//!
//! This file depends only on `tickwire-shared`, `tickwire-server` and `hyper` (no libFuzzer), so
//! that the main workspace can include it.

use std::sync::{Arc, OnceLock};

use hyper::header::{HeaderName, HeaderValue};
use hyper::{Request, Uri};
use tickwire_server::auth::{Claims, JwtKeys};
use tickwire_server::config::ServerConfig;
use tickwire_server::h3;
use tickwire_server::metrics::Metrics;
use tickwire_server::rooms::Rooms;
use tickwire_server::state::AppState;
use tickwire_server::ws::check_handshake;
use tickwire_shared::bits::BitWriter;
use tickwire_shared::client::{ClientConfig, Session};
use tickwire_shared::codec;
use tickwire_shared::game::{Game, registry};
use tickwire_shared::games::arena::{ArenaEvent, ArenaGame, ArenaInput, Buttons};
use tickwire_shared::games::soccer::{SoccerEvent, SoccerGame, SoccerInput, Team};
use tickwire_shared::ids::{ClientId, NetId};
use tickwire_shared::join::{self, JoinRequest};
use tickwire_shared::protocol::{
    ClientMessage, DisconnectReason, InputBatch, PROTOCOL_VERSION, RoomEvent, SUBPROTOCOL,
    ServerMessage, SnapshotMessage,
};
use tickwire_shared::registry::ReplicationRegistry;
use tickwire_shared::room::{Output, RoomCore, RoomSettings};
use tickwire_shared::snapshot::{self, ReplicatedState};
use tickwire_shared::tick::Tick;

/// A target: it takes the input's bytes and panics on a bug.
pub type Target = fn(&[u8]);

/// Every target: its name (the folder of its corpus) and its function.
pub const TARGETS: &[(&str, Target)] = &[
    ("client_message", client_message),
    ("server_message", server_message),
    ("snapshot_apply", snapshot_apply),
    ("join_query", join_query),
    ("handshake_headers", handshake_headers),
    ("webtransport_request", webtransport_request),
];

// ---------------------------------------------------------------------------------------------
// client_message

/// Client→server bytes, as the server reads them: the envelope ([`codec::decode_client`]), then
/// an input batch's frames with each game's input type ([`codec::decode_inputs`] and
/// [`Game::validate_input`], as the room does). The raw bytes are also tried as frames directly.
/// What decodes must re-encode and decode to the same value.
pub fn client_message(data: &[u8]) {
    if let Ok(msg) = codec::decode_client(data) {
        let bytes = codec::encode_client(&msg).expect("a decoded client message re-encodes");
        assert_eq!(codec::decode_client(&bytes).as_ref(), Ok(&msg), "client message round trip");
        if let ClientMessage::Input(batch) = &msg {
            input_frames::<ArenaGame>(&batch.frames);
            input_frames::<SoccerGame>(&batch.frames);
        }
    }
    input_frames::<ArenaGame>(data);
    input_frames::<SoccerGame>(data);
}

fn input_frames<G: Game>(bytes: &[u8]) {
    let mut frames = Vec::new();
    if codec::decode_inputs::<G::Input>(bytes, &mut frames).is_err() {
        return;
    }
    for frame in &frames {
        // Refusing is fine; panicking is not.
        let _ = G::validate_input(frame);
    }
    let again = codec::encode_inputs(&frames).expect("decoded input frames re-encode");
    let mut back = Vec::new();
    codec::decode_inputs::<G::Input>(&again, &mut back).expect("re-encoded input frames decode");
    assert_eq!(back, frames, "{} input frames round trip", G::NAME);
}

// ---------------------------------------------------------------------------------------------
// server_message

/// Server→client bytes, as a client reads them: the envelope ([`codec::decode_server`]) and a
/// game event's body with each game's event type ([`codec::decode_game_event`]); the raw bytes
/// are also tried as game events directly. What decodes must re-encode and decode to the same
/// value, and a snapshot's borrowed encoder must write what the owned one writes.
pub fn server_message(data: &[u8]) {
    if let Ok(msg) = codec::decode_server(data) {
        let bytes = codec::encode_server(&msg).expect("a decoded server message re-encodes");
        assert_eq!(codec::decode_server(&bytes).as_ref(), Ok(&msg), "server message round trip");
        match &msg {
            ServerMessage::Snapshot(s) => {
                let mut borrowed = Vec::new();
                codec::encode_snapshot_into(s.header(), &s.body, &mut borrowed)
                    .expect("a decoded snapshot re-encodes");
                assert_eq!(borrowed, bytes, "encode_snapshot_into writes encode_server's bytes");
            }
            ServerMessage::GameEvent { body } => {
                game_event::<ArenaGame>(body);
                game_event::<SoccerGame>(body);
            }
            _ => {}
        }
    }
    game_event::<ArenaGame>(data);
    game_event::<SoccerGame>(data);
}

fn game_event<G: Game>(bytes: &[u8]) {
    if let Ok(event) = codec::decode_game_event::<G::Event>(bytes) {
        let again = codec::encode_game_event(&event).expect("a decoded game event re-encodes");
        assert_eq!(
            codec::decode_game_event::<G::Event>(&again).as_ref(),
            Ok(&event),
            "{} game event round trip",
            G::NAME
        );
    }
}

// ---------------------------------------------------------------------------------------------
// snapshot_apply

/// Ticks a fixture's room runs before the client joins, so that its NPCs have spread out.
const WARM_UP_TICKS: u32 = 120;

/// Ticks recorded after the join: at two ticks a snapshot, a welcome, a full snapshot and about
/// twenty deltas, all of them kept by the client as baselines.
const RECORDED_TICKS: u32 = 40;

/// What a client saw of a real room: the server's messages to it, and where it pushed inputs.
enum Step {
    /// Bytes from the server.
    Server(Vec<u8>),
    /// The client pushed a default input (so later `last_input_seq` echoes are consistent).
    Input,
}

/// A recorded session of game `G` to replay before each fuzz input.
struct Fixture {
    steps: Vec<Step>,
    /// The ticks of the recorded snapshots, ascending: the baselines the client keeps.
    ticks: Vec<Tick>,
}

fn fixture_settings() -> RoomSettings {
    RoomSettings {
        id: "fuzz".to_owned(),
        tick_rate: 60,
        ticks_per_snapshot: 2,
        capacity: 8,
        interest_radius: 2_000.0,
        resume_grace_ticks: 60,
        idle_close_ticks: u64::MAX,
        npcs: 6,
        seed: 13,
        max_rewind_ms: tickwire_shared::rewind::DEFAULT_MAX_REWIND_MS,
        client_kbps: 0,
    }
}

/// Runs a room of `G` with NPCs, joins one client that acknowledges every snapshot, and records
/// what it receives.
fn record<G: Game>() -> Fixture {
    let mut core = RoomCore::<G>::new(fixture_settings());
    for _ in 0..WARM_UP_TICKS {
        core.step();
        while core.poll_output().is_some() {}
    }
    core.join(ClientId(1), "fuzz", "fuzz", None, || "resume".to_owned())
        .expect("an empty room takes a player");
    let mut session = Session::<G>::new(ClientConfig::default());
    let (mut steps, mut ticks, mut now_us) = (Vec::new(), Vec::new(), 0u64);
    for _ in 0..RECORDED_TICKS {
        core.step();
        now_us += 16_667;
        while let Some(out) = core.poll_output() {
            let bytes = match out {
                Output::Send { bytes, .. } => bytes.to_vec(),
                Output::Snapshot { bytes, .. } => bytes,
                Output::Close { .. } | Output::Forget { .. } => continue,
            };
            session.handle_bytes(now_us, &bytes).expect("the room's own messages apply");
            if let Ok(ServerMessage::Snapshot(s)) = codec::decode_server(&bytes) {
                ticks.push(s.tick);
            }
            steps.push(Step::Server(bytes));
        }
        while session.poll_event().is_some() {}
        session.push_input(G::Input::default());
        steps.push(Step::Input);
        while let Some(bytes) = session.client_mut().poll_transmit() {
            if let Ok(ClientMessage::Input(batch)) = codec::decode_client(&bytes) {
                core.input(ClientId(1), &batch, now_us);
            }
        }
    }
    assert!(ticks.len() >= 2, "the fixture has a baseline and a delta");
    Fixture { steps, ticks }
}

fn fixture<G: Game>() -> &'static Fixture {
    static ARENA: OnceLock<Fixture> = OnceLock::new();
    static SOCCER: OnceLock<Fixture> = OnceLock::new();
    match G::NAME {
        ArenaGame::NAME => ARENA.get_or_init(record::<ArenaGame>),
        SoccerGame::NAME => SOCCER.get_or_init(record::<SoccerGame>),
        other => unreachable!("no fixture for game {other}"),
    }
}

/// A fresh session that has replayed the fixture: welcomed, with every recorded snapshot kept.
fn replayed<G: Game>(f: &Fixture) -> (Session<G>, u64) {
    let mut session = Session::<G>::new(ClientConfig::default());
    let mut now_us = 0;
    for step in &f.steps {
        match step {
            Step::Server(bytes) => {
                now_us += 16_667;
                session.handle_bytes(now_us, bytes).expect("the recorded messages replay");
            }
            Step::Input => {
                session.push_input(G::Input::default());
            }
        }
    }
    while session.poll_event().is_some() {}
    while session.client_mut().poll_transmit().is_some() {}
    (session, now_us)
}

/// How [`snapshot_apply`] reads its input's first byte: bit 0 is the game (arena, soccer), bits
/// 1–2 the mode.
pub mod apply_mode {
    /// Byte 1 picks a kept baseline; the rest is a delta body against it.
    pub const DELTA: u8 = 0;
    /// The rest is a full snapshot body.
    pub const FULL: u8 = 1;
    /// The rest is a whole server message.
    pub const MESSAGE: u8 = 2;
    /// The rest is a chain of deltas, each `[baseline pick, length, body…]`, each applied
    /// against a kept state (a delta that applied is kept and can be picked).
    pub const CHAIN: u8 = 3;
}

/// Snapshots applied by the client against a kept baseline, the way the browser and the bots
/// apply them ([`Session::handle_bytes`]): a session replays a real room's messages (a welcome,
/// a full snapshot and deltas, all kept), then gets fuzzed snapshot bodies (see [`apply_mode`]).
/// A snapshot that applies must re-encode (delta against its baseline, and full) to the very
/// state the client kept; the session's prediction and interpolation must keep working on it.
pub fn snapshot_apply(data: &[u8]) {
    let Some((&head, rest)) = data.split_first() else { return };
    if head & 1 == 0 {
        apply_to::<ArenaGame>((head >> 1) & 3, rest);
    } else {
        apply_to::<SoccerGame>((head >> 1) & 3, rest);
    }
}

fn apply_to<G: Game>(mode: u8, data: &[u8]) {
    let f = fixture::<G>();
    let (mut session, mut now_us) = replayed::<G>(f);
    let registry = registry::<G>();
    let mut kept = f.ticks.clone();
    let mut send = |session: &mut Session<G>, baseline: Option<Tick>, body: &[u8]| {
        let newest = session.client().latest().map_or(Tick(0), |(t, _)| t);
        let msg = ServerMessage::Snapshot(SnapshotMessage {
            tick: newest.next(),
            baseline,
            last_input_seq: None,
            inputs_late: 0,
            input_margin: None,
            body: body.to_vec(),
        });
        let bytes = codec::encode_server(&msg).expect("a fuzzed snapshot fits a message");
        now_us += 33_333;
        let applied = session.handle_bytes(now_us, &bytes).is_ok();
        if applied {
            let base = baseline.and_then(|t| session.client().state_at(t));
            let (_, got) = session.client().latest().expect("a snapshot applied");
            check_reencodes(&registry, base, got);
        }
        exercise(session, now_us);
        applied.then_some(newest.next())
    };
    match mode {
        apply_mode::DELTA => {
            let Some((&pick, body)) = data.split_first() else { return };
            let baseline = kept[usize::from(pick) % kept.len()];
            send(&mut session, Some(baseline), body);
        }
        apply_mode::FULL => {
            send(&mut session, None, data);
        }
        apply_mode::MESSAGE => {
            now_us += 33_333;
            if session.handle_bytes(now_us, data).is_ok()
                && let Some((_, got)) = session.client().latest()
            {
                check_reencodes(&registry, None, got);
            }
            exercise(&mut session, now_us);
        }
        _ => {
            let mut rest = data;
            while let [pick, len, tail @ ..] = rest {
                let (body, next) = tail.split_at(usize::from(*len).min(tail.len()));
                rest = next;
                let baseline = kept[usize::from(*pick) % kept.len()];
                if let Some(tick) = send(&mut session, Some(baseline), body) {
                    kept.push(tick);
                }
            }
        }
    }
}

/// A state the client decoded must be what the server's encoders would send for it: the delta
/// from its baseline (when it had one) and the full body decode back to it.
fn check_reencodes(
    registry: &ReplicationRegistry,
    baseline: Option<&ReplicatedState>,
    got: &ReplicatedState,
) {
    // The one state the encoder cannot write: a first entry with id u32::MAX (its gap would be
    // 2^32). The server allocates ids upward from 1 and never gets there.
    if got.ids().last().is_some_and(|id| id.0 == u32::MAX) {
        return;
    }
    if let Some(base) = baseline {
        let mut w = BitWriter::default();
        snapshot::encode_delta(registry, base.iter(), got.iter(), &mut w);
        assert_eq!(
            snapshot::decode_delta(registry, base, &w.finish()).as_ref(),
            Ok(got),
            "an applied delta re-encodes to the same state"
        );
    }
    let mut w = BitWriter::default();
    snapshot::encode_full(registry, got.iter(), &mut w);
    assert_eq!(
        snapshot::decode_full(registry, &w.finish()).as_ref(),
        Ok(got),
        "an applied snapshot re-encodes in full to the same state"
    );
}

/// What a driver does after a snapshot: drain events, sample the interpolation, predict an input.
fn exercise<G: Game>(session: &mut Session<G>, now_us: u64) {
    while session.poll_event().is_some() {}
    let _ = session.sample(now_us);
    let _ = session.inputs_due(now_us);
    session.push_input(G::Input::default());
    while session.client_mut().poll_transmit().is_some() {}
}

// ---------------------------------------------------------------------------------------------
// join_query

/// A join query as the server parses it at the handshake ([`JoinRequest::from_query`]), with
/// [`join::percent_decode`] and [`join::clean_text`]. A request that parses must survive
/// `to_query` and parse to the same request; percent-encoding must round trip; cleaning must be
/// idempotent (cleaned text is what rooms compare names by).
pub fn join_query(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    assert_eq!(
        join::percent_decode(&join::percent_encode(&text)).as_deref(),
        Some(&*text),
        "percent-encoding round trips"
    );
    let _ = join::percent_decode(&text);
    let cleaned = join::clean_text(&text);
    assert_eq!(join::clean_text(&cleaned), cleaned, "clean_text is idempotent");
    for max in [0, 1, text.len() / 2, text.len()] {
        let cut = join::truncate_utf8(&text, max);
        assert!(cut.len() <= max && text.starts_with(cut), "truncate_utf8 cuts a prefix");
    }
    if let Ok(req) = JoinRequest::from_query(&text) {
        assert_eq!(
            JoinRequest::from_query(&req.to_query()).as_ref(),
            Ok(&req),
            "a parsed join query round trips"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// handshake_headers

/// The HS256 secret of the fuzzed servers (32 bytes, as the server requires).
pub const FUZZ_JWT_SECRET: &str = "tickwire-fuzz-secret-0123456789a";

/// An origin the fuzzed production server allows (`--allow-origin`).
pub const FUZZ_ALLOWED_ORIGIN: &str = "https://game.example";

/// Two servers: a dev one (no configured secret: localhost pages allowed) and a production one
/// (a secret and an allowed origin). Both verify tokens with [`FUZZ_JWT_SECRET`].
#[must_use]
pub fn handshake_states() -> &'static [AppState; 2] {
    static STATES: OnceLock<[AppState; 2]> = OnceLock::new();
    STATES.get_or_init(|| {
        let state = |config: ServerConfig| {
            let metrics = Arc::new(Metrics::default());
            // No room is ever opened: one simulation thread is plenty.
            let config = ServerConfig { sim_threads: 1, ..config };
            let rooms = Rooms::new(config.clone(), metrics.clone()).expect("a simulation thread");
            AppState::new(config, rooms, metrics, JwtKeys::new(FUZZ_JWT_SECRET.as_bytes()))
        };
        [
            state(ServerConfig::default()),
            state(ServerConfig {
                jwt_secret: Some(FUZZ_JWT_SECRET.to_owned()),
                allowed_origins: vec![FUZZ_ALLOWED_ORIGIN.to_owned()],
                ..ServerConfig::default()
            }),
        ]
    })
}

/// A token the fuzzed servers accept until 2100, for seeds.
#[must_use]
pub fn fuzz_token(subject: &str) -> String {
    let claims = Claims { sub: subject.to_owned(), exp: 4_102_444_800 };
    JwtKeys::new(FUZZ_JWT_SECRET.as_bytes()).sign(&claims)
}

/// Builds an upgrade request from text: the first line is the request target (`/ws?…`; one that
/// does not parse becomes `/ws`), each further line a `Name: value` header (lines that are not
/// a valid header are skipped; `\r` before `\n` is dropped).
#[must_use]
pub fn request_from_bytes(data: &[u8]) -> Request<()> {
    let mut lines = data.split(|&b| b == b'\n').map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let mut req = Request::new(());
    *req.uri_mut() = lines
        .next()
        .and_then(|target| Uri::try_from(target).ok())
        .unwrap_or_else(|| Uri::from_static("/ws"));
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else { continue };
        let value = line[colon + 1..].trim_ascii_start();
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(&line[..colon]), HeaderValue::from_bytes(value))
        {
            req.headers_mut().append(name, value);
        }
    }
    req
}

/// The server's WebSocket handshake checks ([`check_handshake`]) on a request built from the
/// input ([`request_from_bytes`]), on a dev and a production server. They must never panic,
/// must refuse only with a client error (4xx), and an accepted request carries the join that
/// its query parses to.
pub fn handshake_headers(data: &[u8]) {
    let req = request_from_bytes(data);
    for state in handshake_states() {
        match check_handshake(&req, state) {
            Ok(accepted) => {
                let query = req.uri().query().unwrap_or("");
                assert_eq!(
                    JoinRequest::from_query(query).as_ref(),
                    Ok(&accepted.join),
                    "an accepted handshake carries its query's join"
                );
            }
            Err((status, _)) => {
                assert!(status.is_client_error(), "a refusal is a client error, got {status}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// webtransport_request

/// What a WebTransport client sends first on its CONNECT stream, as the server reads it
/// ([`h3::parse_request`]: HTTP/3 frames, static QPACK, Huffman strings), and QUIC's
/// variable-length integers. Never a panic; a request that parses re-encodes
/// ([`h3::request_frame`]) and parses to itself; an integer re-encodes no longer than it came.
pub fn webtransport_request(data: &[u8]) {
    if let Some((value, len)) = h3::read_varint(data) {
        let mut out = Vec::new();
        h3::write_varint(value, &mut out);
        assert!(out.len() <= len, "the shortest form is no longer");
        assert_eq!(h3::read_varint(&out), Some((value, out.len())), "a varint round trips");
    }
    let _ = h3::decode_request(data);
    if let Ok(Some((request, used))) = h3::parse_request(data) {
        assert!(used <= data.len(), "the request is within the input");
        let again = h3::request_frame(&request);
        assert_eq!(
            h3::parse_request(&again),
            Ok(Some((request, again.len()))),
            "a parsed request round trips"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Seeds

/// The seed inputs of every target, `(target, file name, bytes)`: small valid inputs of each
/// kind, built with the real encoders so that they follow the protocol. The corpus replay test
/// checks that `fuzz/corpus/<target>/<file name>` holds them (and writes them when asked).
#[must_use]
pub fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut add = |target: &'static str, name: &str, bytes: Vec<u8>| {
        out.push((target, format!("seed-{name}"), bytes));
    };
    let client = |m: &ClientMessage| codec::encode_client(m).expect("a seed encodes");
    let server = |m: &ServerMessage| codec::encode_server(m).expect("a seed encodes");

    // client_message
    let arena_frames = codec::encode_inputs(&[
        ArenaInput { movement: [127, -128], aim: 40_000, buttons: Buttons::FIRE },
        ArenaInput { movement: [0, 64], aim: 7, buttons: Buttons::ALL },
        ArenaInput::default(),
    ])
    .expect("arena frames encode");
    let soccer_frames = codec::encode_inputs(&[
        SoccerInput { run: [-128, 127], kick: 255, sprint: true },
        SoccerInput::default(),
    ])
    .expect("soccer frames encode");
    for (name, frames) in [("arena", &arena_frames), ("soccer", &soccer_frames)] {
        let batch = InputBatch {
            ack: Some(Tick(300)),
            first_seq: 70_000,
            frames: frames.clone(),
            view: None,
        };
        add("client_message", &format!("input-{name}"), client(&ClientMessage::Input(batch)));
        add("client_message", &format!("frames-{name}"), frames.clone());
    }
    add(
        "client_message",
        "ping",
        client(&ClientMessage::Ping { id: 9, client_time_us: 1_234_567_890 }),
    );
    add("client_message", "chat", client(&ClientMessage::Chat { text: "gg, Zoë 🎮".into() }));
    add("client_message", "leave", client(&ClientMessage::Leave));

    // server_message
    let welcome = codec::decode_server(&first_message(&fixture::<ArenaGame>().steps))
        .expect("the recorded welcome decodes");
    add("server_message", "welcome", server(&welcome));
    add(
        "server_message",
        "snapshot",
        server(&ServerMessage::Snapshot(SnapshotMessage {
            tick: Tick(500),
            baseline: Some(Tick(498)),
            last_input_seq: Some(41),
            inputs_late: 0,
            input_margin: None,
            body: vec![0b1010_0101, 3, 0],
        })),
    );
    add(
        "server_message",
        "pong",
        server(&ServerMessage::Pong { id: 9, client_time_us: 77, tick: Tick(12) }),
    );
    add(
        "server_message",
        "chat",
        server(&ServerMessage::Chat { from: NetId(3), name: "Zoë".into(), text: "hi".into() }),
    );
    let joined = RoomEvent::Joined { client: ClientId(4), entity: NetId(5), name: "p".into() };
    add("server_message", "joined", server(&ServerMessage::Event(joined)));
    let left = RoomEvent::Left { entity: NetId(5), name: "p".into() };
    add("server_message", "left", server(&ServerMessage::Event(left)));
    let killed =
        codec::encode_game_event(&ArenaEvent::Killed { killer: Some(NetId(2)), victim: NetId(7) })
            .expect("an event encodes");
    let goal = codec::encode_game_event(&SoccerEvent::Goal { team: Team::Blue, scorer: None })
        .expect("an event encodes");
    for (name, body) in [("arena-killed", killed), ("soccer-goal", goal)] {
        add(
            "server_message",
            &format!("event-{name}"),
            server(&ServerMessage::GameEvent { body: body.clone() }),
        );
        add("server_message", &format!("event-body-{name}"), body);
    }
    add(
        "server_message",
        "disconnect",
        server(&ServerMessage::Disconnect {
            reason: DisconnectReason::RateLimited,
            message: "too many messages".into(),
        }),
    );

    // snapshot_apply: real bodies from the fixtures.
    snapshot_seeds::<ArenaGame>(0, &mut add);
    snapshot_seeds::<SoccerGame>(1, &mut add);

    // join_query
    let full = JoinRequest {
        version: Some(2),
        token: Some("a.b.c".into()),
        room: Some("arena-1".into()),
        name: "Zoë & co".into(),
        resume: Some("r/+=".into()),
        game: Some("soccer".into()),
        seat: None,
    };
    add("join_query", "full", full.to_query().into_bytes());
    add("join_query", "name-only", b"name=Ze%CC%81ro%E2%80%AE%E2%80%8B+".to_vec());
    add("join_query", "bad-escape", b"v=7&name=%ZZ&room=a%20b".to_vec());
    add("join_query", "duplicate", b"v=7&v=7&game=chess".to_vec());

    // handshake_headers
    let token = fuzz_token("fuzzer");
    let request = |query: &str, extra: &str| {
        format!(
            "/ws?{query}\r\nHost: 127.0.0.1:8080\r\nConnection: keep-alive, Upgrade\r\n\
             Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n{extra}"
        )
        .into_bytes()
    };
    add(
        "handshake_headers",
        "query-token",
        request(&format!("v={PROTOCOL_VERSION}&token={token}&name=a"), ""),
    );
    add(
        "handshake_headers",
        "bearer-subprotocol",
        request(
            "room=r1",
            &format!(
                "Sec-WebSocket-Protocol: chat, {SUBPROTOCOL}\r\nAuthorization: bearer {token}\r\n\
                 Origin: {FUZZ_ALLOWED_ORIGIN}\r\n"
            ),
        ),
    );
    add(
        "handshake_headers",
        "localhost-origin",
        request(
            &format!("v={PROTOCOL_VERSION}&token={token}"),
            "Origin: http://localhost:5173\r\n",
        ),
    );
    add("handshake_headers", "no-upgrade", b"/ws?v=1\r\nHost: x\r\n".to_vec());

    // webtransport_request
    let session = h3::Request {
        method: "CONNECT".into(),
        protocol: "webtransport".into(),
        scheme: "https".into(),
        authority: "127.0.0.1:4433".into(),
        path: format!("/wt?v={PROTOCOL_VERSION}&token={token}&name=Zo%C3%AB"),
        origin: Some("http://localhost:8080".into()),
        authorization: None,
    };
    add("webtransport_request", "connect", h3::request_frame(&session));
    let mut greased = Vec::new();
    h3::write_frame(0x21, b"grease", &mut greased);
    greased.extend(h3::request_frame(&h3::Request {
        authorization: Some(format!("Bearer {token}")),
        ..session.clone()
    }));
    add("webtransport_request", "grease-bearer", greased);
    add("webtransport_request", "response-403", h3::response_frame(403));
    let mut dynamic = Vec::new();
    h3::write_frame(1, &[0x01, 0x00, 0x80], &mut dynamic); // refers to a dynamic table
    add("webtransport_request", "dynamic-table", dynamic);
    let whole = h3::request_frame(&session);
    add("webtransport_request", "truncated", whole[..whole.len() / 2].to_vec());
    out
}

fn first_message(steps: &[Step]) -> Vec<u8> {
    steps
        .iter()
        .find_map(|s| match s {
            Step::Server(bytes) => Some(bytes.clone()),
            Step::Input => None,
        })
        .expect("the fixture has messages")
}

/// Seeds of [`snapshot_apply`] for game `G` (`game` is bit 0 of the first byte): a real delta
/// against the oldest kept state, a real full body, a recorded message and a chain of two deltas.
fn snapshot_seeds<G: Game>(game: u8, add: &mut impl FnMut(&'static str, &str, Vec<u8>)) {
    let f = fixture::<G>();
    let (session, _) = replayed::<G>(f);
    let registry = registry::<G>();
    let client = session.client();
    let (_, latest) = client.latest().expect("the fixture has snapshots");
    let oldest = client.state_at(f.ticks[0]).expect("the oldest snapshot is kept");
    let middle_idx = f.ticks.len() / 2;
    let middle = client.state_at(f.ticks[middle_idx]).expect("a middle snapshot is kept");
    let delta = |base: &ReplicatedState, cur: &ReplicatedState| {
        let mut w = BitWriter::default();
        snapshot::encode_delta(&registry, base.iter(), cur.iter(), &mut w);
        w.finish()
    };
    let head = |mode: u8| game | (mode << 1);
    let name = G::NAME;

    let mut seed = vec![head(apply_mode::DELTA), 0];
    seed.extend(delta(oldest, latest));
    add("snapshot_apply", &format!("{name}-delta"), seed);

    let mut w = BitWriter::default();
    snapshot::encode_full(&registry, latest.iter(), &mut w);
    let mut seed = vec![head(apply_mode::FULL)];
    seed.extend(w.finish());
    add("snapshot_apply", &format!("{name}-full"), seed);

    let last_snapshot = f
        .steps
        .iter()
        .rev()
        .find_map(|s| match s {
            Step::Server(b)
                if matches!(codec::decode_server(b), Ok(ServerMessage::Snapshot(_))) =>
            {
                Some(b.clone())
            }
            _ => None,
        })
        .expect("the fixture has a snapshot");
    let mut seed = vec![head(apply_mode::MESSAGE)];
    seed.extend(last_snapshot);
    add("snapshot_apply", &format!("{name}-message"), seed);

    // Two deltas: oldest → middle, then (picking the state just applied, the last kept) middle
    // → latest.
    let mut seed = vec![head(apply_mode::CHAIN)];
    for (pick, body) in [(0, delta(oldest, middle)), (f.ticks.len(), delta(middle, latest))] {
        seed.push(u8::try_from(pick).expect("a small pick"));
        seed.push(u8::try_from(body.len()).unwrap_or(u8::MAX));
        seed.extend(body);
    }
    add("snapshot_apply", &format!("{name}-chain"), seed);
}
