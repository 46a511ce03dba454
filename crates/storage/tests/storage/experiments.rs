use cg_storage::models::{
    Assignment, Experiment, ExperimentChanges, ExperimentResult, MetricTotal, NewOrganization,
    Recorded,
};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::testing::TestDb;
use serde_json::json;

fn experiment(org: Id, name: &str) -> Experiment {
    let now = Timestamp::now();
    Experiment {
        id: Id::new(),
        organization_id: org,
        name: name.into(),
        description: String::new(),
        status: "draft".into(),
        variants: json!([{"name": "control", "traffic_split": 0.5}, {"name": "strict", "traffic_split": 0.5}]),
        primary_metric: json!({"name": "blocked", "type": "conversion"}),
        secondary_metrics: json!([]),
        audience: json!({}),
        confidence_level: 0.95,
        created_by: None,
        created_at: now,
        updated_at: now,
        started_at: None,
        ended_at: None,
    }
}

fn result(e: &Experiment, id: Id, variant: &str) -> ExperimentResult {
    ExperimentResult {
        id,
        experiment_id: e.id,
        organization_id: e.organization_id,
        variant_name: variant.into(),
        user_id: Some("u1".into()),
        session_id: None,
        metrics: json!({"blocked": 1, "latency": 3.0}),
        recorded_at: Timestamp::now(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn experiments_change_state_only_from_the_expected_one_and_keep_running_totals() {
    for t in TestDb::all().await {
        let b = t.backend;
        let mut pooled = t.db.get().await.unwrap();
        let conn = &mut pooled.conn();
        let org = NewOrganization::new("Ab", "ab", None)
            .insert(conn)
            .await
            .unwrap()
            .id;
        let other = NewOrganization::new("Other", "other", None)
            .insert(conn)
            .await
            .unwrap()
            .id;
        let e = experiment(org, "thresholds");
        e.insert(conn).await.unwrap();
        assert!(matches!(
            experiment(org, "thresholds").insert(conn).await,
            Err(cg_storage::Error::Conflict(_))
        ));
        assert!(
            Experiment::find(conn, other, e.id).await.unwrap().is_none(),
            "{b}"
        );

        let start = ExperimentChanges {
            status: Some("running".into()),
            started_at: Some(Some(Timestamp::now())),
            ..Default::default()
        };
        let started = Experiment::update_if_status(conn, org, e.id, "draft", &start)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(started.status, "running");
        // A second start from draft finds it no longer a draft.
        assert!(
            Experiment::update_if_status(conn, org, e.id, "draft", &start)
                .await
                .unwrap()
                .is_none()
        );
        assert_eq!(Experiment::running(conn, org).await.unwrap().len(), 1);
        assert!(Experiment::running(conn, other).await.unwrap().is_empty());
        let (page, total) = Experiment::list(conn, org, Some("running"), 10, 0)
            .await
            .unwrap();
        assert_eq!((page.len(), total), (1, 1), "{b}");

        // First assignment wins.
        let first = Assignment {
            experiment_id: e.id,
            user_id: "u1".into(),
            organization_id: org,
            variant_name: "strict".into(),
            assigned_at: Timestamp::now(),
        };
        assert_eq!(
            first.insert_or_get(conn).await.unwrap().variant_name,
            "strict"
        );
        let again = Assignment {
            variant_name: "control".into(),
            ..first.clone()
        };
        assert_eq!(
            again.insert_or_get(conn).await.unwrap().variant_name,
            "strict"
        );
        assert_eq!(
            Assignment::for_user(conn, org, "u1").await.unwrap().len(),
            1
        );
        assert!(
            Assignment::for_user(conn, other, "u1")
                .await
                .unwrap()
                .is_empty()
        );

        // A retried result is counted once; totals add up; an id that holds another result is
        // refused; ids belong to their experiment.
        const OPEN: &[&str] = &["running", "paused"];
        let values = [("blocked".to_owned(), 1.0), ("latency".to_owned(), 3.0)];
        let id = Id::new();
        let record = async |r: ExperimentResult,
                            values: &[(String, f64)],
                            conn: &mut cg_storage::Conn<'_>| {
            r.record(conn, values, OPEN).await.unwrap()
        };
        assert_eq!(
            record(result(&e, id, "strict"), &values, conn).await,
            Recorded::New
        );
        assert_eq!(
            record(result(&e, id, "strict"), &values, conn).await,
            Recorded::Duplicate
        );
        assert_eq!(
            record(result(&e, id, "control"), &values, conn).await,
            Recorded::IdTaken,
            "{b}"
        );
        let second = experiment(org, "second");
        second.insert(conn).await.unwrap();
        assert_eq!(
            record(result(&second, id, "strict"), &values, conn).await,
            Recorded::NotAccepting,
            "{b}: a draft takes no results"
        );
        Experiment::update_if_status(conn, org, second.id, "draft", &start)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            record(result(&second, id, "strict"), &values, conn).await,
            Recorded::New,
            "{b}: another experiment's id"
        );
        let values2 = [("blocked".to_owned(), 0.0), ("latency".to_owned(), 5.0)];
        assert_eq!(
            record(result(&e, Id::new(), "strict"), &values2, conn).await,
            Recorded::New
        );
        let totals = MetricTotal::list(conn, e.id).await.unwrap();
        let latency = totals.iter().find(|t| t.metric == "latency").unwrap();
        assert_eq!(
            (latency.n, latency.total, latency.total_sq),
            (2, 8.0, 34.0),
            "{b}"
        );
        let blocked = totals.iter().find(|t| t.metric == "blocked").unwrap();
        assert_eq!((blocked.n, blocked.total), (2, 1.0), "{b}");
        assert_eq!(
            ExperimentResult::counts(conn, e.id).await.unwrap(),
            vec![("strict".to_owned(), 2)]
        );
        assert_eq!(
            Assignment::counts(conn, e.id).await.unwrap(),
            vec![("strict".to_owned(), 1)]
        );

        // A running experiment is not deleted; a completed one is, with everything it holds.
        assert!(
            !Experiment::delete_if_status(conn, org, e.id, "completed")
                .await
                .unwrap()
        );
        let complete = ExperimentChanges {
            status: Some("completed".into()),
            ended_at: Some(Some(Timestamp::now())),
            ..Default::default()
        };
        Experiment::update_if_status(conn, org, e.id, "running", &complete)
            .await
            .unwrap()
            .unwrap();
        assert!(
            Experiment::delete_if_status(conn, org, e.id, "completed")
                .await
                .unwrap()
        );
        assert!(
            MetricTotal::list(conn, e.id).await.unwrap().is_empty(),
            "{b}"
        );
        assert!(
            Assignment::for_user(conn, org, "u1")
                .await
                .unwrap()
                .is_empty(),
            "{b}"
        );
    }
}
