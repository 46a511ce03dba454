//! HealthGuard's analysis on the real poison batches of `../shared/eval/poison/batches_dev.jsonl`
//! (40 samples of about 350 bytes each, some poisoned): one whole batch (every per-sample and
//! per-batch detector), and one 1 KB sample alone (per-sample detectors). `CG_EVAL_DIR` points
//! elsewhere when the eval folder is not at `../shared/eval` beside the checkout.

#![expect(clippy::expect_used, reason = "a benchmark fails loudly")]

use std::hint::black_box;
use std::path::PathBuf;

use cg_healthguard::analysis::{Sample, analyze};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

struct Row {
    id: String,
    content: String,
    label: Option<String>,
}

fn batches() -> Vec<Vec<Row>> {
    let dir = std::env::var("CG_EVAL_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/eval"),
        PathBuf::from,
    );
    let path = dir.join("poison/batches_dev.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set CG_EVAL_DIR)", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a batch");
            v["samples"]
                .as_array()
                .expect("samples")
                .iter()
                .map(|s| Row {
                    id: s["id"]
                        .as_str()
                        .map_or_else(|| s["id"].to_string(), str::to_owned),
                    content: s["content"].as_str().expect("content").to_owned(),
                    label: s["label"].as_str().map(str::to_owned),
                })
                .collect()
        })
        .collect()
}

fn samples(rows: &[Row]) -> Vec<Sample<'_>> {
    rows.iter()
        .map(|r| Sample {
            id: &r.id,
            content: &r.content,
            label: r.label.as_deref(),
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let all = batches();
    let batch = &all[1];
    let bytes: usize = batch.iter().map(|r| r.content.len()).sum();
    let mut group = c.benchmark_group("healthguard");
    group.throughput(Throughput::Bytes(bytes as u64));
    group.bench_function("batch_of_40", |b| {
        let s = samples(batch);
        b.iter(|| analyze(black_box(&s)))
    });
    // One sample of 1 KB: the longest sample's text repeated to 1,024 bytes.
    let mut kb = String::new();
    let longest = all
        .iter()
        .flatten()
        .max_by_key(|r| r.content.len())
        .expect("a sample");
    while kb.len() < 1024 {
        kb.push_str(&longest.content);
        kb.push(' ');
    }
    let mut end = 1024;
    while !kb.is_char_boundary(end) {
        end -= 1;
    }
    kb.truncate(end);
    let one = [Row {
        id: "kb".into(),
        content: kb,
        label: None,
    }];
    group.throughput(Throughput::Bytes(one[0].content.len() as u64));
    group.bench_function("one_1KB_sample", |b| {
        let s = samples(&one);
        b.iter(|| analyze(black_box(&s)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
