//! Services as real processes: the `gateway` binary of this package and the guards' binaries
//! beside it (built by `cargo test --workspace`), each on a free port, killed when dropped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use cg_service_kit::testing::{TEST_INTERNAL_TOKEN, TestApp};

use crate::helpers::{Gateway, JWT_SECRET};

/// A service process and a client for it; killed when dropped.
pub struct Service {
    child: Option<Child>,
    pub gw: Gateway,
    pub port: u16,
    /// The admin listener (`/metrics`, detailed `/health`).
    pub admin_port: u16,
    binary: PathBuf,
    env: Vec<(String, String)>,
    dir: tempfile::TempDir,
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap()
}

/// Run SQL on a test database.
pub fn psql(url: &str, sql: &str) {
    let status = Command::new("psql")
        .arg(url)
        .args(["-q", "-c", sql])
        .status()
        .expect("psql");
    assert!(status.success(), "{sql}");
}

/// A service binary of the workspace, beside this package's `gateway`.
pub fn binary(name: &str) -> PathBuf {
    let gateway = PathBuf::from(env!("CARGO_BIN_EXE_gateway"));
    let path = gateway.parent().expect("bin dir").join(name);
    assert!(
        path.is_file(),
        "{} is not built: run the workspace's tests (`cargo test --workspace`), which build every service",
        path.display()
    );
    path
}

impl Service {
    /// Start `binary` on a free port with the settings every service takes plus `env` (which
    /// wins), and wait until it is ready.
    pub async fn start(binary: PathBuf, env: &[(&str, String)]) -> Self {
        let (port, admin_port) = (free_port(), free_port());
        let mut service = Self {
            child: None,
            gw: Gateway {
                app: TestApp::spawn(port, std::future::pending()).with_admin(admin_port),
            },
            port,
            admin_port,
            binary,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect(),
            dir: tempfile::tempdir().unwrap(),
        };
        service.run().await;
        service
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Start the process (again, on the same port and data folder) and wait until it is ready.
    pub async fn run(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(&self.binary)
            .env_clear()
            .env("CG_HOST", "127.0.0.1")
            .env("CG_PORT", self.port.to_string())
            .env("CG_ADMIN_PORT", self.admin_port.to_string())
            .env("CG_INTERNAL_TOKEN", TEST_INTERNAL_TOKEN)
            .env("CG_WORKERS", "2")
            .env("CG_DATA_DIR", self.dir.path())
            .env("RUST_LOG", "warn")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", self.binary.display()));
        self.child = Some(child);
        let app = &self.gw.app;
        for _ in 0..600 {
            if let Ok(resp) = app
                .client
                .get(format!("{}/health/ready", app.address))
                .send()
                .await
                && resp.status().is_success()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("{} did not become ready", self.binary.display());
    }

    /// Kill the process (SIGKILL: no goodbye to anyone).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A `gateway` process on `database_url` and `redis_url`.
pub async fn replica(database_url: &str, redis_url: &str) -> Service {
    replica_with(database_url, redis_url, &[]).await
}

/// A `gateway` process with `extra` settings on top of the test defaults.
pub async fn replica_with(
    database_url: &str,
    redis_url: &str,
    extra: &[(&str, String)],
) -> Service {
    let mut env = vec![
        ("DATABASE_URL", database_url.to_owned()),
        ("REDIS_URL", redis_url.to_owned()),
        ("REDIS_RESPONSE_TIMEOUT_MS", "300".to_owned()),
        ("REDIS_CONNECT_TIMEOUT_MS", "300".to_owned()),
        ("JWT_SECRET", JWT_SECRET.to_owned()),
        ("LOGIN_ATTEMPTS_PER_IP", "1000".to_owned()),
        ("GATEWAY_RATE_BURST_SHARE", "1".to_owned()),
        ("ORG_PROFILE_CACHE_SECS", "0".to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    Service::start(PathBuf::from(env!("CARGO_BIN_EXE_gateway")), &env).await
}
