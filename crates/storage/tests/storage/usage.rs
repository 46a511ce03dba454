use cg_storage::models::{NewOrganization, UsageRecord};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::testing::TestDb;
use chrono::{TimeZone, Utc};

fn row(org: Id, requests: i64, max: i64) -> UsageRecord {
    let hour = Utc.with_ymd_and_hms(2026, 11, 28, 9, 0, 0).unwrap();
    UsageRecord {
        id: Id::new(),
        organization_id: org,
        granularity: "hour".into(),
        period_start: hour.into(),
        endpoint: "/api/v1/guards/process".into(),
        guard: "biasguard".into(),
        requests,
        errors: 1,
        tokens_input: requests * 10,
        tokens_output: 0,
        cost_usd_micros: requests * 3,
        latency_ms_total: requests * 5,
        latency_ms_max: max,
        created_at: Timestamp::now(),
        updated_at: Timestamp::now(),
    }
}

#[tokio::test]
async fn running_totals_only_grow_whatever_order_replicas_write_them() {
    for t in TestDb::all().await {
        let b = t.backend;
        let mut pooled = t.db.get().await.unwrap();
        let conn = &mut pooled.conn();
        let org = NewOrganization::new("Use", "use", None)
            .insert(conn)
            .await
            .unwrap()
            .id;
        // Two replicas flush the same hour: the newer total first, a stale one after.
        row(org, 40, 90).upsert_max(conn).await.unwrap();
        row(org, 25, 120).upsert_max(conn).await.unwrap();
        let from = Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0).unwrap();
        let to = Utc.with_ymd_and_hms(2026, 11, 29, 0, 0, 0).unwrap();
        let rows = UsageRecord::list(conn, org, "hour", from.into(), to.into())
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{b}: one row per period, endpoint and guard");
        assert_eq!(
            (
                rows[0].requests,
                rows[0].tokens_input,
                rows[0].latency_ms_max
            ),
            (40, 400, 120),
            "{b}"
        );
        row(org, 41, 10).upsert_max(conn).await.unwrap();
        let rows = UsageRecord::list(conn, org, "hour", from.into(), to.into())
            .await
            .unwrap();
        assert_eq!(rows[0].requests, 41, "{b}");
        assert!(
            UsageRecord::list(conn, org, "day", from.into(), to.into())
                .await
                .unwrap()
                .is_empty()
        );
    }
}
