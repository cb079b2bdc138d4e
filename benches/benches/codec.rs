//! The message codec on a typical input message: `ClientMessage::Input` with four frames
//! (the client's redundant copies) and an ack.
//!
//! - `codec/encode_client_input`: one iteration = the arena frames through
//!   `codec::encode_inputs`, then the envelope through `codec::encode_client`, into new `Vec`s
//!   (what a client does per input message).
//! - `codec/decode_client_input`: one iteration = `codec::decode_client` of those bytes (size
//!   check, bincode decode with its allocation limit; the session's part) and
//!   `codec::decode_inputs` of the frames (the room's part).
//!
//! Run: `cargo bench -p tickwire-benches --bench codec`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tickwire_shared::games::arena::{ArenaInput, Buttons};
use tickwire_shared::protocol::{ClientMessage, InputBatch};
use tickwire_shared::{Tick, codec};

fn bench_input(c: &mut Criterion) {
    let frames: Vec<ArenaInput> = (0..4u16)
        .map(|i| ArenaInput {
            movement: [127, -64 + i as i8],
            aim: 12_000 + i * 37,
            buttons: if i == 3 { Buttons::FIRE } else { Buttons::default() },
        })
        .collect();
    let encode = |frames: &[ArenaInput]| {
        let frames = codec::encode_inputs(frames).expect("4 frames");
        let msg = ClientMessage::Input(InputBatch {
            ack: Some(Tick(123_456)),
            first_seq: 7_890,
            frames,
            view: None,
        });
        codec::encode_client(&msg).expect("encodes")
    };
    let bytes = encode(&frames);
    eprintln!("input message: {} bytes", bytes.len());
    let mut g = c.benchmark_group("codec");
    g.bench_function("encode_client_input", |b| {
        b.iter(|| encode(black_box(&frames)));
    });
    let mut decoded: Vec<ArenaInput> = Vec::with_capacity(8);
    g.bench_function("decode_client_input", |b| {
        b.iter(|| {
            let Ok(ClientMessage::Input(batch)) = codec::decode_client(black_box(&bytes)) else {
                unreachable!("an input message");
            };
            codec::decode_inputs(&batch.frames, &mut decoded).expect("decodes");
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = bench_input
}
criterion_main!(benches);
