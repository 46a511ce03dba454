//! `codeguardians storage copy` end to end: a dry run writes nothing, a copy verifies, a second
//! copy finds nothing to do, a missing source file is refused.

use std::process::Output;

use cg_storage::models::{NewOrganization, NewUser, User};
use cg_storage::testing::TestDb;
use tokio::process::Command;

async fn storage(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_codeguardians"))
        .arg("storage")
        .args(args)
        .env_remove("DATABASE_URL")
        .output()
        .await
        .expect("run codeguardians storage")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_moves_an_embedded_deployment_onto_postgres() {
    let Some(target) = TestDb::postgres_unmigrated().await else {
        return;
    };
    let source = TestDb::sqlite().await;
    let user = {
        let mut pooled = source.db.get().await.expect("connection");
        let conn = &mut pooled.conn();
        let user = NewUser::new("cli-copy@example.com", "$argon2id$v=19$hash", "Ada")
            .insert(conn)
            .await
            .expect("user");
        NewOrganization::new("Cli", "cli", Some(user.id))
            .insert(conn)
            .await
            .expect("organisation");
        user
    };
    let from = source.url.as_str();
    let to = target.url.as_str();

    let dry = storage(&["copy", "--from", from, "--to", to, "--dry-run"]).await;
    assert!(dry.status.success(), "{}", text(&dry));
    assert!(text(&dry).contains("nothing written"), "{}", text(&dry));
    assert!(
        cg_storage::db::applied_migrations(&target.db)
            .await
            .is_err(),
        "a dry run does not even migrate"
    );

    let copy = storage(&["copy", "--from", from, "--to", to, "--batch-size", "1"]).await;
    assert!(copy.status.success(), "{}", text(&copy));
    assert!(text(&copy).contains("verified"), "{}", text(&copy));
    let mut pooled = target.db.get().await.expect("connection");
    assert_eq!(
        User::find(&mut pooled.conn(), user.id)
            .await
            .expect("copied"),
        user
    );

    let again = storage(&["copy", "--from", from, "--to", to, "--json"]).await;
    assert!(again.status.success(), "{}", text(&again));
    let report: serde_json::Value = serde_json::from_slice(&again.stdout).expect("JSON report");
    let tables = report["tables"].as_array().expect("tables");
    assert!(tables.len() > 10, "every table is listed: {report}");
    assert!(
        tables
            .iter()
            .all(|t| t["status"] == "already_copied" && t["copied"] == 0),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn copy_refuses_a_missing_source_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = format!("sqlite://{}", dir.path().join("none.db").display());
    let out = storage(&[
        "copy",
        "--from",
        &missing,
        "--to",
        "postgres://127.0.0.1:1/x",
    ])
    .await;
    assert!(!out.status.success());
    assert!(text(&out).contains("no SQLite file"), "{}", text(&out));
    assert!(!dir.path().join("none.db").exists());
}

/// `storage validate-storage --json` with exactly these storage variables.
async fn validate(vars: &[(&str, &str)]) -> (Output, serde_json::Value) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_codeguardians"));
    cmd.args(["storage", "validate-storage", "--json"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default());
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().await.expect("run validate-storage");
    let report =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(&out)));
    (out, report)
}

fn check<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["checks"]
        .as_array()
        .expect("checks")
        .iter()
        .find(|c| c["name"].as_str().is_some_and(|n| n.starts_with(name)))
        .unwrap_or_else(|| panic!("no check {name}: {report}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_storage_passes_on_a_migrated_embedded_deployment() {
    let db = TestDb::sqlite().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().display().to_string();
    let (out, report) = validate(&[("DATABASE_URL", &db.url), ("CG_DATA_DIR", &data)]).await;
    assert!(out.status.success(), "{report}");
    assert_eq!(report["passed"], report["total"], "{report}");
    assert_eq!(report["total"], 7, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_storage_names_a_role_left_on_local_storage_in_centralized_mode() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    // redis_cache() fails the test when CG_TEST_REQUIRE_BACKENDS=1 and Redis is not configured.
    let (Ok(redis), Some(_)) = (
        std::env::var("CG_TEST_REDIS_URL"),
        cg_storage::testing::redis_cache().await,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().display().to_string();
    let (out, report) = validate(&[
        ("DATABASE_URL", &db.url),
        ("REDIS_URL", &redis),
        ("CG_DATA_DIR", &data),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{report}");
    for passing in [
        "database: migrations",
        "database: user",
        "cache: set",
        "cache: publish",
        "contextguard",
    ] {
        assert_eq!(check(&report, passing)["passed"], true, "{report}");
    }
    let centralized = check(&report, "centralized");
    assert_eq!(centralized["passed"], false);
    assert!(
        centralized["detail"]
            .as_str()
            .is_some_and(|d| d.contains("uploads (S3_ENABLED)")),
        "{report}"
    );
    // The probe user was rolled back.
    let mut pooled = db.db.get().await.expect("connection");
    assert!(
        User::list(&mut pooled.conn(), 10, 0)
            .await
            .expect("users")
            .is_empty()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_storage_passes_on_postgres_redis_and_s3() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (Ok(redis), Some(bucket)) = (
        std::env::var("CG_TEST_REDIS_URL"),
        cg_storage::testing::create_test_bucket().await,
    ) else {
        return;
    };
    let s3 = cg_storage::testing::s3_test_target(&bucket);
    let endpoint = s3.endpoint.clone().unwrap_or_default();
    let key = s3.access_key_id.clone().unwrap_or_default();
    let secret = std::env::var("CG_TEST_S3_SECRET_KEY").unwrap_or_else(|_| "test".into());
    let (out, report) = validate(&[
        ("DATABASE_URL", &db.url),
        ("REDIS_URL", &redis),
        ("S3_ENABLED", "true"),
        ("S3_BUCKET_NAME", &bucket),
        ("S3_ENDPOINT_URL", &endpoint),
        ("S3_ACCESS_KEY_ID", &key),
        ("S3_SECRET_ACCESS_KEY", &secret),
    ])
    .await;
    assert!(out.status.success(), "{report}");
    assert_eq!(report["passed"], 7, "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_storage_fails_when_a_backend_is_unreachable() {
    let db = TestDb::sqlite().await;
    let (out, report) = validate(&[
        ("DATABASE_URL", &db.url),
        ("REDIS_URL", "redis://127.0.0.1:1/0"),
    ])
    .await;
    assert_eq!(out.status.code(), Some(1), "{report}");
    assert!(
        report["passed"].as_u64() < report["total"].as_u64(),
        "{report}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn live_database_sessions_move_to_redis_and_keep_working() {
    use cg_gateway::auth::secrets::{REFRESH_TOKEN_PREFIX, random_token, sha256_hex};
    use cg_gateway::auth::sessions::{ClientInfo, SessionStore};
    use cg_storage::config::SessionStorageType;
    use cg_storage::models::Session;
    use cg_storage::sql_types::{Id, Timestamp};

    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let (Ok(redis), Some(cache)) = (
        std::env::var("CG_TEST_REDIS_URL"),
        cg_storage::testing::redis_cache().await,
    ) else {
        return;
    };
    let mut pooled = db.db.get().await.expect("connection");
    let conn = &mut pooled.conn();
    let user = NewUser::new("sessions@example.com", "$argon2id$v=19$hash", "Ada")
        .insert(conn)
        .await
        .expect("user");
    let now = *Timestamp::now();
    let session = |token: &str, expires_in: chrono::Duration, replaced: bool| Session {
        id: Id::new(),
        user_id: user.id,
        family_id: Id::new(),
        family_started_at: Timestamp::from(now),
        refresh_token_hash: sha256_hex(token),
        user_agent: None,
        ip_address: None,
        expires_at: Timestamp::from(now + expires_in),
        revoked_at: None,
        replaced_by: replaced.then(Id::new),
        created_at: Timestamp::from(now),
        last_used_at: None,
    };
    let token = random_token(REFRESH_TOKEN_PREFIX);
    let live = session(&token, chrono::Duration::hours(2), false);
    let expired = session("expired", chrono::Duration::hours(-1), false);
    let rotated = session("rotated", chrono::Duration::hours(2), true);
    for s in [&live, &expired, &rotated] {
        s.insert(conn).await.expect("session");
    }

    let out = Command::new(env!("CARGO_BIN_EXE_codeguardians"))
        .args(["storage", "migrate-sessions-to-redis"])
        .env_clear()
        .env("DATABASE_URL", &db.url)
        .env("REDIS_URL", &redis)
        .env("CACHE_KEY_PREFIX", cache.prefix())
        .output()
        .await
        .expect("run migrate-sessions-to-redis");
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("moved 1 live session(s)") && text(&out).contains("skipped 1 expired"),
        "{}",
        text(&out)
    );

    // In Redis with the lifetime it had left, out of the table; the others untouched.
    let ttl = cache
        .ttl(&format!("session:{}", live.refresh_token_hash))
        .await
        .expect("ttl")
        .expect("moved session has a TTL");
    assert!(
        ttl <= std::time::Duration::from_secs(2 * 3600)
            && ttl > std::time::Duration::from_secs(3600)
    );
    assert!(Session::find(conn, live.id).await.expect("find").is_none());
    assert!(
        Session::find(conn, expired.id)
            .await
            .expect("find")
            .is_some()
    );
    assert!(
        Session::find(conn, rotated.id)
            .await
            .expect("find")
            .is_some()
    );

    // The gateway refreshes it from Redis.
    let store = SessionStore::new(
        SessionStorageType::Redis,
        cache.clone(),
        db.db.clone(),
        std::time::Duration::from_secs(3600),
        std::time::Duration::from_secs(30 * 86_400),
        std::sync::Arc::new(cg_gateway::auth::revocations::Revocations::new(
            cache,
            std::time::Duration::from_secs(900),
        )),
    );
    let issued = store
        .rotate(&token, &ClientInfo::default())
        .await
        .expect("the moved session refreshes");
    assert_eq!(issued.user_id, user.id);
}

#[tokio::test(flavor = "multi_thread")]
async fn healthguard_results_of_an_embedded_file_move_to_postgres() {
    let Some(target) = TestDb::postgres().await else {
        return;
    };
    let source = TestDb::sqlite().await;
    let out = Command::new(env!("CARGO_BIN_EXE_codeguardians"))
        .args([
            "storage",
            "migrate-healthguard-to-postgres",
            "--from",
            &source.url,
            "--json",
        ])
        .env_clear()
        .env("HEALTHGUARD_DATABASE_URL", &target.url)
        .output()
        .await
        .expect("run migrate-healthguard-to-postgres");
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON report");
    let tables: Vec<&str> = report["tables"]
        .as_array()
        .expect("tables")
        .iter()
        .filter_map(|t| t["table"].as_str())
        .collect();
    assert_eq!(
        tables,
        ["poisonguard_analysis_results", "poisonguard_health_metrics"]
    );
    assert!(report["target"].as_str().is_some_and(|t| !t.is_empty()));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_yaml_configuration_file_becomes_one_new_version() {
    use cg_gateway::traffic::config::DynamicConfig;

    let (Ok(redis), Some(cache)) = (
        std::env::var("CG_TEST_REDIS_URL"),
        cg_storage::testing::redis_cache().await,
    ) else {
        return;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let run = |file: std::path::PathBuf| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_codeguardians"));
        cmd.args(["storage", "migrate-config-to-redis", "--file"])
            .arg(file)
            .env_clear()
            .env("REDIS_URL", &redis)
            .env("CACHE_KEY_PREFIX", cache.prefix());
        cmd
    };
    let good = dir.path().join("config.yaml");
    std::fs::write(
        &good,
        "feature_flags:\n  beta: true\nrate_limits:\n  burst_share: 0.5\n",
    )
    .expect("write file");
    let out = run(good).output().await.expect("run");
    assert!(out.status.success(), "{}", text(&out));

    let config = DynamicConfig::new(cache.clone());
    assert_eq!(config.reload().await.expect("reload"), 1, "one version");
    let doc = config.get();
    assert_eq!(doc.feature_flags, serde_json::json!({"beta": true}));
    assert_eq!(doc.rate_limits, serde_json::json!({"burst_share": 0.5}));
    let history = config.history(10).await.expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0]["section"], "import");

    // A file with one bad section changes nothing.
    let bad = dir.path().join("bad.json");
    std::fs::write(
        &bad,
        r#"{"feature_flags": {"beta": false}, "cache": {"org_profile_ttl_secs": 99999}}"#,
    )
    .expect("write file");
    let out = run(bad).output().await.expect("run");
    assert!(!out.status.success());
    assert!(
        text(&out).contains("org_profile_ttl_secs"),
        "{}",
        text(&out)
    );
    assert_eq!(config.reload().await.expect("reload"), 1);
    assert_eq!(
        config.get().feature_flags,
        serde_json::json!({"beta": true})
    );
}
