//! `db::copy`: an embedded deployment moved onto PostgreSQL, interrupted halfway and resumed,
//! verified by counts and checksums, and a target that differs from its source caught.

use std::ops::ControlFlow;

use cg_storage::db::copy::{CopyOptions, CopyReport, Progress, TableStatus, copy_database};
use cg_storage::models::{
    HealthSample, NewOrganization, NewUser, Organization, PoisonResult, Policy, User, Violation,
};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::testing::TestDb;
use cg_storage::{Db, with_conn};
use diesel_async::RunQueryDsl;
use serde_json::json;

const SAMPLES: usize = 730;

/// A small deployment: a user owning an organisation with a policy and violations of it (foreign
/// keys across four tables), HealthGuard results and samples with awkward floats and JSON.
async fn seed(db: &Db) -> (User, Organization, Vec<PoisonResult>) {
    let mut pooled = db.get().await.unwrap();
    let conn = &mut pooled.conn();
    let user = NewUser::new("copy@example.com", "$argon2id$v=19$hash", "Ada")
        .insert(conn)
        .await
        .unwrap();
    let org = NewOrganization::new("Copy", "copy", Some(user.id))
        .insert(conn)
        .await
        .unwrap();
    let now = Timestamp::now();
    let policy = Policy {
        id: Id::new(),
        organization_id: org.id,
        name: "strict".into(),
        description: "it's \"quoted\"".into(),
        enforcement_type: "compliance".into(),
        rules: json!({"max_bias_score": 5.0, "nested": {"b": [1, 2.5, null]}}),
        priority: 3,
        is_active: true,
        created_by: Some(user.id),
        created_at: now,
        updated_at: now,
    };
    policy.insert(conn).await.unwrap();
    for i in 0..5 {
        Violation {
            id: Id::new(),
            created_at: Timestamp::now(),
            organization_id: Some(org.id),
            policy_id: Some(policy.id),
            audit_log_id: None,
            request_id: Some(format!("req-{i}")),
            violation_type: "max_bias_score".into(),
            severity: "high".into(),
            impact_score: 0.1 + 0.2 * f64::from(i),
            details: json!({"i": i}),
            requires_remediation: i % 2 == 0,
            resolved: false,
            resolved_at: None,
            resolved_by: None,
            resolution_notes: None,
        }
        .insert_or_ignore(conn)
        .await
        .unwrap();
    }
    let batch = Id::new();
    let results: Vec<PoisonResult> = (0..SAMPLES)
        .map(|i| PoisonResult {
            id: Id::new(),
            created_at: Timestamp::now(),
            organization_id: Some(org.id),
            request_id: None,
            batch_id: batch,
            sample_id: format!("s{i}"),
            is_poisoned: i % 3 == 0,
            confidence: 1.0 / (i as f64 + 3.0),
            label: (i % 2 == 0).then(|| "trigger".to_owned()),
            reasons: json!([format!("reason {i}")]),
            spans: json!([{"start": i, "end": i + 4}]),
            detector_scores: json!({"lexical": 0.123_456_789_012_345_67, "i": i}),
            content_sha256: format!("{i:064x}"),
            mitigation: None,
        })
        .collect();
    PoisonResult::insert_all(conn, &results).await.unwrap();
    let samples: Vec<HealthSample> = (0..40)
        .map(|i| HealthSample {
            id: Id::new(),
            created_at: Timestamp::now(),
            instance: "hg-0".into(),
            status: "healthy".into(),
            memory_bytes: 1 << 30,
            cpu_percent: 12.5 + f64::from(i) / 7.0,
            in_flight: 0,
            requests_total: i64::from(i),
            details: json!({}),
        })
        .collect();
    HealthSample::insert_all(conn, &samples).await.unwrap();
    (user, org, results)
}

fn options(batch_size: usize) -> CopyOptions {
    CopyOptions {
        batch_size,
        dry_run: false,
    }
}

async fn dry_run(source: &Db, target: &Db) -> CopyReport {
    let options = CopyOptions {
        batch_size: 100,
        dry_run: true,
    };
    copy_database(source, target, options, &mut |_| ControlFlow::Continue(()))
        .await
        .unwrap()
}

async fn copy_all(source: &Db, target: &Db) -> CopyReport {
    copy_database(source, target, options(100), &mut |_| {
        ControlFlow::Continue(())
    })
    .await
    .unwrap()
}

fn status(report: &CopyReport, table: &str) -> TableStatus {
    report
        .tables
        .iter()
        .find(|t| t.table == table)
        .unwrap()
        .status
}

fn copied(report: &CopyReport) -> u64 {
    report.tables.iter().map(|t| t.copied).sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_copy_interrupted_halfway_resumes_where_it_stopped_and_verifies() {
    let Some(target) = TestDb::postgres().await else {
        return;
    };
    let source = TestDb::sqlite().await;
    let (user, org, results) = seed(&source.db).await;
    let rows: u64 = dry_run(&source.db, &target.db)
        .await
        .tables
        .iter()
        .map(|t| t.source_rows)
        .sum();

    // Stop in the middle of the big table, as a Ctrl-C or a lost connection would.
    let mut seen = 0;
    let first = copy_database(&source.db, &target.db, options(100), &mut |p: Progress<
        '_,
    >| {
        seen += 1;
        if p.table == "poisonguard_analysis_results" && p.done >= 300 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .await
    .unwrap();
    assert_eq!(seen, 3, "three batches of 100 rows, then the stop");
    assert_eq!(status(&first, "users"), TableStatus::NotStarted);
    assert!(first.interrupted() && !first.verified(), "{first:#?}");
    assert_eq!(
        status(&first, "poisonguard_analysis_results"),
        TableStatus::Interrupted
    );
    let mut pooled = target.db.get().await.unwrap();
    let conn = &mut pooled.conn();
    assert_eq!(PoisonResult::count(conn).await.unwrap(), 300);

    let second = copy_all(&source.db, &target.db).await;
    assert!(second.verified(), "{second:#?}");
    let resumed = second
        .tables
        .iter()
        .find(|t| t.table == "poisonguard_analysis_results")
        .unwrap();
    assert_eq!(resumed.resumed_after, Some(300));
    assert_eq!(resumed.copied, SAMPLES as u64 - 300);
    assert_eq!(status(&second, "users"), TableStatus::Copied);
    // Every row was sent exactly once over the two runs.
    assert_eq!(copied(&first) + copied(&second), rows);

    // What came out is what went in, typed values included.
    assert_eq!(User::find(conn, user.id).await.unwrap(), user);
    assert_eq!(Organization::find(conn, org.id).await.unwrap(), org);
    let mut stored = PoisonResult::of_batch(conn, results[0].batch_id)
        .await
        .unwrap();
    stored.sort_by_key(|r| r.id);
    assert_eq!(stored, results);

    // Again: nothing to do.
    let third = copy_all(&source.db, &target.db).await;
    assert!(third.verified());
    assert_eq!(copied(&third), 0, "{third:#?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_target_that_differs_from_its_source_fails_verification() {
    let Some(target) = TestDb::postgres().await else {
        return;
    };
    let source = TestDb::sqlite().await;
    seed(&source.db).await;
    let first = copy_all(&source.db, &target.db).await;
    assert!(first.verified(), "{first:#?}");

    // A changed value is put back by the next run (the source wins)…
    let mut pooled = target.db.get().await.unwrap();
    let conn = &mut pooled.conn();
    with_conn!(conn, |c| diesel::sql_query(
        "UPDATE poisonguard_health_metrics SET cpu_percent = cpu_percent + 1e-9"
    )
    .execute(c)
    .await)
    .unwrap();
    let repaired = copy_all(&source.db, &target.db).await;
    assert!(repaired.verified(), "{repaired:#?}");
    assert_eq!(
        status(&repaired, "poisonguard_health_metrics"),
        TableStatus::Copied
    );

    // …but a row the source does not have is reported, not silently kept.
    NewUser::new("stray@example.com", "$argon2id$v=19$hash", "Stray")
        .insert(conn)
        .await
        .unwrap();
    let report = copy_all(&source.db, &target.db).await;
    assert!(!report.verified());
    assert_eq!(status(&report, "users"), TableStatus::Mismatch);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dry_run_writes_nothing() {
    let Some(target) = TestDb::postgres_unmigrated().await else {
        return;
    };
    let source = TestDb::sqlite().await;
    seed(&source.db).await;
    let report = dry_run(&source.db, &target.db).await;
    assert!(
        !report.migrations.is_empty(),
        "pending migrations are listed"
    );
    assert!(
        report
            .tables
            .iter()
            .all(|t| t.status == TableStatus::WouldCopy)
    );
    assert_eq!(
        report
            .tables
            .iter()
            .find(|t| t.table == "poisonguard_analysis_results")
            .unwrap()
            .copied,
        SAMPLES as u64
    );
    assert!(
        cg_storage::db::applied_migrations(&target.db)
            .await
            .is_err(),
        "not even the migrations ran"
    );
}

mod healthguard {
    use std::ops::ControlFlow;

    use cg_storage::config::{DatabaseTarget, PoolSettings};
    use cg_storage::db::copy::{Scope, TableStatus, copy_tables, healthguard};
    use cg_storage::models::{HealthSample, PoisonResult};
    use cg_storage::sql_types::{Id, Timestamp};
    use cg_storage::testing::TestDb;
    use cg_storage::{Db, with_conn};
    use diesel_async::SimpleAsyncConnection;
    use serde_json::json;

    use super::{CopyReport, copied, options, seed};

    /// A legacy HealthGuard database as docs/operations.md describes it.
    const LEGACY: &str = r#"
        CREATE TABLE analysis_audit (id INTEGER PRIMARY KEY, timestamp TEXT, request_id TEXT,
            batch_id TEXT, sample_id TEXT, is_poisoned INTEGER, confidence REAL,
            detection_type TEXT, reasons TEXT, detector_scores TEXT, content_hash TEXT);
        CREATE TABLE mitigation_audit (id INTEGER PRIMARY KEY, timestamp TEXT, request_id TEXT,
            sample_id TEXT, action TEXT);
        CREATE TABLE system_metrics (id INTEGER PRIMARY KEY, timestamp, cpu_percent REAL,
            memory_mb REAL, status TEXT, active_requests INTEGER, total_requests INTEGER);
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 250)
        INSERT INTO analysis_audit SELECT i, '2024-05-01 12:00:' || printf('%02d', i % 60) || '.123456',
            'req-' || (i % 10), NULL, 's' || i, i % 2, 1.0 / (i + 2), 'backdoor',
            '["trigger phrase"]', '{"lexical": 0.5}', printf('%064x', i) FROM n;
        INSERT INTO mitigation_audit VALUES (1, '2024-05-01 12:01:00', 'req-2', 's2', 'quarantine'),
            (2, '2024-05-01 12:02:00', 'req-2', 's2', 'remove');
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30)
        INSERT INTO system_metrics SELECT i, 1714564800.25 + i * 60, 10.0 / i, 512.5, 'healthy',
            i % 3, i * 100 FROM n;
    "#;

    async fn legacy_file(dir: &std::path::Path) -> Db {
        let db = Db::connect(&DatabaseTarget::Sqlite {
            path: dir.join("healthguard.db"),
            source: "test",
            pool: PoolSettings {
                max_size: 2,
                min_idle: None,
                connect_timeout: std::time::Duration::from_secs(5),
                acquire_timeout: std::time::Duration::from_secs(5),
            },
        })
        .await
        .unwrap();
        let mut pooled = db.get().await.unwrap();
        with_conn!(&mut pooled.conn(), |c| c.batch_execute(LEGACY).await).unwrap();
        db
    }

    /// A result HealthGuard wrote to the target before the migration.
    async fn existing_result(target: &Db) -> PoisonResult {
        let row = PoisonResult {
            id: Id::new(),
            created_at: Timestamp::now(),
            organization_id: None,
            request_id: Some("already-there".into()),
            batch_id: Id::new(),
            sample_id: "x".into(),
            is_poisoned: false,
            confidence: 0.5,
            label: None,
            reasons: json!([]),
            spans: json!([]),
            detector_scores: json!({}),
            content_sha256: String::new(),
            mitigation: None,
        };
        let mut pooled = target.get().await.unwrap();
        PoisonResult::insert_all(&mut pooled.conn(), std::slice::from_ref(&row))
            .await
            .unwrap();
        row
    }

    async fn migrate(source: &Db, target: &Db) -> CopyReport {
        let plan = healthguard::plan(source).await.unwrap();
        copy_tables(
            source,
            target,
            Some(plan),
            Scope::SourceRows,
            options(100),
            &mut |_| ControlFlow::Continue(()),
        )
        .await
        .unwrap()
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn a_legacy_healthguard_database_is_mapped_beside_existing_results() {
        let Some(target) = TestDb::postgres().await else {
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let source = legacy_file(dir.path()).await;
        existing_result(&target.db).await;

        let report = migrate(&source, &target.db).await;
        assert!(report.verified(), "{report:#?}");
        assert_eq!(copied(&report), 280);
        let mut pooled = target.db.get().await.unwrap();
        let conn = &mut pooled.conn();
        assert_eq!(PoisonResult::count(conn).await.unwrap(), 251);

        let id: Id = "00000001-0000-8000-8000-000000000002".parse().unwrap();
        let stored = PoisonResult::list(conn, None, 1000, 0)
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.id == id)
            .unwrap();
        assert_eq!(
            stored.created_at.to_rfc3339(),
            "2024-05-01T12:00:02.123456+00:00"
        );
        assert_eq!(
            stored.mitigation.as_deref(),
            Some("remove"),
            "newest action"
        );
        assert_eq!(stored.label.as_deref(), Some("backdoor"));
        assert!(!stored.is_poisoned);
        assert_eq!(stored.confidence, 0.25);
        assert_eq!(stored.reasons, json!(["trigger phrase"]));
        assert_eq!(stored.detector_scores, json!({"lexical": 0.5}));

        let samples = HealthSample::recent(conn, 100).await.unwrap();
        assert_eq!(samples.len(), 30);
        let first = samples.iter().find(|s| s.requests_total == 100).unwrap();
        assert_eq!(first.memory_bytes, 537_395_200);
        assert_eq!(first.cpu_percent, 10.0);
        assert_eq!(
            first.created_at.to_rfc3339(),
            "2024-05-01T12:01:00.250+00:00"
        );

        // Run again: found, verified, nothing written.
        let again = migrate(&source, &target.db).await;
        assert!(again.verified(), "{again:#?}");
        assert_eq!(copied(&again), 0);
        assert!(
            again
                .tables
                .iter()
                .all(|t| t.status == TableStatus::AlreadyCopied)
        );
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn this_projects_embedded_file_gives_its_healthguard_tables_only() {
        let Some(target) = TestDb::postgres().await else {
            return;
        };
        let source = TestDb::sqlite().await;
        let (_, _, results) = seed(&source.db).await;
        existing_result(&target.db).await;

        let report = migrate(&source.db, &target.db).await;
        assert!(report.verified(), "{report:#?}");
        let tables: Vec<&str> = report.tables.iter().map(|t| t.table.as_str()).collect();
        assert_eq!(tables, healthguard::TABLES);
        let mut pooled = target.db.get().await.unwrap();
        let conn = &mut pooled.conn();
        assert_eq!(
            PoisonResult::count(conn).await.unwrap(),
            results.len() as i64 + 1
        );
    }
}
