use std::time::Duration;

use cg_storage::cache::{Cache, RateWindow};
use cg_storage::testing::{RedisCluster, all_caches};

async fn values_expire_and_set_nx_holds(cache: &Cache) {
    {
        let b = cache.backend();
        cache.set("k", b"v1", None).await.unwrap();
        assert_eq!(
            cache.get("k").await.unwrap().as_deref(),
            Some(&b"v1"[..]),
            "{b}"
        );
        assert_eq!(cache.ttl("k").await.unwrap(), None, "{b}: no TTL was set");

        cache
            .set("short", b"x", Some(Duration::from_millis(200)))
            .await
            .unwrap();
        let ttl = cache.ttl("short").await.unwrap().unwrap();
        assert!(
            ttl <= Duration::from_millis(200) && ttl > Duration::ZERO,
            "{b}: {ttl:?}"
        );
        assert!(!cache.set_nx("short", b"y", None).await.unwrap(), "{b}");
        tokio::time::sleep(Duration::from_millis(350)).await;
        assert_eq!(
            cache.get("short").await.unwrap(),
            None,
            "{b}: value outlived its TTL"
        );
        assert!(
            cache.set_nx("short", b"y", None).await.unwrap(),
            "{b}: expired key is free again"
        );

        assert_eq!(
            cache.take("k").await.unwrap().as_deref(),
            Some(&b"v1"[..]),
            "{b}"
        );
        assert_eq!(cache.take("k").await.unwrap(), None, "{b}: taken twice");
        cache.set("k", b"v1", None).await.unwrap();
        assert!(cache.delete("k").await.unwrap(), "{b}");
        assert!(!cache.delete("k").await.unwrap(), "{b}");
        assert!(
            !cache.expire("k", Duration::from_secs(1)).await.unwrap(),
            "{b}"
        );
    }
}

async fn counters_are_atomic_and_keep_their_ttl(cache: &Cache) {
    {
        let b = cache.backend();
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let cache = cache.clone();
            tasks.push(tokio::spawn(async move {
                for _ in 0..100 {
                    cache
                        .incr_by("hits", 1, Some(Duration::from_secs(60)))
                        .await
                        .unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(
            cache.get_string("hits").await.unwrap().as_deref(),
            Some("800"),
            "{b}"
        );

        cache
            .incr_by("window", 5, Some(Duration::from_millis(300)))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(150)).await;
        // A later increment must not push the window's end back.
        assert_eq!(
            cache
                .incr_by("window", 5, Some(Duration::from_millis(300)))
                .await
                .unwrap(),
            10
        );
        let ttl = cache.ttl("window").await.unwrap().unwrap();
        assert!(
            ttl <= Duration::from_millis(160),
            "{b}: TTL was extended to {ttl:?}"
        );

        cache.set("text", b"abc", None).await.unwrap();
        assert!(
            cache.incr_by("text", 1, None).await.is_err(),
            "{b}: non-integer counted"
        );
    }
}

async fn hashes(cache: &Cache) {
    {
        let b = cache.backend();
        cache.hset("h", "a", b"1").await.unwrap();
        assert_eq!(cache.hincr_by("h", "a", 4).await.unwrap(), 5, "{b}");
        assert_eq!(cache.hincr_by("h", "n", -2).await.unwrap(), -2, "{b}");
        assert_eq!(
            cache.hget("h", "a").await.unwrap().as_deref(),
            Some(&b"5"[..]),
            "{b}"
        );
        assert_eq!(cache.hget("h", "zz").await.unwrap(), None, "{b}");
        let all = cache.hgetall("h").await.unwrap();
        assert_eq!(all.len(), 2, "{b}");
        assert!(cache.hdel("h", "a").await.unwrap(), "{b}");
        assert!(!cache.hdel("h", "a").await.unwrap(), "{b}");
        assert!(cache.hgetall("missing").await.unwrap().is_empty(), "{b}");
    }
}

async fn rate_limit_admits_exactly_the_limit_under_concurrency(cache: &Cache) {
    {
        let b = cache.backend();
        let windows = [
            RateWindow::new(20, Duration::from_secs(3600)),
            RateWindow::new(1000, Duration::from_secs(86_400)),
        ];
        let mut tasks = Vec::new();
        for _ in 0..60 {
            let cache = cache.clone();
            tasks.push(tokio::spawn(async move {
                cache.rate_limit("client-1", &windows, 1).await.unwrap()
            }));
        }
        let mut admitted = 0;
        for t in tasks {
            let d = t.await.unwrap();
            if d.allowed {
                admitted += 1;
            } else {
                assert!(d.retry_after.unwrap() > Duration::ZERO, "{b}");
                assert_eq!(d.remaining, 0, "{b}");
            }
            assert_eq!(d.limit, 20, "{b}: the tighter window reports");
        }
        assert_eq!(admitted, 20, "{b}");
        // Another client has its own budget.
        assert!(
            cache
                .rate_limit("client-2", &windows, 1)
                .await
                .unwrap()
                .allowed,
            "{b}"
        );
        // A refused request counts nowhere: the daily window saw only the 20 admitted.
        let day = [RateWindow::new(21, Duration::from_secs(86_400))];
        let d = cache.rate_limit("client-1", &day, 1).await.unwrap();
        assert!(d.allowed && d.remaining == 0, "{b}: {d:?}");
    }
}

/// The rate limit and a counter in one call: the limit decides as alone, the counter moves
/// whatever the decision and gets its TTL once.
async fn rate_limit_and_a_counter_in_one_call(cache: &Cache) {
    let b = cache.backend();
    let windows = [RateWindow::new(3, Duration::from_secs(3600))];
    let ttl = Duration::from_secs(600);
    let mut totals = Vec::new();
    for _ in 0..4 {
        let (d, total) = cache
            .rate_limit_and_incr_by("fused", &windows, 1, "fused-budget", 25, ttl)
            .await
            .unwrap();
        totals.push((d.allowed, total.unwrap()));
    }
    assert_eq!(
        totals,
        [(true, 25), (true, 50), (true, 75), (false, 100)],
        "{b}"
    );
    let left = cache.ttl("fused-budget").await.unwrap().unwrap();
    assert!(
        left > Duration::from_secs(590) && left <= ttl,
        "{b}: {left:?}"
    );
    // The limit alone agrees: three counted.
    let alone = cache.rate_limit("fused", &windows, 1).await.unwrap();
    assert!(!alone.allowed, "{b}");
    // A Redis that forgot its scripts (restarted, flushed) still gets both done, once.
    if b == "redis"
        && let Ok(url) = std::env::var("CG_TEST_REDIS_URL")
    {
        let flushed = std::process::Command::new("redis-cli")
            .args(["-u", &url, "SCRIPT", "FLUSH"])
            .output()
            .unwrap();
        assert!(flushed.status.success(), "{flushed:?}");
        let (d, total) = cache
            .rate_limit_and_incr_by("fused", &windows, 1, "fused-budget", 25, ttl)
            .await
            .unwrap();
        assert_eq!((d.allowed, total), (false, Some(125)));
    }
}

async fn pubsub_delivers_within_the_prefix(cache: &Cache) {
    {
        let b = cache.backend();
        let mut sub = cache.subscribe("config").await.unwrap();
        let other: Cache = cache.with_prefix("other:");
        let mut other_sub = other.subscribe("config").await.unwrap();
        // Subscribing completes asynchronously on Redis: publish until the message arrives. (The
        // count PUBLISH returns is per node on a cluster, so the message itself is the proof.)
        let mut got = None;
        for _ in 0..50 {
            cache.publish("config", "v2").await.unwrap();
            if let Ok(msg) = tokio::time::timeout(Duration::from_millis(100), sub.next()).await {
                got = msg;
                break;
            }
        }
        assert_eq!(got.as_deref(), Some("v2"), "{b}");
        let leaked = tokio::time::timeout(Duration::from_millis(200), other_sub.next()).await;
        assert!(leaked.is_err(), "{b}: message crossed prefixes: {leaked:?}");
    }
}

async fn prefixes_isolate_keys(cache: &Cache) {
    {
        let b = cache.backend();
        let a = cache.with_prefix("a:");
        let z = cache.with_prefix("z:");
        a.set("same", b"from-a", None).await.unwrap();
        assert_eq!(z.get("same").await.unwrap(), None, "{b}");
        assert_eq!(
            cache.get("a:same").await.unwrap().as_deref(),
            Some(&b"from-a"[..]),
            "{b}"
        );
        assert!(cache.ping().await.unwrap() < Duration::from_secs(1), "{b}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn values_expire_and_set_nx_holds_on_every_cache() {
    for cache in all_caches().await {
        values_expire_and_set_nx_holds(&cache).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn counters_are_atomic_and_keep_their_ttl_on_every_cache() {
    for cache in all_caches().await {
        counters_are_atomic_and_keep_their_ttl(&cache).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn hashes_on_every_cache() {
    for cache in all_caches().await {
        hashes(&cache).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_admits_exactly_the_limit_under_concurrency_on_every_cache() {
    for cache in all_caches().await {
        rate_limit_admits_exactly_the_limit_under_concurrency(&cache).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn rate_limit_and_a_counter_in_one_call_on_every_cache() {
    for cache in all_caches().await {
        rate_limit_and_a_counter_in_one_call(&cache).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pubsub_delivers_within_the_prefix_on_every_cache() {
    for cache in all_caches().await {
        pubsub_delivers_within_the_prefix(&cache).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn prefixes_isolate_keys_on_every_cache() {
    for cache in all_caches().await {
        prefixes_isolate_keys(&cache).await;
    }
}

/// Redis Cluster: every body above against a test-owned three-node cluster (keys of one client
/// share a hash slot, so the rate-limit script runs there too).
#[tokio::test(flavor = "multi_thread")]
async fn every_cache_body_on_a_redis_cluster() {
    let Some(cluster) = RedisCluster::start().await else {
        return;
    };
    values_expire_and_set_nx_holds(&cluster.cache().await).await;
    counters_are_atomic_and_keep_their_ttl(&cluster.cache().await).await;
    hashes(&cluster.cache().await).await;
    rate_limit_admits_exactly_the_limit_under_concurrency(&cluster.cache().await).await;
    rate_limit_and_a_counter_in_one_call(&cluster.cache().await).await;
    pubsub_delivers_within_the_prefix(&cluster.cache().await).await;
    prefixes_isolate_keys(&cluster.cache().await).await;
}
