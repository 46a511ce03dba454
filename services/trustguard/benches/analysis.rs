//! Throughput of TrustGuard's analysis: `cargo bench -p cg-trustguard --bench analysis`.
//!
//! `validate` on the first row of each HaluEval dev file (answer checked against its context and
//! question; bytes counted are all three), and on about 1 KB of answer without context (the
//! source-free detectors only). Rows come from `../shared/eval/grounding` (`CG_EVAL_DIR` points
//! elsewhere).

#![expect(clippy::expect_used, reason = "a benchmark fails loudly")]

use std::hint::black_box;
use std::path::PathBuf;

use cg_trustguard::analysis::{Input, validate};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// (context, question, answer) of the first row of `halueval_{task}_dev.jsonl`.
fn first_row(task: &str) -> (String, String, String) {
    let dir = std::env::var("CG_EVAL_DIR").map_or_else(
        |_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/eval"),
        PathBuf::from,
    );
    let path = dir.join(format!("grounding/halueval_{task}_dev.jsonl"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set CG_EVAL_DIR)", path.display()));
    let line = text.lines().next().expect("a row");
    let v: serde_json::Value = serde_json::from_str(line).expect("a HaluEval row");
    let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
    (field("context"), field("question"), field("answer"))
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("trustguard");
    for task in ["qa", "dialogue", "summarization"] {
        let (context, question, answer) = first_row(task);
        group.throughput(Throughput::Bytes(
            (context.len() + question.len() + answer.len()) as u64,
        ));
        group.bench_function(format!("validate_{task}"), |b| {
            b.iter(|| {
                validate(black_box(&Input {
                    content: &answer,
                    context: Some(&context),
                    question: Some(&question),
                    task: None,
                }))
            })
        });
    }
    let parts = [
        "The Eiffel Tower was definitely completed in 1889 and is 330 metres tall. ",
        "It might be the most visited monument in the world, I think. ",
        "Everyone knows it was built for the World's Fair. ",
        "The tower was never painted red. The tower was painted red in 1900. ",
    ];
    let mut text = String::new();
    for part in parts.iter().cycle() {
        if text.len() >= 1024 {
            break;
        }
        text.push_str(part);
    }
    text.truncate(text.floor_char_boundary(1024));
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("validate_1kb_without_context", |b| {
        b.iter(|| {
            validate(black_box(&Input {
                content: &text,
                ..Input::default()
            }))
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
