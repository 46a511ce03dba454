use std::process::Output;

use cg_storage::testing::TestDb;
use tokio::process::Command;

async fn migrate(database_url: &str, check: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_codeguardians"));
    cmd.arg("migrate")
        .env("DATABASE_URL", database_url)
        .env_remove("HEALTHGUARD_DATABASE_URL")
        .env_remove("CG_STORAGE_MODE");
    if check {
        cmd.arg("--check");
    }
    cmd.output().await.expect("run codeguardians migrate")
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn applies_once_then_reports_up_to_date(url: &str) {
    let check = migrate(url, true).await;
    assert_eq!(check.status.code(), Some(1), "{}", stdout(&check));
    assert!(stdout(&check).contains("pending"), "{}", stdout(&check));

    let first = migrate(url, false).await;
    assert!(
        first.status.success(),
        "{}{}",
        stdout(&first),
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(stdout(&first).contains("applied"), "{}", stdout(&first));

    let again = migrate(url, false).await;
    assert!(stdout(&again).contains("up to date"), "{}", stdout(&again));
    assert!(migrate(url, true).await.status.success());
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_applies_pending_migrations_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("fresh.db").display());
    applies_once_then_reports_up_to_date(&url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_applies_pending_migrations_on_postgres() {
    let Some(db) = TestDb::postgres_unmigrated().await else {
        return;
    };
    applies_once_then_reports_up_to_date(&db.url).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn migrate_refuses_an_unreachable_database() {
    let out = migrate("postgres://127.0.0.1:1/none", false).await;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("DATABASE_URL"), "{err}");
}
