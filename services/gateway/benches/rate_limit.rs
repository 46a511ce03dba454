//! The cost of one rate-limit check (three windows in one atomic Redis call) against a bare Redis
//! round trip (PING) on the same connection, in the same run, and the check with a budget
//! reservation as two calls and as one pipeline:
//! `CG_TEST_REDIS_URL=redis://127.0.0.1:6379/0 cargo bench -p cg-gateway --bench rate_limit`.
//! Without `CG_TEST_REDIS_URL` only the in-process limiter (the fallback) is measured.

#![expect(
    clippy::expect_used,
    reason = "a benchmark without its backends cannot run"
)]

use std::hint::black_box;
use std::time::Duration;

use cg_gateway::traffic::{EndpointClass, FailMode, RateLimiter};
use cg_storage::Cache;
use cg_storage::cache::MemoryCache;
use criterion::{Criterion, criterion_group, criterion_main};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let mut group = c.benchmark_group("rate_limit");
    group.measurement_time(Duration::from_secs(5));
    let memory = RateLimiter::new(
        Cache::Memory(MemoryCache::new(64 << 20, "bench:")),
        FailMode::Local,
        1.0,
    );
    let mut n = 0u64;
    group.bench_function("check_in_process", |b| {
        b.iter(|| {
            n += 1;
            // A fresh client per call (1,000 distinct keys), never refused.
            let client = format!("key:{}", n % 1000);
            rt.block_on(memory.check(black_box(&client), EndpointClass::Process, 1 << 40, None))
                .is_ok()
        })
    });
    if let Ok(url) = std::env::var("CG_TEST_REDIS_URL") {
        let target = cg_storage::StorageConfig::from_pairs([
            ("CG_STORAGE_MODE".to_owned(), "centralized".to_owned()),
            ("REDIS_URL".to_owned(), url),
            ("CACHE_KEY_PREFIX".to_owned(), "cg-bench:".to_owned()),
        ])
        .and_then(|c| {
            c.resolve(cg_storage::Needs {
                database: false,
                cache: true,
                blobs: false,
            })
        })
        .expect("redis config")
        .cache
        .expect("a cache");
        let cache = rt
            .block_on(Cache::connect(&target))
            .expect("connect to Redis");
        let limiter = RateLimiter::new(cache.clone(), FailMode::Closed, 1.0);
        group.bench_function("redis_ping", |b| {
            b.iter(|| rt.block_on(cache.ping()).is_ok())
        });
        group.bench_function("check_redis", |b| {
            b.iter(|| {
                n += 1;
                let client = format!("key:{}", n % 1000);
                rt.block_on(limiter.check(
                    black_box(&client),
                    EndpointClass::Process,
                    1 << 40,
                    None,
                ))
                .is_ok()
            })
        });
        // What a guard call does before it reaches the guard: the check and a budget reservation,
        // as two calls (before) and as one pipeline (now).
        let counter = "budget:bench";
        let keep = Duration::from_secs(3600);
        group.bench_function("check_then_reserve_two_calls", |b| {
            b.iter(|| {
                n += 1;
                let client = format!("key:{}", n % 1000);
                rt.block_on(async {
                    let limit = limiter
                        .check(black_box(&client), EndpointClass::Process, 1 << 40, None)
                        .await;
                    let total = cache.incr_by(counter, 1, Some(keep)).await;
                    limit.is_ok() && total.is_ok()
                })
            })
        });
        group.bench_function("check_and_reserve_one_pipeline", |b| {
            b.iter(|| {
                n += 1;
                let client = format!("key:{}", n % 1000);
                rt.block_on(limiter.decide(
                    black_box(&client),
                    EndpointClass::Process,
                    1 << 40,
                    None,
                    Some((counter, 1, keep)),
                ))
                .is_ok_and(|(_, total)| total.is_some())
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
