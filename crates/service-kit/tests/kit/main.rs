//! The shared server assembly, exercised through a real listener: body limits and every extractor
//! failure answered with the JSON envelope, the internal token on guard routes, readiness.

#![expect(
    clippy::expect_used,
    reason = "tests fail loudly; helpers outside #[test] count too"
)]

use std::sync::Arc;

use actix_web::middleware::from_fn;
use actix_web::{HttpResponse, web};
use cg_service_kit::internal_auth::require_internal_token;
use cg_service_kit::testing::{TEST_INTERNAL_TOKEN, TestApp, server_config};
use cg_service_kit::{HealthReport, Kit, Readiness, ServiceServer};
use futures::future::BoxFuture;
use secrecy::SecretString;
use serde_json::{Value, json};

struct Fixed(bool);

impl Readiness for Fixed {
    fn check(&self) -> BoxFuture<'_, HealthReport> {
        let ready = self.0;
        Box::pin(async move {
            let mut dependencies = serde_json::Map::new();
            dependencies.insert(
                "redis".into(),
                json!({"status": if ready { "ok" } else { "error" }}),
            );
            HealthReport {
                dependencies,
                ready,
                degraded: false,
                extra: serde_json::Map::new(),
            }
        })
    }
}

async fn echo(body: web::Json<Value>) -> HttpResponse {
    HttpResponse::Ok().json(body.into_inner())
}

fn spawn(ready: bool, max_body: usize) -> TestApp {
    let mut config = server_config();
    config.cg_max_body_bytes = Some(max_body);
    let kit = Kit::new(
        "kit-test",
        "0.0.0",
        Arc::new(Fixed(ready)),
        SecretString::from(TEST_INTERNAL_TOKEN),
    );
    let server = ServiceServer::build(&config, 0, kit, |cfg| {
        cfg.route("/echo", web::post().to(echo)).service(
            web::scope("/guarded")
                .wrap(from_fn(require_internal_token))
                .route("/echo", web::post().to(echo)),
        );
    })
    .expect("build");
    let port = server.port();
    TestApp::spawn(port, async move { Ok(server.run_until_stopped().await?) })
}

async fn post(app: &TestApp, path: &str, content_type: &str, body: String) -> (u16, Value) {
    let resp = app
        .client
        .post(format!("{}{path}", app.address))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn extractor_failures_use_the_envelope() {
    let app = spawn(true, 1024);
    let (status, body) = post(&app, "/echo", "application/json", r#"{"a": 1}"#.into()).await;
    assert_eq!((status, body), (200, json!({"a": 1})));

    let cases = [
        (
            "application/json",
            "x".repeat(2048),
            413,
            "payload_too_large",
        ),
        (
            "application/json",
            "{not json".to_owned(),
            400,
            "invalid_json",
        ),
        ("text/plain", "{}".to_owned(), 415, "unsupported_media_type"),
    ];
    for (content_type, body, status, code) in cases {
        let (got, envelope) = post(&app, "/echo", content_type, body).await;
        assert_eq!(got, status, "{envelope}");
        assert_eq!(envelope["error"]["code"], code, "{envelope}");
        assert!(
            envelope["error"]["request_id"]
                .as_str()
                .is_some_and(|id| id.len() == 36),
            "{envelope}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn guard_routes_check_the_internal_token_and_health_stays_open() {
    let app = spawn(true, 1024);
    let (status, envelope) = post(&app, "/guarded/echo", "application/json", "{}".into()).await;
    assert_eq!(
        (status, envelope["error"]["code"].as_str()),
        (401, Some("unauthorized"))
    );
    let resp = app
        .client
        .post(format!("{}/guarded/echo", app.address))
        .header("x-internal-token", TEST_INTERNAL_TOKEN)
        .json(&json!({"ok": true}))
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(app.get_json("/health/live").await.0, 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dependency_down_makes_the_replica_unready() {
    let app = spawn(false, 1024);
    let (status, body) = app.get_json("/health/ready").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (503, Some("not_ready")),
        "{body}"
    );
    let (status, body) = app.get_json("/health").await;
    assert_eq!(
        (status, body["status"].as_str()),
        (503, Some("unhealthy")),
        "{body}"
    );
    assert_eq!(body["dependencies"]["redis"]["status"], "error");
    assert_eq!(
        app.get_json("/health/live").await.0,
        200,
        "liveness must not follow dependencies"
    );
}

/// A background task's last step after the shutdown signal completes before the server's run
/// returns (the process would otherwise exit with it half done).
#[tokio::test(flavor = "multi_thread")]
async fn the_way_out_waits_for_finishing_tasks() {
    let kit = Kit::new(
        "kit-test",
        "0.0.0",
        Arc::new(Fixed(true)),
        SecretString::from(TEST_INTERNAL_TOKEN),
    );
    let finished = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (shutdown, flag) = (kit.shutdown.clone(), finished.clone());
    kit.spawn_finishing(async move {
        shutdown.cancelled().await;
        // A last flush that takes a while.
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        flag.store(true, std::sync::atomic::Ordering::SeqCst);
    });
    let server = ServiceServer::build(&server_config(), 0, kit, |_| {}).expect("build");
    let handle = server.handle();
    let running = tokio::spawn(server.run_until_stopped());
    handle.stop(true).await;
    running.await.expect("join").expect("run");
    assert!(
        finished.load(std::sync::atomic::Ordering::SeqCst),
        "returned before the task's last step"
    );
}
