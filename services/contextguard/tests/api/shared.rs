//! Two ContextGuard replicas on one Redis see the same memory and conversations.

use cg_contextguard::config::Settings;
use cg_storage::testing::RedisServer;
use serde_json::json;

use crate::helpers::{get, post, redis_storage, spawn};

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_share_memory_and_conversations() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let storage = redis_storage(&redis.url, "cgshared:");
    let a = spawn(&storage, Settings::default()).await;
    let b = spawn(&storage, Settings::default()).await;
    wait_until_serving(&a).await;
    wait_until_serving(&b).await;

    let (status, _) = post(&a, "/memory", json!({"key": "k", "value": {"from": "a"}})).await;
    assert_eq!(status, 201);
    let (status, got) = get(&b, "/memory/k").await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["value"]["from"], "a");
    let (status, _) = post(&b, "/memory", json!({"key": "k", "value": {"from": "b"}})).await;
    assert_eq!(status, 200);
    assert_eq!(get(&a, "/memory/k").await.1["value"]["from"], "b");

    post(
        &a,
        "/v1/drift",
        json!({"session_id": "s", "text": "The ferry to the island leaves at nine."}),
    )
    .await;
    let (_, second) = post(
        &b,
        "/v1/drift",
        json!({"session_id": "s", "text": "The island ferry returns at six."}),
    )
    .await;
    assert_eq!(second["session_turns"], 2, "{second}");
    let (_, shown) = get(&a, "/v1/conversations/s").await;
    assert_eq!(shown["session_turns"], 2, "{shown}");
}

pub async fn wait_until_serving(app: &cg_service_kit::testing::TestApp) {
    for _ in 0..100 {
        let (_, health) = app.get_json("/health").await;
        if health["dependencies"]["redis"]["status"] == "ok" {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("Redis never served");
}
