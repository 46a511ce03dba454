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

/// Six consecutive free ports for the public listeners and six for the admin ones.
fn free_ports() -> (u16, u16) {
    for _ in 0..200 {
        let base: u16 = rand::random_range(20_000..60_000);
        let admin = base + 100;
        let all_free = (0..6).all(|i| {
            TcpListener::bind(("127.0.0.1", base + i)).is_ok()
                && TcpListener::bind(("127.0.0.1", admin + i)).is_ok()
        });
        if all_free {
            return (base, admin);
        }
    }
    panic!("no six consecutive free ports");
}

/// POST JSON, optionally with a bearer token or API key → status and body.
async fn post(
    client: &reqwest::Client,
    url: String,
    auth: Option<(&str, &str)>,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let mut req = client.post(url).json(&body);
    if let Some((header, value)) = auth {
        req = req.header(header, value);
    }
    let resp = req.send().await.expect("request");
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or_default(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn up_runs_all_six_services_on_embedded_storage_and_stops_them() {
    let data = tempfile::tempdir().expect("temp dir");
    let (base, admin) = free_ports();
    let mut up = Command::new(env!("CARGO_BIN_EXE_codeguardians"))
        .args([
            "up",
            "--no-build",
            "--base-port",
            &base.to_string(),
            "--admin-base-port",
            &admin.to_string(),
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
        .env_remove("DEFAULT_TIER")
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

    // Each service's line names its public and admin URLs; the quickstart is pointed to.
    for (i, name) in SERVICES.iter().enumerate() {
        let offset = u16::try_from(i).unwrap();
        let line = seen
            .iter()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")) && l.contains(" admin "))
            .unwrap_or_else(|| panic!("no line for {name}:\n{}", seen.join("\n")));
        assert!(
            line.contains(&format!(":{}", base + offset))
                && line.contains(&format!("admin http://127.0.0.1:{}", admin + offset)),
            "{line}"
        );
    }
    assert!(
        seen.iter()
            .any(|l| l.contains("README.md") && l.contains("\"enterprise\" tier")),
        "{}",
        seen.join("\n")
    );

    let client = reqwest::Client::new();
    for (i, name) in SERVICES.iter().enumerate() {
        let offset = u16::try_from(i).unwrap();
        let url = format!("http://127.0.0.1:{}", base + offset);
        let admin_url = format!("http://127.0.0.1:{}", admin + offset);
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
        let detail: serde_json::Value = client
            .get(format!("{admin_url}/health"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        for dep in detail["dependencies"].as_object().unwrap().values() {
            assert_eq!(dep["mode"], "embedded", "{name}: {detail}");
        }
        let public_metrics = client.get(format!("{url}/metrics")).send().await.unwrap();
        assert_eq!(public_metrics.status().as_u16(), 404, "{name}");
        let metrics = client
            .get(format!("{admin_url}/metrics"))
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

    // A new user's organisation may call every guard (no 403 guard_not_in_plan).
    let gw = format!("http://127.0.0.1:{base}");
    let account = serde_json::json!({
        "email": "first@example.com",
        "password": "a-long-first-passphrase",
        "full_name": "First User",
    });
    let (status, body) = post(
        &client,
        format!("{gw}/api/v1/auth/register"),
        None,
        account.clone(),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, login) = post(&client, format!("{gw}/api/v1/auth/login"), None, account).await;
    assert_eq!(status, 200, "{login}");
    let bearer = format!("Bearer {}", login["access_token"].as_str().unwrap());
    for guard in ["contextguard", "healthguard"] {
        let payload =
            serde_json::json!({"text": "Hello there, how are you?", "session_id": "up-test"});
        let (status, body) = post(
            &client,
            format!("{gw}/api/v1/guards/process"),
            Some(("authorization", &bearer)),
            serde_json::json!({"service_type": guard, "payload": payload}),
        )
        .await;
        assert_eq!(status, 200, "{guard}: {body}");
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
