use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const SERVICES: [&str; 6] = [
    "gateway",
    "tokenguard",
    "trustguard",
    "contextguard",
    "biasguard",
    "healthguard",
];

fn bin_dir() -> PathBuf {
    let cli = PathBuf::from(env!("CARGO_BIN_EXE_codeguardians"));
    let dir = cli.parent().expect("bin dir").to_path_buf();
    for name in SERVICES {
        assert!(
            dir.join(name).is_file(),
            "{name} is not built in {}: run `cargo test --workspace` (or `cargo build --workspace`)",
            dir.display()
        );
    }
    dir
}

/// Six consecutive free ports.
fn free_ports() -> u16 {
    for _ in 0..200 {
        let base: u16 = rand::random_range(20_000..60_000);
        let all_free = (0..6).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok());
        if all_free {
            return base;
        }
    }
    panic!("no six consecutive free ports");
}

#[tokio::test(flavor = "multi_thread")]
async fn up_runs_all_six_services_on_embedded_storage_and_stops_them() {
    let data = tempfile::tempdir().expect("temp dir");
    let base = free_ports();
    let mut up = Command::new(env!("CARGO_BIN_EXE_codeguardians"))
        .args([
            "up",
            "--no-build",
            "--base-port",
            &base.to_string(),
            "--data-dir",
        ])
        .arg(data.path())
        .arg("--bin-dir")
        .arg(bin_dir())
        .env_remove("DATABASE_URL")
        .env_remove("REDIS_HOST")
        .env_remove("REDIS_URL")
        .env_remove("S3_ENABLED")
        .env_remove("JWT_SECRET")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("start codeguardians up");
    let mut lines = BufReader::new(up.stdout.take().expect("stdout")).lines();
    let mut seen = Vec::new();
    let ready = tokio::time::timeout(Duration::from_secs(120), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let done = line.contains("all services ready");
            seen.push(line);
            if done {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(ready, Ok(true)),
        "up never got ready:\n{}",
        seen.join("\n")
    );
    // Keep draining the log so children never block on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

    let client = reqwest::Client::new();
    for (i, name) in SERVICES.iter().enumerate() {
        let url = format!("http://127.0.0.1:{}", base + u16::try_from(i).unwrap());
        let health: serde_json::Value = client
            .get(format!("{url}/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(health["service"], *name, "{health}");
        assert_eq!(health["status"], "healthy", "{health}");
        for dep in health["dependencies"].as_object().unwrap().values() {
            assert_eq!(dep["mode"], "embedded", "{name}: {health}");
        }
        let metrics = client
            .get(format!("{url}/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            metrics.contains("http_requests_total{"),
            "{name}: {metrics}"
        );
    }
    assert!(
        data.path().join("codeguardians.db").is_file(),
        "no SQLite file in the data folder"
    );

    let pid = Pid::from_raw(i32::try_from(up.id().unwrap()).unwrap());
    kill(pid, Signal::SIGINT).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(40), up.wait())
        .await
        .expect("up did not stop")
        .unwrap();
    assert!(status.success(), "up exited with {status}");
    for i in 0..6 {
        assert!(
            TcpListener::bind(("127.0.0.1", base + i)).is_ok(),
            "port {} still taken after up stopped",
            base + i
        );
    }
}
