//! Token counting throughput on 1 MB of English prose (the fixture texts, repeated), in both
//! encodings, and pruning a 1 KB text. Compare with Python tiktoken on the same bytes:
//! `scripts/bench-tokenguard` runs both and prints MB/s side by side.

#![expect(clippy::expect_used, reason = "a benchmark fails loudly")]

use std::hint::black_box;

use cg_tokenguard::analysis::Encoding;
use cg_tokenguard::analysis::prune::prune;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// 1 MiB (at a character boundary) of the fixture's texts, joined by blank lines.
pub fn one_megabyte() -> String {
    let fixture = include_str!("../tests/fixtures/token_counts.jsonl");
    let mut text = String::with_capacity(1 << 20);
    'fill: loop {
        for line in fixture.lines() {
            let row: serde_json::Value = serde_json::from_str(line).expect("fixture line");
            text.push_str(row["text"].as_str().expect("text"));
            text.push_str("\n\n");
            if text.len() >= 1 << 20 {
                break 'fill;
            }
        }
    }
    let mut end = 1 << 20;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.truncate(end);
    text
}

fn counting(c: &mut Criterion) {
    let text = one_megabyte();
    if let Ok(path) = std::env::var("CG_BENCH_TEXT_OUT") {
        std::fs::write(path, &text).expect("write the benchmark text");
    }
    let mut group = c.benchmark_group("count_1MiB");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(20);
    for encoding in Encoding::ALL {
        let tokens = encoding.count(&text);
        eprintln!("{encoding}: {tokens} tokens in {} bytes", text.len());
        group.bench_function(encoding.name(), |b| {
            b.iter(|| encoding.count(black_box(&text)))
        });
    }
    group.finish();

    let kb: String = text.chars().take(1024).collect();
    c.bench_function("prune_1KiB_to_100_tokens", |b| {
        b.iter(|| prune(black_box(&kb), Encoding::O200kBase, Some(100)))
    });
}

criterion_group!(benches, counting);
criterion_main!(benches);
