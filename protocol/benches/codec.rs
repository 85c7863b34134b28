//! Codec costs: decoding a client's `send_message` frame and encoding a `new_message` event, in
//! both codecs. Run with `cargo bench -p dovie-protocol`.

use criterion::{black_box, criterion_group, criterion_main, Criterion, Throughput};
use dovie_protocol::commands::Command;
use dovie_protocol::events::MessagePayload;
use dovie_protocol::{Codec, Frame};
use serde_json::json;

#[path = "support/sample.rs"]
mod sample;

fn bench(c: &mut Criterion) {
    let send = json!({"t": "send_message", "id": 42, "d": {
        "room_id": "0192f5d8-6c1e-7b3a-9f4e-2d7c1a5b0001",
        "content": "Lunch at noon? Bring the #roadmap notes and the numbers from Tuesday.",
        "nonce": "c-123456"}});
    let payload = MessagePayload {
        message: sample::message(123_456),
    };
    let mut g = c.benchmark_group("codec");
    g.throughput(Throughput::Elements(1));
    for codec in [Codec::MsgPack, Codec::Json] {
        let wire = codec.encode(&send).expect("encodes");
        g.bench_function(format!("decode_send_message/{}", codec.label()), |b| {
            b.iter(|| {
                let frame: Frame = codec.decode(black_box(&wire)).expect("decodes");
                Command::parse(frame).expect("parses")
            })
        });
        g.bench_function(format!("encode_new_message/{}", codec.label()), |b| {
            b.iter(|| {
                codec
                    .encode_frame("new_message", None, black_box(&payload))
                    .expect("encodes")
            })
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
