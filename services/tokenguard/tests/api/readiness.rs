use cg_service_kit::testing::{TestApp, server_config};
use cg_storage::StorageConfig;
use cg_storage::testing::RedisServer;
use cg_tokenguard::config::Config;
use cg_tokenguard::startup;

/// Redis crashes under a running replica: readiness turns 503 and says which dependency failed,
/// while liveness stays 200 (the process is fine; restarting it would not help).
#[tokio::test(flavor = "multi_thread")]
async fn readiness_follows_redis() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let storage = StorageConfig::from_pairs([
        ("REDIS_URL", redis.url.as_str()),
        ("REDIS_CONNECT_TIMEOUT_MS", "300"),
        ("REDIS_RESPONSE_TIMEOUT_MS", "300"),
    ])
    .unwrap();
    let app = startup::build(Config {
        server: server_config(),
        storage,
        tokenguard: Default::default(),
    })
    .await
    .unwrap();
    let app = TestApp::run(app);
    assert_eq!(app.get_json("/health/ready").await.0, 200);

    redis.stop();
    let (status, body) = app.get_json("/health/ready").await;
    assert_eq!(status, 503, "{body}");
    // The public answer says which dependency failed, never how (no addresses, no errors)...
    assert_eq!(
        body["dependencies"]["redis"],
        serde_json::json!({"status": "error"}),
        "{body}"
    );
    // ...the admin listener says how.
    let (status, detail) = app.get_admin_json("/health").await;
    assert_eq!(status, 503, "{detail}");
    assert!(
        detail["dependencies"]["redis"]["error"].as_str().is_some(),
        "{detail}"
    );
    assert_eq!(app.get_json("/health/live").await.0, 200);
}
