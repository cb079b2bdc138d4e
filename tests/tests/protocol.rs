//! The protocol and its codec: every message round-trips, arbitrary bytes never panic the
//! decoders (the envelope's and the game inputs' and events'), and a hostile length prefix is
//! refused without allocating what it claims.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use proptest::prelude::*;
use tickwire_shared::codec::{self, CodecError, MAX_CLIENT_MESSAGE_BYTES};
use tickwire_shared::game::{Game, InvalidInput};
use tickwire_shared::games::arena::{ArenaEvent, ArenaGame, ArenaInput, Buttons};
use tickwire_shared::protocol::*;
use tickwire_shared::{ClientId, NetId, Tick};

/// Records the largest single allocation made by each thread, so a test can prove a decode did
/// not allocate what a length prefix claimed. Per thread: the other tests run in parallel and
/// allocate what they like (one encodes a 300 KiB snapshot).
struct TrackingAlloc;

thread_local! {
    // A const-initialised `Cell<usize>` has no destructor and never allocates: safe to touch
    // from inside the allocator.
    static LARGEST_ALLOC: Cell<usize> = const { Cell::new(0) };
}

fn record(size: usize) {
    let _ = LARGEST_ALLOC.try_with(|largest| largest.set(largest.get().max(size)));
}

#[expect(unsafe_code, reason = "a global allocator is unsafe by definition; it only forwards")]
// SAFETY: every call forwards to the system allocator with the caller's own arguments.
unsafe impl GlobalAlloc for TrackingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        record(layout.size());
        // SAFETY: forwarded unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded unchanged.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        record(new_size);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: TrackingAlloc = TrackingAlloc;

fn arena_frames(n: usize) -> Vec<ArenaInput> {
    (0..n)
        .map(|i| ArenaInput {
            movement: [127, -64],
            aim: 40_000 + i as u16,
            buttons: Buttons::FIRE,
        })
        .collect()
}

/// `n` arena frames, encoded as an input batch carries them.
fn frames(n: usize) -> Vec<u8> {
    codec::encode_inputs(&arena_frames(n)).unwrap()
}

/// Decodes a batch's frames as the room does: the codec, then the game's own checks.
fn room_decode(batch: &InputBatch) -> Result<Vec<ArenaInput>, String> {
    let mut out = Vec::new();
    codec::decode_inputs::<ArenaInput>(&batch.frames, &mut out).map_err(|e| e.to_string())?;
    out.iter().try_for_each(ArenaGame::validate_input).map_err(|e| e.to_string())?;
    Ok(out)
}

fn all_client_messages() -> Vec<ClientMessage> {
    vec![
        ClientMessage::Input(InputBatch { ack: None, first_seq: 0, frames: frames(1), view: None }),
        ClientMessage::Input(InputBatch {
            ack: Some(Tick(u32::MAX)),
            first_seq: u32::MAX - 3,
            frames: frames(8),
            view: None,
        }),
        ClientMessage::Ping { id: 7, client_time_us: u64::MAX },
        ClientMessage::Chat { text: "hello, arena — ünïcode".into() },
        ClientMessage::Chat { text: String::new() },
        ClientMessage::Leave,
    ]
}

fn all_server_messages() -> Vec<ServerMessage> {
    let mut msgs = vec![
        ServerMessage::Welcome(Welcome {
            protocol: PROTOCOL_VERSION,
            client_id: ClientId(3),
            room: "arena-1".into(),
            game: "arena".into(),
            entity: NetId(42),
            tick_rate: 60,
            snapshot_rate: 30,
            tick: Tick(1234),
            resume_token: "secret".into(),
            registry_fingerprint: 0xdead_beef_cafe_f00d,
            schema: Box::new(tickwire_shared::schema::GameSchema::of::<
                tickwire_shared::games::arena::ArenaGame,
            >()),
        }),
        ServerMessage::Snapshot(SnapshotMessage {
            tick: Tick(100),
            baseline: Some(Tick(96)),
            last_input_seq: Some(17),
            inputs_late: 3,
            input_margin: Some(-2),
            body: vec![1, 2, 3, 255],
        }),
        ServerMessage::Snapshot(SnapshotMessage {
            tick: Tick(0),
            baseline: None,
            last_input_seq: None,
            inputs_late: 0,
            input_margin: None,
            body: vec![],
        }),
        ServerMessage::Pong { id: 1, client_time_us: 99, tick: Tick(5) },
        ServerMessage::Chat { from: NetId(1), name: "ann".into(), text: "gg".into() },
        ServerMessage::Event(RoomEvent::Joined {
            client: ClientId(1),
            entity: NetId(2),
            name: "bo".into(),
        }),
        ServerMessage::Event(RoomEvent::Left { entity: NetId(2), name: "bo".into() }),
        ServerMessage::GameEvent {
            body: codec::encode_game_event(&ArenaEvent::Killed {
                killer: Some(NetId(2)),
                victim: NetId(3),
            })
            .unwrap(),
        },
        ServerMessage::GameEvent { body: vec![] },
    ];
    for reason in DisconnectReason::ALL {
        msgs.push(ServerMessage::Disconnect { reason, message: reason.label().into() });
    }
    msgs
}

#[test]
fn game_inputs_and_events_round_trip() {
    for n in 1..=MAX_INPUT_FRAMES {
        let batch = InputBatch { ack: None, first_seq: 0, frames: frames(n), view: None };
        assert_eq!(room_decode(&batch), Ok(arena_frames(n)));
    }
    for event in [
        ArenaEvent::Killed { killer: Some(NetId(2)), victim: NetId(3) },
        ArenaEvent::Killed { killer: None, victim: NetId(3) },
        ArenaEvent::Respawned { entity: NetId(3) },
    ] {
        let body = codec::encode_game_event(&event).unwrap();
        assert_eq!(codec::decode_game_event::<ArenaEvent>(&body), Ok(event));
    }
}

#[test]
fn every_client_message_round_trips() {
    for msg in all_client_messages() {
        let bytes = codec::encode_client(&msg).unwrap();
        assert_eq!(codec::decode_client(&bytes), Ok(msg.clone()), "{msg:?}");
    }
}

#[test]
fn every_server_message_round_trips() {
    for msg in all_server_messages() {
        let bytes = codec::encode_server(&msg).unwrap();
        assert_eq!(codec::decode_server(&bytes), Ok(msg.clone()), "{msg:?}");
    }
}

#[test]
fn a_snapshot_encoded_around_a_borrowed_body_is_the_same_bytes() {
    for (tick, baseline, seq, len) in [
        (0, None, None, 0),
        (7, Some(5), Some(3), 10),
        (u32::MAX, Some(u32::MAX - 1), Some(u32::MAX), 9_000),
    ] {
        let body: Vec<u8> = (0..len).map(|i| (i * 31 % 251) as u8).collect();
        let snapshot = SnapshotMessage {
            tick: Tick(tick),
            baseline: baseline.map(Tick),
            last_input_seq: seq,
            inputs_late: 7,
            input_margin: None,
            body: body.clone(),
        };
        let mut out = vec![0xAA];
        codec::encode_snapshot_into(snapshot.header(), &body, &mut out).unwrap();
        let msg = ServerMessage::Snapshot(snapshot);
        assert_eq!(out[0], 0xAA, "appends");
        assert_eq!(out[1..], codec::encode_server(&msg).unwrap()[..], "{msg:?}");
    }
    let huge = vec![0; 300 * 1024];
    let header = SnapshotHeader {
        tick: Tick(0),
        baseline: None,
        last_input_seq: None,
        inputs_late: 0,
        input_margin: None,
    };
    assert!(codec::encode_snapshot_into(header, &huge, &mut Vec::new()).is_err());
}

#[test]
fn typical_input_message_is_small() {
    // Four redundant frames, an ack and the view: the message a client sends every tick.
    let msg = ClientMessage::Input(InputBatch {
        ack: Some(Tick(5_000)),
        first_seq: 1000,
        frames: frames(4),
        view: Some(ViewTime { tick: Tick(4_997), frac: 128 }),
    });
    let bytes = codec::encode_client(&msg).unwrap();
    // 33 bytes before the frames became the game's own type: their blob's length prefix is the
    // one byte a game-agnostic envelope costs; the view (lag compensation) five more: its
    // option tag, the tick as a varint and the fraction.
    assert_eq!(bytes.len(), 39, "input message size changed");
}

#[test]
fn invalid_messages_are_refused_with_a_reason() {
    let check = |msg: ClientMessage, want: ProtocolError| {
        let bytes = codec::encode_client(&msg).unwrap();
        assert_eq!(codec::decode_client(&bytes), Err(CodecError::Invalid(want)));
    };
    check(ClientMessage::Input(InputBatch::default()), ProtocolError::FrameCount(0));
    check(ClientMessage::Chat { text: "x".repeat(201) }, ProtocolError::ChatTooLong(201));
    // The frames are the room's to check: their count, their encoding, the game's rules.
    assert_eq!(codec::encode_inputs(&arena_frames(9)), Err(ProtocolError::FrameCount(9).into()));
    assert!(codec::encode_inputs::<ArenaInput>(&[]).is_err());
    let room =
        |frames: Vec<u8>| room_decode(&InputBatch { ack: None, first_seq: 0, frames, view: None });
    let mut nine = frames(8);
    nine[0] = 9;
    nine.extend_from_slice(&frames(1)[1..]);
    assert_eq!(room(nine), Err(CodecError::from(ProtocolError::FrameCount(9)).to_string()));
    let mut bad = arena_frames(2);
    bad[1].buttons = Buttons(0x80);
    let want = InvalidInput("unknown button bits 0x80".into()).to_string();
    assert_eq!(room(codec::encode_inputs(&bad).unwrap()), Err(want));
    let mut trailing = frames(2);
    trailing.push(0);
    assert_eq!(room(trailing), Err(CodecError::TrailingBytes(1).to_string()));
    assert!(room(vec![2, 1]).is_err(), "two frames promised, part of one given");
}

#[test]
fn oversize_and_trailing_bytes_are_refused() {
    let big = vec![0u8; MAX_CLIENT_MESSAGE_BYTES + 1];
    assert!(matches!(codec::decode_client(&big), Err(CodecError::TooLarge { .. })));
    let mut bytes = codec::encode_client(&ClientMessage::Leave).unwrap();
    bytes.push(0);
    assert_eq!(codec::decode_client(&bytes), Err(CodecError::TrailingBytes(1)));
    // Encoding refuses a message over the limit too.
    let huge = ServerMessage::Snapshot(SnapshotMessage {
        tick: Tick(0),
        baseline: None,
        last_input_seq: None,
        inputs_late: 0,
        input_margin: None,
        body: vec![0; 300 * 1024],
    });
    assert!(codec::encode_server(&huge).is_err());
}

#[test]
fn a_length_prefix_claiming_gigabytes_is_refused_without_allocating() {
    // Chat (variant 2) whose string claims 2^62 bytes: varint marker 253 then a u64.
    let mut hostile = vec![2u8, 253];
    hostile.extend_from_slice(&(1u64 << 62).to_le_bytes());
    // A snapshot whose body claims 4 GiB: variant 1, tick 0, no baseline, no seq, no late
    // inputs, length u64.
    let mut hostile_server = vec![1u8, 0, 0, 0, 0, 253];
    hostile_server.extend_from_slice(&(4u64 << 30).to_le_bytes());

    LARGEST_ALLOC.set(0);
    let client = codec::decode_client(&hostile);
    let server = codec::decode_server(&hostile_server);
    let largest = LARGEST_ALLOC.get();

    assert!(matches!(client, Err(CodecError::Malformed(_))), "{client:?}");
    assert!(matches!(server, Err(CodecError::Malformed(_))), "{server:?}");
    assert!(largest < 64 * 1024, "decode allocated {largest} bytes");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 10_000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
        // Either direction: an error or a valid message, never a panic.
        if let Ok(msg) = codec::decode_client(&bytes) {
            prop_assert!(msg.validate().is_ok());
            // What decodes re-encodes and decodes to the same message.
            let again = codec::encode_client(&msg).unwrap();
            prop_assert_eq!(codec::decode_client(&again), Ok(msg));
        }
        let _ = codec::decode_server(&bytes);
        let mut frames = Vec::new();
        let _ = codec::decode_inputs::<ArenaInput>(&bytes, &mut frames);
        prop_assert!(frames.len() <= MAX_INPUT_FRAMES);
        let _ = codec::decode_game_event::<ArenaEvent>(&bytes);
    }

    #[test]
    fn mutated_valid_messages_never_panic(
        idx in 0usize..6,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
    ) {
        let mut bytes = codec::encode_client(&all_client_messages()[idx]).unwrap();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        let _ = codec::decode_client(&bytes);
    }
}
