//! The room fan-out path without the network: building a `new_message` event (encoded once) and
//! queueing a store batch of events on every recipient's socket outbox, as a room does after a
//! group commit. Run with `cargo bench -p dovie --bench fanout`.

use std::sync::Arc;

use bytes::Bytes;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dovie_actors::Event;
use dovie_protocol::model::Message;
use dovie_protocol::Codec;
use dovie_transport::Outbox;

/// Events per store batch in the benchmark.
const BATCH: usize = 16;

#[path = "../protocol/benches/support/sample.rs"]
mod sample;
use sample::message;

#[derive(serde::Serialize)]
struct Payload<'a> {
    message: &'a Message,
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    let m = message(1);
    g.throughput(Throughput::Elements(1));
    g.bench_function("event_typed_msgpack", |b| {
        b.iter(|| {
            Event::typed(
                "new_message",
                &Payload {
                    message: black_box(&m),
                },
            )
            .bytes(Codec::MsgPack)
        })
    });
    let events: Vec<Arc<Event>> = (1..=BATCH as u64)
        .map(|s| {
            Arc::new(Event::typed(
                "new_message",
                &Payload {
                    message: &message(s),
                },
            ))
        })
        .collect();
    for members in [100usize, 2000] {
        // Deliveries per iteration: every event of the batch to every member.
        g.throughput(Throughput::Elements((members * BATCH) as u64));
        g.bench_function(format!("batch_to_outboxes/{members}"), |b| {
            b.iter_batched(
                || {
                    (0..members)
                        .map(|_| Outbox::new(4 * BATCH))
                        .collect::<Vec<_>>()
                },
                |outboxes| {
                    for o in &outboxes {
                        let mut frames = events.iter().map(|e| e.bytes(Codec::MsgPack));
                        o.send_batch(&mut frames).expect("room");
                    }
                    outboxes
                },
                BatchSize::SmallInput,
            )
        });
    }
    g.throughput(Throughput::Elements(1));
    g.bench_function("outbox_send_one", |b| {
        let frame = Bytes::from_static(b"0123456789abcdef0123456789abcdef");
        b.iter_batched(
            || Outbox::new(1),
            |o| {
                o.send(frame.clone()).expect("room");
                o
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
