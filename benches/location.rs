//! Location work on the send path and in searches, without the network: the suggestion matcher
//! every text message passes through (a short chat line, a question, a message at the 4,000
//! character limit), and snapping a position to its "nearby" cell. Run with
//! `cargo bench -p dovie --bench location`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dovie::geo::{cells, suggest};

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("location");
    g.bench_function("suggest/short_line", |b| {
        b.iter(|| suggest::asks_location(black_box("see you at the station at 7, ok?")))
    });
    g.bench_function("suggest/question_ko", |b| {
        b.iter(|| suggest::asks_location(black_box("지금 어디야? 다들 기다려")))
    });
    let long = "lorem ipsum dolor sit amet, consectetur adipiscing elit ".repeat(70);
    g.bench_function("suggest/4000_chars", |b| {
        b.iter(|| suggest::asks_location(black_box(&long[..4000])))
    });
    g.bench_function("cell_centre", |b| {
        b.iter(|| cells::cell_centre(black_box(37.5663), black_box(126.9779)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
