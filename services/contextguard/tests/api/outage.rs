//! Redis goes away: the in-process store serves, `/health` says so, and what was written
//! meanwhile reaches Redis once it is back.

use std::time::Duration;

use cg_contextguard::config::Settings;
use cg_storage::Cache;
use cg_storage::testing::RedisServer;
use serde_json::{Value, json};

use crate::helpers::{delete, get, post, redis_storage, spawn};
use crate::shared::wait_until_serving;

async fn direct(storage: &cg_storage::StorageConfig) -> Cache {
    let target = storage
        .clone()
        .for_contextguard()
        .resolve(cg_storage::Needs {
            database: false,
            cache: true,
            blobs: false,
        })
        .unwrap()
        .cache
        .unwrap();
    Cache::connect(&target).await.unwrap()
}

fn settings() -> Settings {
    Settings {
        probe_secs: Some(0.1),
        ..Settings::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_during_a_redis_outage_are_written_back() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let storage = redis_storage(&redis.url, "cgoutage:");
    let app = spawn(&storage, settings()).await;
    wait_until_serving(&app).await;
    assert_eq!(
        post(&app, "/memory", json!({"key": "before", "value": 1}))
            .await
            .0,
        201
    );
    assert_eq!(
        post(&app, "/memory", json!({"key": "doomed", "value": 0}))
            .await
            .0,
        201
    );

    redis.stop();
    let (status, during) = post(
        &app,
        "/memory",
        json!({"key": "during", "value": {"n": 2}, "ttl": 600}),
    )
    .await;
    assert_eq!(status, 201, "{during}");
    assert_eq!(delete(&app, "/memory/doomed").await.0, 200);
    post(
        &app,
        "/v1/drift",
        json!({"session_id": "s", "text": "Turn written while Redis was away."}),
    )
    .await;
    // This replica still reads what it wrote, before and during the outage.
    assert_eq!(get(&app, "/memory/during").await.1["value"]["n"], 2);
    assert_eq!(get(&app, "/memory/before").await.1["value"], 1);
    let (status, health) = app.get_admin_json("/health").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    let dep = &health["dependencies"]["redis"];
    assert_eq!(dep["fallback"], "memory", "{health}");
    assert!(dep["pending_writes"].as_u64().unwrap() >= 4, "{health}");
    assert_eq!(app.get_json("/health/ready").await.0, 200);

    // Back, empty (nothing persisted): the journal is written back in order.
    redis.resume().await;
    wait_until_serving(&app).await;
    let (_, health) = app.get_admin_json("/health").await;
    assert_eq!(health["status"], "healthy", "{health}");
    assert_eq!(health["dependencies"]["redis"]["pending_writes"], 0);
    let cache = direct(&storage).await;
    let ns = crate::helpers::ORG;
    let during: Value = serde_json::from_slice(
        &cache
            .get(&format!("mem:{ns}:during"))
            .await
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(during["value"]["n"], 2);
    let ttl = cache
        .ttl(&format!("mem:{ns}:during"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        ttl <= Duration::from_secs(600) && ttl > Duration::from_secs(500),
        "{ttl:?}"
    );
    assert!(
        cache
            .get(&format!("mem:{ns}:doomed"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        cache.hgetall(&format!("conv:{ns}:s")).await.unwrap().len(),
        1
    );
    // Served from Redis again: a second replica sees the written-back item.
    let other = spawn(&storage, settings()).await;
    wait_until_serving(&other).await;
    assert_eq!(get(&other, "/memory/during").await.1["value"]["n"], 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn starts_while_redis_is_away_and_catches_up() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    redis.stop();
    let storage = redis_storage(&redis.url, "cglate:");
    let app = spawn(&storage, settings()).await;
    let (status, health) = app.get_json("/health").await;
    assert_eq!(
        (status, health["status"].as_str()),
        (200, Some("degraded")),
        "{health}"
    );
    assert_eq!(
        post(&app, "/memory", json!({"key": "early", "value": "bird"}))
            .await
            .0,
        201
    );
    redis.resume().await;
    wait_until_serving(&app).await;
    let cache = direct(&storage).await;
    let stored = cache
        .get(&format!("mem:{}:early", crate::helpers::ORG))
        .await
        .unwrap();
    assert!(stored.is_some());
}

/// The journal outlives the replica: writes taken during an outage by a replica that then dies are
/// written back by the next one started on the same data folder.
#[tokio::test(flavor = "multi_thread")]
async fn the_journal_survives_a_restart() {
    use std::sync::Arc;

    use cg_contextguard::store::Store;
    use tokio_util::sync::CancellationToken;

    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    redis.stop();
    let storage = redis_storage(&redis.url, "cgjournal:");
    let target = storage
        .clone()
        .for_contextguard()
        .resolve(cg_storage::Needs {
            database: false,
            cache: true,
            blobs: false,
        })
        .unwrap()
        .cache
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = dir.path().join("journal.db");
    {
        let first = Store::open(target.clone(), &journal, 1 << 20, 100)
            .await
            .unwrap();
        first.set("a", b"1", None).await.unwrap();
        first.hset("h", "f", b"2").await.unwrap();
        first.set("gone", b"x", None).await.unwrap();
        first.delete("gone").await.unwrap();
        assert_eq!(first.health().await.pending_writes, 4);
    }
    redis.resume().await;
    let second = Arc::new(Store::open(target, &journal, 1 << 20, 100).await.unwrap());
    assert_eq!(second.health().await.pending_writes, 4);
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(
        second
            .clone()
            .maintain(Duration::from_millis(50), shutdown.clone()),
    );
    for _ in 0..100 {
        if second.health().await.ok {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    shutdown.cancel();
    task.await.unwrap();
    let health = second.health().await;
    assert!(health.ok && health.pending_writes == 0, "{health:?}");
    let cache = direct(&storage).await;
    assert_eq!(cache.get("a").await.unwrap().as_deref(), Some(&b"1"[..]));
    assert_eq!(
        cache.hget("h", "f").await.unwrap().as_deref(),
        Some(&b"2"[..])
    );
    assert!(cache.get("gone").await.unwrap().is_none());
}

/// A full journal refuses writes rather than dropping them.
#[tokio::test(flavor = "multi_thread")]
async fn a_full_journal_refuses_writes() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    redis.stop();
    let storage = redis_storage(&redis.url, "cgfull:");
    let app = spawn(
        &storage,
        Settings {
            journal_max_writes: Some(2),
            ..settings()
        },
    )
    .await;
    // One item is two writes (the item and its index entry).
    assert_eq!(
        post(&app, "/memory", json!({"key": "a", "value": 1}))
            .await
            .0,
        201
    );
    let (status, refused) = post(&app, "/memory", json!({"key": "b", "value": 2})).await;
    assert_eq!(status, 503, "{refused}");
    assert_eq!(refused["error"]["code"], "service_unavailable");
}
