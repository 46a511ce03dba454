//! `codeguardians probe`: the container HEALTHCHECK (no curl in the image).

use std::process::Output;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::Command;

/// A one-route HTTP server answering every request with `status`; returns its port.
async fn answering(status: &'static str) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let answer =
                format!("HTTP/1.1 {status}\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            let _ = socket.write_all(answer.as_bytes()).await;
        }
    });
    port
}

async fn probe(args: &[&str], cg_port: Option<u16>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_codeguardians"));
    cmd.arg("probe").args(args).env_remove("CG_PORT");
    if let Some(port) = cg_port {
        cmd.env("CG_PORT", port.to_string());
    }
    cmd.output().await.expect("run codeguardians probe")
}

#[tokio::test(flavor = "multi_thread")]
async fn probe_exits_zero_only_on_a_2xx_answer() {
    let ready = answering("200 OK").await;
    let unready = answering("503 Service Unavailable").await;
    let url = |port: u16| format!("http://127.0.0.1:{port}/health/ready");

    assert!(probe(&[&url(ready)], None).await.status.success());
    let out = probe(&[&url(unready)], None).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HTTP 503"));

    // Nothing listening: a failure, not a hang.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    assert_eq!(probe(&[&url(closed)], None).await.status.code(), Some(1));

    // Without a URL it asks this container's own service on CG_PORT (the image's HEALTHCHECK).
    assert!(probe(&[], Some(ready)).await.status.success());
    assert_eq!(probe(&[], Some(unready)).await.status.code(), Some(1));
    let out = probe(&[], None).await;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("CG_PORT"));
}
