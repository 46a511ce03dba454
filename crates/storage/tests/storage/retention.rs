use cg_storage::db::apply_retention;
use cg_storage::models::{AuditLog, NewOrganization};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::testing::TestDb;
use chrono::{Datelike, Duration, TimeZone, Utc};
use serde_json::json;

fn audit(org: Id, at: chrono::DateTime<Utc>) -> AuditLog {
    AuditLog {
        id: Id::new(),
        created_at: at.into(),
        organization_id: Some(org),
        request_id: None,
        operation: "detect_bias".into(),
        decision: "allow".into(),
        bias_score: 1.0,
        bias_level: "none".into(),
        bias_types: json!([]),
        policy_ids: json!([]),
        violations: json!([]),
        warnings: json!([]),
        fairness_metrics: json!({}),
        request_context: json!({}),
        analyzed_text: None,
        processing_time_ms: 0.1,
    }
}

#[tokio::test]
async fn retention_drops_old_partitions_and_rows_and_keeps_the_rest() {
    for t in TestDb::all().await {
        let now = Utc::now();
        let month_start = Utc
            .with_ymd_and_hms(now.year(), now.month(), 1, 0, 0, 0)
            .unwrap();
        // Last month has its own partition on PostgreSQL; a year ago is in the default one.
        let old = [month_start - Duration::days(3), now - Duration::days(400)];
        let org = {
            let mut pooled = t.db.get().await.unwrap();
            let conn = &mut pooled.conn();
            let org = NewOrganization::new("Keep", "keep", None)
                .insert(conn)
                .await
                .unwrap()
                .id;
            for at in old.iter().chain([&now]) {
                assert!(audit(org, *at).insert_or_ignore(conn).await.unwrap());
            }
            org
        };
        let removed = apply_retention(&t.db, "biasguard_audit_logs", month_start.into())
            .await
            .unwrap();
        let mut pooled = t.db.get().await.unwrap();
        let left = AuditLog::list_for_org(&mut pooled.conn(), org, 10)
            .await
            .unwrap();
        assert_eq!(left.len(), 1, "{}: {left:?}", t.backend);
        assert!(*left[0].created_at >= month_start, "{}", t.backend);
        if t.backend == "postgres" {
            // Last month's partition went whole; the year-old row was deleted from the default.
            assert!(removed.partitions >= 1, "{removed:?}");
            assert_eq!(removed.rows, 1, "{removed:?}");
        } else {
            assert_eq!(removed.rows, 2, "{removed:?}");
        }
        // Idempotent: nothing more to remove.
        let again = apply_retention(&t.db, "biasguard_audit_logs", month_start.into())
            .await
            .unwrap();
        assert_eq!((again.partitions, again.rows), (0, 0), "{}", t.backend);
        // A table that is not append-only is refused.
        assert!(
            apply_retention(&t.db, "users", Timestamp::now())
                .await
                .is_err()
        );
    }
}
