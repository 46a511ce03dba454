//! PostgreSQL goes away mid-run: analyses keep answering, their results wait in the outbox, and
//! once the database is back every row arrives exactly once.

use std::time::{Duration, Instant};

use cg_healthguard::config::Settings;
use cg_storage::StorageConfig;
use cg_storage::models::{HealthSample, PoisonResult};
use cg_storage::testing::PostgresServer;
use serde_json::{Value, json};

use crate::routes::{ORG, db, post, spawn};

fn samples(n: usize, tag: &str) -> Value {
    let samples: Vec<Value> = (0..n)
        .map(|i| json!({"id": format!("{tag}-{i}"), "content": format!("Sample {i} of {tag}: the river floods every spring.")}))
        .collect();
    json!({ "samples": samples })
}

async fn count(storage: &StorageConfig) -> i64 {
    let db = db(storage).await;
    let mut pooled = db.get().await.expect("connection");
    PoisonResult::count(&mut pooled.conn())
        .await
        .expect("count")
}

#[tokio::test(flavor = "multi_thread")]
async fn results_written_while_postgres_is_down_are_replayed_exactly_once() {
    let Some(mut server) = PostgresServer::start().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let storage = StorageConfig::from_pairs([
        ("CG_STORAGE_MODE".to_owned(), "centralized".to_owned()),
        ("CG_DATA_DIR".to_owned(), dir.path().display().to_string()),
        ("DATABASE_URL".to_owned(), server.url.clone()),
        ("DB_CONNECT_TIMEOUT_SECS".to_owned(), "1".to_owned()),
        ("DB_ACQUIRE_TIMEOUT_SECS".to_owned(), "1".to_owned()),
    ])
    .unwrap();
    let settings = Settings {
        metrics_interval_secs: Some(0.2),
        outbox_replay_secs: Some(0.2),
        ..Settings::default()
    };
    let app = spawn(&storage, settings).await;

    let (status, body) = post(&app, "/analyze", samples(3, "before")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["stored"], "database", "{body}");
    assert_eq!(count(&storage).await, 3);

    server.stop();
    for (n, tag) in [(2, "down-a"), (4, "down-b")] {
        let (status, body) = post(&app, "/analyze", samples(n, tag)).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["stored"], "outbox", "{body}");
        assert_eq!(body["results"].as_array().unwrap().len(), n);
    }
    // Long enough for health samples to be taken (and kept) while the database is away.
    tokio::time::sleep(Duration::from_millis(600)).await;
    // Still ready (the outbox serves in the database's place), reported degraded.
    let (health_status, health) = app.get_admin_json("/health").await;
    assert_eq!(health_status, 200, "{health}");
    assert_eq!(health["status"], "degraded", "{health}");
    assert!(health["outbox_depth"].as_i64() >= Some(2), "{health}");

    server.resume().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while count(&storage).await < 9 {
        assert!(
            Instant::now() < deadline,
            "the outbox was not replayed in time"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Further replay rounds add nothing: every row arrived exactly once.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(count(&storage).await, 9);
    let db = db(&storage).await;
    let mut pooled = db.get().await.unwrap();
    for tag in ["before", "down-a", "down-b"] {
        let rows = PoisonResult::list(&mut pooled.conn(), Some(ORG.parse().unwrap()), 100, 0)
            .await
            .unwrap()
            .into_iter()
            .filter(|r| r.sample_id.starts_with(tag))
            .count();
        assert_eq!(
            rows,
            if tag == "down-b" {
                4
            } else if tag == "down-a" {
                2
            } else {
                3
            }
        );
    }
    // Health samples taken while the database was away (degraded: records waiting) arrived too.
    let samples = HealthSample::recent(&mut pooled.conn(), 1000)
        .await
        .unwrap();
    assert!(
        samples.iter().any(|s| s.status == "degraded"),
        "{samples:?}"
    );
}
