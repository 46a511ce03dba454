//! Helpers for the services' integration tests (feature `testing`): server settings for port 0,
//! a running app with a client, and the checks every service's health contract must pass.

#![expect(clippy::expect_used, reason = "test support fails loudly")]

use std::future::Future;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use crate::ServerConfig;

/// The internal token test apps are started with.
pub const TEST_INTERNAL_TOKEN: &str = "test-internal-token-0123456789";

/// Listen on 127.0.0.1, a free port, with [`TEST_INTERNAL_TOKEN`].
pub fn server_config() -> ServerConfig {
    ServerConfig {
        cg_host: Some("127.0.0.1".into()),
        cg_port: Some(0),
        cg_internal_token: Some(SecretString::from(TEST_INTERNAL_TOKEN)),
        cg_workers: Some(2),
        cg_shutdown_timeout_secs: Some(1),
        ..ServerConfig::default()
    }
}

/// A service running in the test's runtime.
#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TestApp {
    /// Run `serve` (an application's `run_until_stopped`) listening on `port`.
    pub fn spawn<F>(port: u16, serve: F) -> Self
    where
        F: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Self {
            address: format!("http://127.0.0.1:{port}"),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("test client"),
            task: tokio::spawn(serve),
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.address))
            .send()
            .await
            .expect("request")
    }

    /// `GET path` → status and JSON body (`Null` when the body is not JSON).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        let resp = self.get(path).await;
        (
            resp.status().as_u16(),
            resp.json().await.unwrap_or(Value::Null),
        )
    }

    /// `GET path` → status and text body.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        let resp = self.get(path).await;
        (
            resp.status().as_u16(),
            resp.text().await.unwrap_or_default(),
        )
    }

    /// The checks every service passes: `/health` reports `service` healthy with exactly the
    /// dependencies it uses (each answering, on the expected backend), `/health/live` and
    /// `/health/ready` answer, `/metrics` carries request and storage figures, and an unknown
    /// route gets the JSON error envelope with the request id echoed.
    pub async fn assert_health_contract(&self, service: &str, dependencies: &[(&str, &str)]) {
        let (status, body) = self.get_json("/health").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "healthy", "{body}");
        assert_eq!(body["service"], service);
        let deps = body["dependencies"].as_object().expect("dependencies");
        assert_eq!(deps.len(), dependencies.len(), "{body}");
        for (role, backend) in dependencies {
            assert_eq!(deps[*role]["status"], "ok", "{role}: {body}");
            assert_eq!(deps[*role]["backend"], *backend, "{role}: {body}");
            assert!(
                deps[*role]["latency_ms"].as_f64().is_some(),
                "{role}: {body}"
            );
        }
        assert_eq!(self.get_json("/health/live").await.0, 200);
        let (status, ready) = self.get_json("/health/ready").await;
        assert_eq!(
            (status, ready["status"].as_str()),
            (200, Some("ready")),
            "{ready}"
        );

        let resp = self
            .client
            .get(format!("{}/no/such/route", self.address))
            .header("x-request-id", "test-req-42")
            .send()
            .await
            .expect("request");
        assert_eq!(resp.status().as_u16(), 404);
        assert_eq!(resp.headers()["x-request-id"], "test-req-42");
        let envelope: Value = resp.json().await.expect("envelope");
        assert_eq!(envelope["error"]["code"], "not_found");
        assert_eq!(envelope["error"]["request_id"], "test-req-42");

        let (status, metrics) = self.get_text("/metrics").await;
        assert_eq!(status, 200);
        let health_line = format!(
            "http_requests_total{{service=\"{service}\",method=\"GET\",route=\"/health\",status=\"200\"}}"
        );
        assert!(metrics.contains(&health_line), "{metrics}");
        assert!(
            metrics.contains("http_request_duration_seconds_bucket"),
            "{metrics}"
        );
        for (_, backend) in dependencies {
            assert!(
                metrics.contains(&format!("cg_backend_up{{backend=\"{backend}\"}} 1")),
                "{backend}: {metrics}"
            );
        }
    }
}
