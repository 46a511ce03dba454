//! ContextGuard's analysis: one conversation turn scored against a running topic and absorbed
//! (what `/v1/drift` computes per request, besides rebuilding the topic from the window), the
//! topic rebuilt from a 20-turn window, and the line diff of two 200-line versions. Turns come from
//! `../shared/eval/drift/conversations_dev.jsonl` (`CG_EVAL_DIR` points elsewhere).

#![expect(clippy::expect_used, reason = "a benchmark fails loudly")]

use std::hint::black_box;
use std::path::PathBuf;

use cg_contextguard::analysis::{DriftSettings, Topic, code_drift};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn turns() -> Vec<String> {
    let dir = std::env::var("CG_EVAL_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/eval"),
        PathBuf::from,
    );
    let path = dir.join("drift/conversations_dev.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set CG_EVAL_DIR)", path.display()));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .flat_map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a conversation");
            v["turns"]
                .as_array()
                .expect("turns")
                .iter()
                .filter_map(|t| t.as_str().map(str::to_owned))
                .collect::<Vec<_>>()
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let turns = turns();
    let settings = DriftSettings::default();
    let window: Vec<&String> = turns.iter().take(20).collect();
    let mut topic = Topic::default();
    for t in &window {
        topic.absorb(t, &settings);
    }
    let next = &turns[20];
    let mut group = c.benchmark_group("contextguard");
    group.throughput(Throughput::Bytes(next.len() as u64));
    group.bench_function("score_one_turn", |b| {
        b.iter(|| topic.score(black_box(next), &settings))
    });
    let window_bytes: usize = window.iter().map(|t| t.len()).sum();
    group.throughput(Throughput::Bytes(window_bytes as u64));
    group.bench_function("rebuild_topic_20_turns", |b| {
        b.iter(|| {
            let mut t = Topic::default();
            for turn in &window {
                t.absorb(black_box(turn), &settings);
            }
            t
        })
    });
    let previous: String = (0..200)
        .map(|i| format!("    let value_{i} = compute({i});\n"))
        .collect();
    let current: String = (0..200)
        .map(|i| {
            if i % 7 == 0 {
                format!("    let value_{i} = compute_faster({i}, cache);\n")
            } else {
                format!("    let value_{i} = compute({i});\n")
            }
        })
        .collect();
    group.throughput(Throughput::Bytes((previous.len() + current.len()) as u64));
    group.bench_function("code_drift_200_lines", |b| {
        b.iter(|| code_drift(black_box(&previous), black_box(&current)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
