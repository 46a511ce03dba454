//! PostgreSQL goes away mid-run: analyses keep answering from cached policies, their audit rows
//! and violations wait in the outbox, and once the database is back every row arrives exactly
//! once.

use std::time::{Duration, Instant};

use cg_biasguard::config::Settings;
use cg_storage::StorageConfig;
use cg_storage::models::{AuditLog, Violation, ViolationFilter};
use cg_storage::sql_types::Id;
use cg_storage::testing::PostgresServer;
use serde_json::json;

use crate::process::{BIASED, add_policy, db, organization, post, spawn};

async fn counts(storage: &StorageConfig, org: Id) -> (usize, i64) {
    let db = db(storage).await;
    let mut pooled = db.get().await.expect("connection");
    let audits = AuditLog::list_for_org(&mut pooled.conn(), org, 1000)
        .await
        .expect("audit")
        .len();
    let violations = Violation::list(&mut pooled.conn(), org, &ViolationFilter::default(), 1, 0)
        .await
        .expect("violations")
        .1;
    (audits, violations)
}

#[tokio::test(flavor = "multi_thread")]
async fn records_written_while_postgres_is_down_are_replayed_exactly_once() {
    let Some(mut server) = PostgresServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageConfig::from_pairs([
        ("CG_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("DATABASE_URL".to_owned(), server.url.clone()),
        ("DB_CONNECT_TIMEOUT_SECS".to_owned(), "1".to_owned()),
        ("DB_ACQUIRE_TIMEOUT_SECS".to_owned(), "1".to_owned()),
    ])
    .unwrap();
    let settings = Settings {
        outbox_replay_secs: Some(0.2),
        policy_ttl_secs: Some(0.2),
        ..Settings::default()
    };
    let app = spawn(&storage, settings).await;
    let db = db(&storage).await;
    let org = organization(&db, "outage").await;
    add_policy(
        &db,
        org,
        "limit",
        "compliance",
        json!({"max_bias_score": 4.0}),
    )
    .await;
    let ask = json!({"operation": "detect_bias", "text": BIASED});

    let (status, body) = post(&app, Some(org), ask.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["stored"].clone(), body["decision"].clone()),
        (json!("database"), json!("deny"))
    );
    assert_eq!(counts(&storage, org).await, (1, 1));

    server.stop();
    // Past the policy TTL: the stale copy still denies.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let (status, body) = post(&app, Some(org), ask.clone()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["stored"], "outbox", "{body}");
        assert_eq!(body["decision"], "deny", "{body}");
    }
    let health = app
        .client
        .get(format!("{}/health", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let health: serde_json::Value = health.json().await.unwrap();
    assert_eq!(health["status"], "degraded", "{health}");

    server.resume().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while counts(&storage, org).await != (4, 4) {
        assert!(
            Instant::now() < deadline,
            "the outbox was not replayed in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        counts(&storage, org).await,
        (4, 4),
        "replayed more than once"
    );
}
