//! Helpers for the services' integration tests (feature `testing`): server settings for port 0,
//! a running app with a client, and the checks every service's health contract must pass.

#![expect(clippy::expect_used, reason = "test support fails loudly")]

use std::future::Future;
use std::time::Duration;

use secrecy::SecretString;
use serde_json::Value;

use crate::{Application, ServerConfig};

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
    /// The admin listener (`/metrics`, detailed `/health`), when the test knows it.
    pub admin_address: Option<String>,
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
            admin_address: None,
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .expect("test client"),
            task: tokio::spawn(serve),
        }
    }

    /// Run a built application, with both its listeners known.
    pub fn run(app: Application) -> Self {
        let admin_port = app.admin_port();
        Self::spawn(app.port(), app.run_until_stopped()).with_admin(admin_port)
    }

    /// Record the admin listener's port.
    #[must_use]
    pub fn with_admin(mut self, port: u16) -> Self {
        self.admin_address = Some(format!("http://127.0.0.1:{port}"));
        self
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.get_from(&self.address, path).await
    }

    async fn get_from(&self, base: &str, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("request")
    }

    fn admin(&self) -> &str {
        self.admin_address
            .as_deref()
            .expect("the admin port is not known: start the app with TestApp::run")
    }

    /// `GET path` on the admin listener → status and JSON body (`Null` when not JSON).
    pub async fn get_admin_json(&self, path: &str) -> (u16, Value) {
        json_of(self.get_from(self.admin(), path).await).await
    }

    /// `GET path` on the admin listener → status and text body.
    pub async fn get_admin_text(&self, path: &str) -> (u16, String) {
        text_of(self.get_from(self.admin(), path).await).await
    }

    /// `GET path` → status and JSON body (`Null` when the body is not JSON).
    pub async fn get_json(&self, path: &str) -> (u16, Value) {
        json_of(self.get(path).await).await
    }

    /// `GET path` → status and text body.
    pub async fn get_text(&self, path: &str) -> (u16, String) {
        text_of(self.get(path).await).await
    }

    /// The checks every service passes: the public `/health` reports `service` healthy in the
    /// shared spec's shape with one status word per dependency it uses (no backend addresses or
    /// errors), the admin listener's `/health` shows each on the expected backend with its
    /// latency, `/health/live` and `/health/ready` answer, `/metrics` is served on the admin
    /// listener only and carries request and storage figures, and an unknown route gets the JSON
    /// error envelope with the request id echoed.
    pub async fn assert_health_contract(&self, service: &str, dependencies: &[(&str, &str)]) {
        let (status, body) = self.get_json("/health").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "healthy", "{body}");
        assert_eq!(body["service"], service);
        let keys: Vec<&str> = body
            .as_object()
            .expect("object")
            .keys()
            .map(String::as_str)
            .filter(|k| *k != "circuit_breakers")
            .collect();
        assert_eq!(
            keys,
            ["dependencies", "service", "status", "timestamp", "version"],
            "{body}"
        );
        let deps = body["dependencies"].as_object().expect("dependencies");
        assert_eq!(deps.len(), dependencies.len(), "{body}");
        for (role, _) in dependencies {
            assert_eq!(deps[*role], serde_json::json!({"status": "ok"}), "{body}");
        }

        let (status, detail) = self.get_admin_json("/health").await;
        assert_eq!(status, 200, "{detail}");
        assert_eq!(detail["status"], "healthy", "{detail}");
        let deps = detail["dependencies"].as_object().expect("dependencies");
        assert_eq!(deps.len(), dependencies.len(), "{detail}");
        for (role, backend) in dependencies {
            assert_eq!(deps[*role]["status"], "ok", "{role}: {detail}");
            assert_eq!(deps[*role]["backend"], *backend, "{role}: {detail}");
            assert!(
                deps[*role]["latency_ms"].as_f64().is_some(),
                "{role}: {detail}"
            );
        }
        assert_eq!(self.get_json("/health/live").await.0, 200);
        let (status, ready) = self.get_json("/health/ready").await;
        assert_eq!(
            (status, ready["status"].as_str()),
            (200, Some("ready")),
            "{ready}"
        );
        for (role, _) in dependencies {
            assert_eq!(
                ready["dependencies"][*role],
                serde_json::json!({"status": "ok"}),
                "{ready}"
            );
        }

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

        let (status, body) = self.get_json("/metrics").await;
        assert_eq!(status, 404, "/metrics must not be public: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{body}");
        let (status, metrics) = self.get_admin_text("/metrics").await;
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

async fn json_of(resp: reqwest::Response) -> (u16, Value) {
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn text_of(resp: reqwest::Response) -> (u16, String) {
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}
