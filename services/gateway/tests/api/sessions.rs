use cg_storage::StorageConfig;
use cg_storage::testing::{RedisServer, TestDb};
use serde_json::json;

use crate::helpers::{Auth, access, refresh, settings, spawn};

/// Redis (a test-owned server) dies under a running gateway: logins, refreshes and logouts carry on
/// from the `sessions` table.
#[tokio::test(flavor = "multi_thread")]
async fn sessions_fall_back_to_the_database_when_redis_dies() {
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let db = TestDb::sqlite().await;
    let storage = StorageConfig::from_pairs([
        ("DATABASE_URL", db.url.as_str()),
        ("REDIS_URL", redis.url.as_str()),
        ("REDIS_CONNECT_TIMEOUT_MS", "300"),
        ("REDIS_RESPONSE_TIMEOUT_MS", "300"),
    ])
    .unwrap();
    let gw = spawn(storage, settings()).await;
    let before = gw.sign_up("erin@example.com").await;
    assert_eq!(
        gw.get("/api/v1/auth/me", Auth::Bearer(access(&before)))
            .await
            .0,
        200
    );

    redis.stop();

    let during = gw.login("erin@example.com").await;
    assert_eq!(
        gw.get("/api/v1/auth/me", Auth::Bearer(access(&during)))
            .await
            .0,
        200
    );
    let (status, rotated) = gw
        .post(
            "/api/v1/auth/refresh",
            Auth::None,
            json!({"refresh_token": refresh(&during)}),
        )
        .await;
    assert_eq!(status, 200, "{rotated}");
    let (status, _) = gw
        .post(
            "/api/v1/auth/refresh",
            Auth::None,
            json!({"refresh_token": refresh(&during)}),
        )
        .await;
    assert_eq!(status, 401, "reuse detected in the database too");
    let (status, _) = gw
        .post(
            "/api/v1/auth/refresh",
            Auth::None,
            json!({"refresh_token": refresh(&rotated)}),
        )
        .await;
    assert_eq!(status, 401, "the family was revoked");

    // Logging out cannot tell the other replicas to refuse the session's access tokens while
    // Redis is away: 503, and nothing ended (the refresh token still works).
    let last = gw.login("erin@example.com").await;
    let (status, body) = gw
        .post(
            "/api/v1/auth/logout",
            Auth::Bearer(access(&last)),
            json!({"refresh_token": refresh(&last)}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(body["error"]["request_id"].is_string(), "{body}");
    let (status, body) = gw.refresh(refresh(&last)).await;
    assert_eq!(status, 200, "{body}");
}
