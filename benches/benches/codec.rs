//! The message codec on a typical input message: `ClientMessage::Input` with four frames
//! (the client's redundant copies) and an ack.
//!
//! - `codec/encode_client_input`: one iteration = `codec::encode_client` into a new `Vec`.
//! - `codec/decode_client_input`: one iteration = `codec::decode_client` of those bytes
//!   (size check, bincode decode with its allocation limit).
//!
//! Run: `cargo bench -p tickwire-benches --bench codec`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use tickwire_shared::protocol::{Buttons, ClientMessage, InputBatch, InputFrame};
use tickwire_shared::{Tick, codec};

fn bench_input(c: &mut Criterion) {
    let frames = (0..4u16)
        .map(|i| InputFrame {
            movement: [127, -64 + i as i8],
            aim: 12_000 + i * 37,
            buttons: if i == 3 { Buttons::FIRE } else { Buttons::default() },
        })
        .collect();
    let msg =
        ClientMessage::Input(InputBatch { ack: Some(Tick(123_456)), first_seq: 7_890, frames });
    let bytes = codec::encode_client(&msg).expect("encodes");
    eprintln!("input message: {} bytes", bytes.len());
    let mut g = c.benchmark_group("codec");
    g.bench_function("encode_client_input", |b| {
        b.iter(|| codec::encode_client(black_box(&msg)).expect("encodes"));
    });
    g.bench_function("decode_client_input", |b| {
        b.iter(|| codec::decode_client(black_box(&bytes)).expect("decodes"));
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
