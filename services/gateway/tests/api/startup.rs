//! Start-up failures: the binary exits with a code saying what kind of failure it was and a
//! message naming the variable at fault.

use std::process::{Command, Output};

use cg_service_kit::server::{EXIT_CONFIG, EXIT_UNAVAILABLE};
use cg_service_kit::testing::TEST_INTERNAL_TOKEN;
use cg_storage::testing::TestDb;

fn run_gateway(vars: &[(&str, &str)]) -> Output {
    let data = tempfile::tempdir().expect("temp dir");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gateway"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("CG_PORT", "0")
        .env("CG_DATA_DIR", data.path())
        .env("CG_INTERNAL_TOKEN", TEST_INTERNAL_TOKEN)
        .env("JWT_SECRET", crate::helpers::JWT_SECRET);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    cmd.output().expect("run the gateway binary")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn unreachable_database_names_database_url() {
    let out = run_gateway(&[
        ("DATABASE_URL", "postgres://postgres@127.0.0.1:1/nothing"),
        ("DB_CONNECT_TIMEOUT_SECS", "2"),
    ]);
    assert_eq!(
        out.status.code(),
        Some(i32::from(EXIT_UNAVAILABLE)),
        "{}",
        stderr(&out)
    );
    let err = stderr(&out);
    assert!(
        err.contains("DATABASE_URL") && err.contains("127.0.0.1:1/nothing"),
        "{err}"
    );
    assert!(!err.contains("postgres@"), "credentials leaked: {err}");
}

#[test]
fn malformed_redis_port_names_the_variable() {
    let out = run_gateway(&[("REDIS_HOST", "127.0.0.1"), ("REDIS_PORT", "abc")]);
    assert_eq!(
        out.status.code(),
        Some(i32::from(EXIT_CONFIG)),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("REDIS_PORT"), "{}", stderr(&out));
}

#[test]
fn missing_internal_token_is_refused() {
    let data = tempfile::tempdir().expect("temp dir");
    let out = Command::new(env!("CARGO_BIN_EXE_gateway"))
        .env_clear()
        .env("CG_PORT", "0")
        .env("CG_DATA_DIR", data.path())
        .output()
        .expect("run the gateway binary");
    assert_eq!(
        out.status.code(),
        Some(i32::from(EXIT_CONFIG)),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("CG_INTERNAL_TOKEN"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_behind_on_migrations_is_refused() {
    let Some(db) = TestDb::postgres_unmigrated().await else {
        return;
    };
    let url = db.url.clone();
    let out = tokio::task::spawn_blocking(move || run_gateway(&[("DATABASE_URL", &url)]))
        .await
        .expect("join");
    assert_eq!(
        out.status.code(),
        Some(i32::from(EXIT_CONFIG)),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("codeguardians migrate"),
        "{}",
        stderr(&out)
    );
}
