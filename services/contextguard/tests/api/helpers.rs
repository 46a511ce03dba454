use cg_contextguard::config::{Config, Settings};
use cg_contextguard::startup;
use cg_service_kit::testing::{TEST_INTERNAL_TOKEN, TestApp, server_config};
use cg_storage::StorageConfig;
use serde_json::Value;

pub const ORG: &str = "019ac000-0000-7000-8000-00000000c0de";
pub const OTHER_ORG: &str = "019ac000-0000-7000-8000-0000000000ff";

/// A running replica with a data folder (its write-back journal) of its own.
pub struct Replica {
    pub app: TestApp,
    _dir: tempfile::TempDir,
}

impl std::ops::Deref for Replica {
    type Target = TestApp;

    fn deref(&self) -> &TestApp {
        &self.app
    }
}

pub async fn spawn(storage: &StorageConfig, settings: Settings) -> Replica {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut storage = storage.clone().for_contextguard();
    storage.cg_data_dir = Some(dir.path().to_path_buf());
    let app = startup::build(Config {
        server: server_config(),
        storage,
        contextguard: settings,
    })
    .await
    .expect("build");
    Replica {
        app: TestApp::run(app),
        _dir: dir,
    }
}

/// A storage configuration on a Redis of the test's own, with a fresh key prefix.
pub fn redis_storage(url: &str, prefix: &str) -> StorageConfig {
    StorageConfig::from_pairs([
        ("CG_STORAGE_MODE".to_owned(), "centralized".to_owned()),
        ("REDIS_URL".to_owned(), url.to_owned()),
        ("CONTEXTGUARD_KEY_PREFIX".to_owned(), prefix.to_owned()),
        ("REDIS_CONNECT_TIMEOUT_MS".to_owned(), "300".to_owned()),
        ("REDIS_RESPONSE_TIMEOUT_MS".to_owned(), "300".to_owned()),
    ])
    .unwrap()
}

pub async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    org: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app
        .client
        .request(method, format!("{}{path}", app.address))
        .header("x-internal-token", TEST_INTERNAL_TOKEN);
    if let Some(org) = org {
        req = req.header("x-organization-id", org);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let resp = req.send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    call(app, reqwest::Method::POST, path, Some(ORG), Some(body)).await
}

pub async fn get(app: &TestApp, path: &str) -> (u16, Value) {
    call(app, reqwest::Method::GET, path, Some(ORG), None).await
}

pub async fn delete(app: &TestApp, path: &str) -> (u16, Value) {
    call(app, reqwest::Method::DELETE, path, Some(ORG), None).await
}
