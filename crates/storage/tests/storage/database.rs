use cg_storage::Error;
use cg_storage::db::{Conn, applied_migrations, ensure_partitions};
use cg_storage::models::{
    AuditLog, Member, NewMember, NewOrganization, NewUser, Organization, Role, SubscriptionTier,
    User, UserUpdate,
};
use cg_storage::schema;
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::testing::TestDb;
use diesel::prelude::*;
use diesel_async::RunQueryDsl;

macro_rules! select_every_column {
    ($conn:expr, $($table:ident),+ $(,)?) => {
        $(
            cg_storage::with_conn!($conn, |c| {
                schema::$table::table
                    .select(schema::$table::all_columns)
                    .limit(0)
                    .execute(c)
                    .await
            })
            .unwrap_or_else(|e| panic!("{}: {e}", stringify!($table)));
        )+
    };
}

#[tokio::test(flavor = "multi_thread")]
async fn migrations_create_every_column_of_the_schema() {
    for t in TestDb::all().await {
        let mut pooled = t.db.get().await.unwrap();
        let conn = &mut pooled.conn();
        select_every_column!(
            conn,
            users,
            organizations,
            organization_members,
            organization_invitations,
            subscription_tiers,
            subscriptions,
            api_keys,
            sessions,
            usage_records,
            files,
            biasguard_policies,
            biasguard_audit_logs,
            biasguard_policy_violations,
            poisonguard_analysis_results,
            poisonguard_health_metrics,
            trustguard_audit_logs,
            ab_experiments,
            ab_assignments,
            ab_results,
            ab_metric_totals,
        );
        // Applying again changes nothing.
        assert!(
            t.db.run_migrations().await.unwrap().is_empty(),
            "{}",
            t.backend
        );
        assert_eq!(
            applied_migrations(&t.db).await.unwrap().len(),
            5,
            "{}",
            t.backend
        );
        assert!(
            cg_storage::db::pending_migrations(&t.db)
                .await
                .unwrap()
                .is_empty()
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn tiers_are_seeded() {
    for t in TestDb::all().await {
        let mut pooled = t.db.get().await.unwrap();
        let tiers = SubscriptionTier::list_active(&mut pooled.conn())
            .await
            .unwrap();
        let names: Vec<_> = tiers.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["free", "pro", "enterprise"], "{}", t.backend);
        let free = SubscriptionTier::find_by_name(&mut pooled.conn(), "free")
            .await
            .unwrap();
        assert!(free.allows_guard("biasguard"), "{}", t.backend);
        assert!(!free.allows_guard("healthguard"), "{}", t.backend);
        assert_eq!(free.monthly_budget_usd_micros, 5_000_000);
    }
}

async fn user(conn: &mut Conn<'_>, email: &str) -> User {
    NewUser::new(email, "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA", "Ada")
        .insert(conn)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn users_round_trip_and_conflict() {
    for t in TestDb::all().await {
        let mut pooled = t.db.get().await.unwrap();
        let conn = &mut pooled.conn();
        let created = user(conn, "ada@example.com").await;
        assert_eq!(
            User::find(conn, created.id).await.unwrap(),
            created,
            "{}",
            t.backend
        );
        let by_email = User::find_by_email(conn, "ada@example.com").await.unwrap();
        assert_eq!(by_email.as_ref(), Some(&created), "{}", t.backend);
        assert!(
            User::find_by_email(conn, "nobody@example.com")
                .await
                .unwrap()
                .is_none()
        );

        let dup = NewUser::new("ada@example.com", "x", "Other")
            .insert(conn)
            .await;
        assert!(
            matches!(dup, Err(Error::Conflict(_))),
            "{}: {dup:?}",
            t.backend
        );
        // Upper-case emails are refused by the schema: normalisation happens at the edge.
        let upper = NewUser::new("Ada@Example.com", "x", "Other")
            .insert(conn)
            .await;
        assert!(
            matches!(upper, Err(Error::Conflict(_))),
            "{}: {upper:?}",
            t.backend
        );

        let login = Timestamp::now();
        let updated = User::update(
            conn,
            created.id,
            &UserUpdate {
                full_name: Some("Ada Lovelace"),
                last_login_at: Some(Some(login)),
                updated_at: Some(login),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert_eq!(updated.full_name, "Ada Lovelace");
        assert_eq!(updated.last_login_at, Some(login), "{}", t.backend);
        assert_eq!(updated.email, created.email);
        assert!(matches!(
            User::find(conn, Id::new()).await,
            Err(Error::NotFound)
        ));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn transactions_commit_together_or_not_at_all() {
    for t in TestDb::all().await {
        let mut pooled = t.db.get().await.unwrap();
        let conn = &mut pooled.conn();
        let owner = user(conn, "owner@example.com").await;

        let org = conn
            .transaction(async |tx: &mut Conn<'_>| {
                let org = NewOrganization::new("Acme", "acme", Some(owner.id))
                    .insert(tx)
                    .await?;
                NewMember::new(org.id, owner.id, Role::Owner, None)
                    .insert(tx)
                    .await?;
                Ok::<_, Error>(org)
            })
            .await
            .unwrap();
        let members = Member::list(conn, org.id).await.unwrap();
        assert_eq!(members.len(), 1, "{}", t.backend);
        assert_eq!(members[0].role().unwrap(), Role::Owner);

        // The second membership conflicts, so the new organisation must vanish with it.
        let failed_slug = "acme-2";
        let result = conn
            .transaction(async |tx: &mut Conn<'_>| {
                let org2 = NewOrganization::new("Acme 2", failed_slug, Some(owner.id))
                    .insert(tx)
                    .await?;
                NewMember::new(org2.id, owner.id, Role::Owner, None)
                    .insert(tx)
                    .await?;
                NewMember::new(org2.id, owner.id, Role::Admin, None)
                    .insert(tx)
                    .await?;
                Ok::<_, Error>(org2)
            })
            .await;
        assert!(
            matches!(result, Err(Error::Conflict(_))),
            "{}: {result:?}",
            t.backend
        );
        let left: i64 = cg_storage::with_conn!(conn, |c| {
            schema::organizations::table
                .filter(schema::organizations::slug.eq(failed_slug))
                .count()
                .get_result(c)
                .await
        })
        .unwrap();
        assert_eq!(
            left, 0,
            "{}: rolled-back organisation still there",
            t.backend
        );

        // Foreign keys hold on both backends.
        let orphan = NewMember::new(Id::new(), owner.id, Role::Member, None)
            .insert(conn)
            .await;
        assert!(
            matches!(orphan, Err(Error::Conflict(_))),
            "{}: {orphan:?}",
            t.backend
        );
        let fetched = Organization::find(conn, org.id).await.unwrap();
        assert_eq!(fetched.settings, serde_json::json!({}));
    }
}

fn audit_row(org: Option<Id>, at: Timestamp) -> AuditLog {
    AuditLog {
        id: Id::new(),
        created_at: at,
        organization_id: org,
        request_id: Some("req-1".into()),
        operation: "detect_bias".into(),
        decision: "deny".into(),
        bias_score: 7.5,
        bias_level: "high".into(),
        bias_types: serde_json::json!(["stereotyping"]),
        policy_ids: serde_json::json!([]),
        violations: serde_json::json!([{"policy": "max-score", "score": 7.5}]),
        warnings: serde_json::json!([]),
        fairness_metrics: serde_json::json!({"groups": {"gender": 1}}),
        request_context: serde_json::json!({"client_type": "api"}),
        analyzed_text: None,
        processing_time_ms: 1.25,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn append_only_rows_are_idempotent_and_json_survives() {
    for t in TestDb::all().await {
        let mut pooled = t.db.get().await.unwrap();
        let conn = &mut pooled.conn();
        let owner = user(conn, "audit@example.com").await;
        let org = NewOrganization::new("Audit", "audit", Some(owner.id))
            .insert(conn)
            .await
            .unwrap();

        let first = audit_row(Some(org.id), Timestamp::now());
        assert!(first.insert_or_ignore(conn).await.unwrap(), "{}", t.backend);
        // Replaying the same record (an outbox retry) stores nothing new.
        assert!(
            !first.insert_or_ignore(conn).await.unwrap(),
            "{}",
            t.backend
        );
        let second = audit_row(Some(org.id), Timestamp::now());
        second.insert_or_ignore(conn).await.unwrap();

        let rows = AuditLog::list_for_org(conn, org.id, 10).await.unwrap();
        assert_eq!(rows.len(), 2, "{}", t.backend);
        assert_eq!(
            rows[0], second,
            "{}: newest first, every field intact",
            t.backend
        );
        assert_eq!(rows[1], first, "{}", t.backend);
    }
}

#[derive(QueryableByName)]
struct Partition {
    #[diesel(sql_type = diesel::sql_types::Text)]
    partition: String,
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_partitions_by_month_and_keeps_far_dates() {
    let Some(t) = TestDb::postgres().await else {
        return;
    };
    let mut pooled = t.db.get().await.unwrap();
    let conn = &mut pooled.conn();
    let now = Timestamp::now();
    let row = audit_row(None, now);
    row.insert_or_ignore(conn).await.unwrap();
    // Far in the future: no monthly partition yet, the default one keeps it.
    let far: Timestamp = chrono::DateTime::parse_from_rfc3339("2031-05-01T00:00:00Z")
        .unwrap()
        .to_utc()
        .into();
    let late = audit_row(None, far);
    late.insert_or_ignore(conn).await.unwrap();

    let Conn::Postgres(pg) = conn else {
        panic!("not postgres")
    };
    let where_is = async |pg: &mut diesel_async::AsyncPgConnection, id: Id| -> String {
        diesel::sql_query(
            "SELECT tableoid::regclass::text AS partition FROM biasguard_audit_logs WHERE id = $1",
        )
        .bind::<cg_storage::sql_types::DbUuid, _>(id)
        .get_result::<Partition>(pg)
        .await
        .unwrap()
        .partition
    };
    assert_eq!(
        where_is(pg, row.id).await,
        format!("biasguard_audit_logs_p{}", now.format("%Y%m"))
    );
    assert_eq!(where_is(pg, late.id).await, "biasguard_audit_logs_default");
    drop(pooled);
    // Creating partitions again is a no-op.
    assert_eq!(ensure_partitions(&t.db).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn pool_reports_its_figures() {
    for t in TestDb::all().await {
        let held = t.db.get().await.unwrap();
        let stats = t.db.pool_stats();
        assert!(stats.size >= 1, "{}: {stats:?}", t.backend);
        assert_eq!(stats.max_size, 4);
        assert!(
            stats.size - stats.idle >= 1,
            "{}: checked-out connection not counted",
            t.backend
        );
        drop(held);
        assert!(t.db.ping().await.unwrap() < std::time::Duration::from_secs(2));
    }
}

/// A request cancelled in the middle of an SQLite query (client gone, timeout) must leave the
/// pool usable, on a current-thread runtime like an actix worker's.
#[tokio::test(flavor = "current_thread")]
async fn a_cancelled_sqlite_query_leaves_the_pool_usable() {
    let t = TestDb::sqlite().await;
    let slow = async {
        let mut pooled = t.db.get().await.unwrap();
        let conn = &mut pooled.conn();
        cg_storage::with_conn!(conn, |c| {
            diesel::sql_query(
                "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 3000000) \
                 SELECT count(*) FROM c",
            )
            .execute(c)
            .await
        })
    };
    let cancelled = tokio::time::timeout(std::time::Duration::from_millis(5), slow).await;
    assert!(
        cancelled.is_err(),
        "the query finished before it could be cancelled"
    );
    for _ in 0..8 {
        t.db.ping().await.unwrap();
    }
}
