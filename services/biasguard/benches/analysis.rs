//! Throughput of BiasGuard's analysis: `cargo bench -p cg-biasguard --bench analysis`.

use std::hint::black_box;
use std::time::{Duration, Instant};

use cg_biasguard::analysis::{BiasRequest, analyze};
use criterion::{Criterion, Throughput, criterion_group};

/// About 1 KB of mixed text: neutral sentences, a generalisation, a reported one, a gendered
/// default.
fn sample_1kb() -> String {
    let parts = [
        "My wife is a nurse and she loves her job at the hospital. ",
        "Some people say that all immigrants are criminals, which is a myth. ",
        "The chairman said every engineer should review his own code before lunch. ",
        "Honestly, those people are lazy and always play the victim. ",
        "We went to the market on Saturday and bought apples, bread and cheese. ",
        "Not all men are like that, and the study found no difference at all. ",
    ];
    let mut s = String::new();
    let mut i = 0;
    while s.len() < 1024 {
        s.push_str(parts[i % parts.len()]);
        i += 1;
    }
    s.truncate(s.floor_char_boundary(1024));
    s
}

fn bench(c: &mut Criterion) {
    let text = sample_1kb();
    let mut group = c.benchmark_group("biasguard_analysis");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("analyze_1kb", |b| {
        b.iter(|| {
            analyze(black_box(&BiasRequest {
                text: &text,
                context: None,
                detailed: true,
            }))
        })
    });
    let short = "Women are too emotional to be good scientists.";
    group.throughput(Throughput::Bytes(short.len() as u64));
    group.bench_function("analyze_sentence", |b| {
        b.iter(|| {
            analyze(black_box(&BiasRequest {
                text: short,
                context: None,
                detailed: false,
            }))
        })
    });
    group.finish();
}

/// The latency distribution criterion does not report: 5,000 timed analyses of the 1 KB text.
#[expect(clippy::print_stdout, reason = "a benchmark reports on stdout")]
fn latency() {
    let text = sample_1kb();
    let req = BiasRequest {
        text: &text,
        context: None,
        detailed: true,
    };
    for _ in 0..200 {
        black_box(analyze(black_box(&req)));
    }
    let mut times: Vec<Duration> = (0..5000)
        .map(|_| {
            let started = Instant::now();
            black_box(analyze(black_box(&req)));
            started.elapsed()
        })
        .collect();
    times.sort_unstable();
    let at = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "biasguard_analysis/analyze_1kb latency over {} runs: p50 {:?}  p99 {:?}  max {:?}",
        times.len(),
        at(0.5),
        at(0.99),
        at(1.0)
    );
}

criterion_group!(benches, bench);

fn main() {
    benches();
    latency();
    Criterion::default().configure_from_args().final_summary();
}
