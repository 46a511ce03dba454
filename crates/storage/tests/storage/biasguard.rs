use cg_storage::Error;
use cg_storage::models::{
    NewOrganization, NewUser, Policy, PolicyChanges, Resolution, Violation, ViolationFilter,
};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::testing::TestDb;
use serde_json::json;

fn policy(org: Id, name: &str, priority: i32) -> Policy {
    let now = Timestamp::now();
    Policy {
        id: Id::new(),
        organization_id: org,
        name: name.into(),
        description: String::new(),
        enforcement_type: "compliance".into(),
        rules: json!({"max_bias_score": 5.0}),
        priority,
        is_active: true,
        created_by: None,
        created_at: now,
        updated_at: now,
    }
}

fn violation(org: Id, policy: Option<Id>, severity: &str) -> Violation {
    Violation {
        id: Id::new(),
        created_at: Timestamp::now(),
        organization_id: Some(org),
        policy_id: policy,
        audit_log_id: Some(Id::new()),
        request_id: Some("req".into()),
        violation_type: "max_bias_score".into(),
        severity: severity.into(),
        impact_score: 7.5,
        details: json!({"bias_score": 7.5, "limit": 5.0}),
        requires_remediation: true,
        resolved: false,
        resolved_at: None,
        resolved_by: None,
        resolution_notes: None,
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn policies_and_violations_stay_within_their_organisation() {
    for t in TestDb::all().await {
        let b = t.backend;
        let mut pooled = t.db.get().await.unwrap();
        let conn = &mut pooled.conn();
        let owner = NewUser::new(
            "bias@example.com",
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            "Ada",
        )
        .insert(conn)
        .await
        .unwrap();
        let org = NewOrganization::new("Bias", "bias", Some(owner.id))
            .insert(conn)
            .await
            .unwrap();
        let other = NewOrganization::new("Other", "other", Some(owner.id))
            .insert(conn)
            .await
            .unwrap();

        let strict = policy(org.id, "strict", 10);
        strict.insert(conn).await.unwrap();
        policy(org.id, "lenient", 50).insert(conn).await.unwrap();
        policy(other.id, "theirs", 1).insert(conn).await.unwrap();
        assert!(
            matches!(
                policy(org.id, "strict", 1).insert(conn).await,
                Err(Error::Conflict(_))
            ),
            "{b}: names are unique per organisation"
        );
        let listed = Policy::list(conn, org.id, false).await.unwrap();
        assert_eq!(
            listed.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
            ["strict", "lenient"],
            "{b}"
        );
        assert!(
            Policy::find(conn, other.id, strict.id)
                .await
                .unwrap()
                .is_none(),
            "{b}"
        );

        let changes = PolicyChanges {
            name: None,
            description: Some("no more than 5".into()),
            enforcement_type: None,
            rules: None,
            priority: None,
            is_active: Some(false),
            updated_at: Timestamp::now(),
        };
        let updated = Policy::update(conn, org.id, strict.id, &changes)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            (updated.description.as_str(), updated.is_active),
            ("no more than 5", false),
            "{b}"
        );
        assert!(
            Policy::update(conn, other.id, strict.id, &changes)
                .await
                .unwrap()
                .is_none(),
            "{b}"
        );
        assert_eq!(
            Policy::list(conn, org.id, true).await.unwrap().len(),
            1,
            "{b}"
        );

        let high = violation(org.id, Some(strict.id), "high");
        assert!(high.insert_or_ignore(conn).await.unwrap(), "{b}");
        assert!(
            !high.insert_or_ignore(conn).await.unwrap(),
            "{b}: a replay stores nothing new"
        );
        violation(org.id, None, "low")
            .insert_or_ignore(conn)
            .await
            .unwrap();
        violation(other.id, None, "high")
            .insert_or_ignore(conn)
            .await
            .unwrap();

        let (all, total) = Violation::list(conn, org.id, &ViolationFilter::default(), 10, 0)
            .await
            .unwrap();
        assert_eq!((all.len(), total), (2, 2), "{b}");
        let only_high = ViolationFilter {
            severity: Some("high".into()),
            ..ViolationFilter::default()
        };
        let (rows, total) = Violation::list(conn, org.id, &only_high, 10, 0)
            .await
            .unwrap();
        assert_eq!((rows.len(), total), (1, 1), "{b}");
        assert_eq!(rows[0], high, "{b}: every field intact");
        let (page, total) = Violation::list(conn, org.id, &ViolationFilter::default(), 1, 1)
            .await
            .unwrap();
        assert_eq!((page.len(), total), (1, 2), "{b}");

        assert_eq!(
            Violation::resolve(conn, other.id, high.id, owner.id, "no")
                .await
                .unwrap(),
            Resolution::NotFound,
            "{b}"
        );
        let Resolution::Resolved(resolved) =
            Violation::resolve(conn, org.id, high.id, owner.id, "rewritten and re-checked")
                .await
                .unwrap()
        else {
            panic!("{b}: not resolved");
        };
        // Once only: a second resolution changes nothing.
        let Resolution::AlreadyResolved(again) =
            Violation::resolve(conn, org.id, high.id, owner.id, "again")
                .await
                .unwrap()
        else {
            panic!("{b}: resolved twice");
        };
        assert_eq!(again, resolved, "{b}");
        assert!(resolved.resolved && resolved.resolved_at.is_some(), "{b}");
        assert_eq!(
            resolved.resolution_notes.as_deref(),
            Some("rewritten and re-checked"),
            "{b}"
        );
        let open = ViolationFilter {
            resolved: Some(false),
            ..ViolationFilter::default()
        };
        assert_eq!(
            Violation::list(conn, org.id, &open, 10, 0).await.unwrap().1,
            1,
            "{b}"
        );

        assert!(
            Policy::delete(conn, org.id, strict.id).await.unwrap(),
            "{b}"
        );
        assert!(
            !Policy::delete(conn, org.id, strict.id).await.unwrap(),
            "{b}"
        );
        // The violation outlives its policy.
        let kept = Violation::find(conn, org.id, high.id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(kept.policy_id, None, "{b}");
    }
}
