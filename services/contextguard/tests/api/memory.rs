use std::time::Duration;

use cg_contextguard::config::Settings;
use cg_storage::testing::TestStorage;
use serde_json::json;

use crate::helpers::{OTHER_ORG, call, delete, get, post, spawn};

#[tokio::test(flavor = "multi_thread")]
async fn memory_items_on_every_storage_mode() {
    for storage in TestStorage::all().await {
        let mode = storage.label;
        let app = spawn(&storage.config, Settings::default()).await;
        let value = json!({"summary": "user prefers metric units", "n": [1, 2, 3]});

        let (status, put) = post(
            &app,
            "/memory",
            json!({"key": "prefs/units", "value": value, "ttl": 600}),
        )
        .await;
        assert_eq!(status, 201, "{mode}: {put}");
        assert_eq!(put["created"], true);
        let (status, got) = get(&app, "/memory/prefs/units").await;
        assert_eq!(status, 200, "{mode}: {got}");
        assert_eq!(got["value"], value, "{mode}");
        assert_eq!(got["ttl"], 600);
        let left = got["ttl_remaining"].as_u64().unwrap();
        assert!((590..=600).contains(&left), "{mode}: {got}");

        // Overwrite keeps created_at, answers 200.
        let (status, again) = post(
            &app,
            "/memory",
            json!({"key": "prefs/units", "value": "imperial"}),
        )
        .await;
        assert_eq!(
            (status, again["created"].as_bool()),
            (200, Some(false)),
            "{mode}: {again}"
        );
        let (_, got2) = get(&app, "/memory/prefs/units").await;
        assert_eq!(got2["value"], "imperial");
        assert_eq!(got2["created_at"], got["created_at"], "{mode}");
        assert_eq!(got2["ttl"], 3600, "{mode}: the default TTL");

        // ttl 0: kept until deleted.
        let (status, _) = post(
            &app,
            "/memory",
            json!({"key": "forever", "value": 1, "ttl": 0}),
        )
        .await;
        assert_eq!(status, 201);
        let (_, forever) = get(&app, "/memory/forever").await;
        assert_eq!(forever["ttl_remaining"], json!(null), "{mode}: {forever}");

        let (status, list) = get(&app, "/memory").await;
        assert_eq!(status, 200);
        assert_eq!(list["total"], 2, "{mode}: {list}");
        assert_eq!(list["items"][0]["key"], "forever");
        let (_, listed) = get(&app, "/memory?prefix=prefs/").await;
        assert_eq!(listed["total"], 1, "{mode}: {listed}");

        // Another organisation sees none of it.
        let (status, _) = call(
            &app,
            reqwest::Method::GET,
            "/memory/forever",
            Some(OTHER_ORG),
            None,
        )
        .await;
        assert_eq!(status, 404, "{mode}");
        let (_, theirs) = call(&app, reqwest::Method::GET, "/memory", Some(OTHER_ORG), None).await;
        assert_eq!(theirs["total"], 0, "{mode}");

        // Expiry.
        let (status, _) = post(
            &app,
            "/memory",
            json!({"key": "brief", "value": "x", "ttl": 1}),
        )
        .await;
        assert_eq!(status, 201);
        tokio::time::sleep(Duration::from_millis(2100)).await;
        assert_eq!(get(&app, "/memory/brief").await.0, 404, "{mode}");
        let (_, list) = get(&app, "/memory").await;
        assert_eq!(
            list["total"], 2,
            "{mode}: expired items leave the index: {list}"
        );

        let (status, _) = delete(&app, "/memory/forever").await;
        assert_eq!(status, 200);
        assert_eq!(get(&app, "/memory/forever").await.0, 404);
        assert_eq!(delete(&app, "/memory/forever").await.0, 404);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_memory_requests_change_nothing() {
    let storage = TestStorage::embedded();
    let settings = Settings {
        max_value_bytes: Some(64),
        max_items: Some(2),
        ..Settings::default()
    };
    let app = spawn(&storage.config, settings).await;
    let long_key = "k".repeat(256);
    for (body, status) in [
        (json!({"key": long_key, "value": 1}), 400),
        (json!({"key": "", "value": 1}), 400),
        (json!({"key": "a\u{0007}b", "value": 1}), 400),
        (json!({"key": "a", "value": 1, "ttl": 31_536_001}), 400),
        (json!({"key": "a", "value": 1, "ttl": -1}), 422),
        (json!({"key": "a", "value": "x".repeat(100)}), 413),
        (json!({"value": 1}), 422),
    ] {
        let (got, answer) = post(&app, "/memory", body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert!(answer["error"]["code"].is_string(), "{answer}");
    }
    assert_eq!(get(&app, "/memory").await.1["total"], 0);
    let max_key = "k".repeat(255);
    assert_eq!(
        post(&app, "/memory", json!({"key": max_key, "value": 1}))
            .await
            .0,
        201
    );
    assert_eq!(
        post(&app, "/memory", json!({"key": "b", "value": 2}))
            .await
            .0,
        201
    );
    let (status, full) = post(&app, "/memory", json!({"key": "c", "value": 3})).await;
    assert_eq!(
        (status, full["error"]["code"].as_str()),
        (409, Some("item_limit_reached")),
        "{full}"
    );
    // Updating an existing item is fine at the limit.
    assert_eq!(
        post(&app, "/memory", json!({"key": "b", "value": 4}))
            .await
            .0,
        200
    );

    let (status, _) = call(
        &app,
        reqwest::Method::GET,
        "/memory",
        Some("not-a-uuid"),
        None,
    )
    .await;
    assert_eq!(status, 400);
    let resp = app
        .client
        .get(format!("{}/memory", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
}
