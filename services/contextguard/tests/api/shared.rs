//! Two ContextGuard processes (the real binary, twice) on one Redis see the same memory and
//! conversations.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cg_service_kit::testing::{TEST_INTERNAL_TOKEN, TestApp};
use cg_storage::testing::RedisServer;
use serde_json::json;

use crate::helpers::{get, post};

/// A `contextguard` process, killed when dropped.
struct Process {
    child: Child,
    app: TestApp,
    _dir: tempfile::TempDir,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

async fn start_process(redis_url: &str, prefix: &str) -> Process {
    let port = free_port();
    let dir = tempfile::tempdir().unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_contextguard"))
        .env_clear()
        .env("CG_HOST", "127.0.0.1")
        .env("CG_PORT", port.to_string())
        .env("CG_ADMIN_PORT", "0")
        .env("CG_INTERNAL_TOKEN", TEST_INTERNAL_TOKEN)
        .env("CG_WORKERS", "1")
        .env("CG_DATA_DIR", dir.path())
        .env("CG_STORAGE_MODE", "centralized")
        .env("REDIS_URL", redis_url)
        .env("CONTEXTGUARD_KEY_PREFIX", prefix)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the contextguard binary");
    // A stand-in task: the process serves, the TestApp only carries the client and address.
    let app = TestApp::spawn(port, std::future::pending());
    let process = Process {
        child,
        app,
        _dir: dir,
    };
    wait_until_serving(&process.app).await;
    process
}

#[tokio::test(flavor = "multi_thread")]
async fn two_processes_share_memory_and_conversations() {
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let a = start_process(&redis.url, "cgshared:").await;
    let b = start_process(&redis.url, "cgshared:").await;
    let (a, b) = (&a.app, &b.app);

    let (status, _) = post(a, "/memory", json!({"key": "k", "value": {"from": "a"}})).await;
    assert_eq!(status, 201);
    let (status, got) = get(b, "/memory/k").await;
    assert_eq!(status, 200, "{got}");
    assert_eq!(got["value"]["from"], "a");
    let (status, _) = post(b, "/memory", json!({"key": "k", "value": {"from": "b"}})).await;
    assert_eq!(status, 200);
    assert_eq!(get(a, "/memory/k").await.1["value"]["from"], "b");
    assert_eq!(get(b, "/memory").await.1["total"], 1);

    post(
        a,
        "/v1/drift",
        json!({"session_id": "s", "text": "The ferry to the island leaves at nine."}),
    )
    .await;
    let (_, second) = post(
        b,
        "/v1/drift",
        json!({"session_id": "s", "text": "The island ferry returns at six."}),
    )
    .await;
    assert_eq!(second["session_turns"], 2, "{second}");
    let (_, shown) = get(a, "/v1/conversations/s").await;
    assert_eq!(shown["session_turns"], 2, "{shown}");
}

/// Wait until `/health` says Redis serves (the process may still be starting).
pub async fn wait_until_serving(app: &TestApp) {
    for _ in 0..200 {
        if let Ok(resp) = app
            .client
            .get(format!("{}/health", app.address))
            .send()
            .await
            && let Ok(health) = resp.json::<serde_json::Value>().await
            && health["dependencies"]["redis"]["status"] == "ok"
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("Redis never served");
}
