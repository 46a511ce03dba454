use cg_biasguard::config::{Config, Settings};
use cg_biasguard::startup;
use cg_service_kit::testing::{TEST_INTERNAL_TOKEN, TestApp, server_config};
use cg_storage::models::{
    AuditLog, NewOrganization, Organization, OrganizationUpdate, Policy, Violation, ViolationFilter,
};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::testing::TestStorage;
use cg_storage::{Cache, Db, Needs, StorageConfig};
use serde_json::{Value, json};

pub async fn spawn(storage: &StorageConfig, settings: Settings) -> TestApp {
    let app = startup::build(Config {
        server: server_config(),
        storage: storage.clone(),
        biasguard: settings,
    })
    .await
    .expect("build");
    TestApp::run(app)
}

pub async fn db(storage: &StorageConfig) -> Db {
    let needs = Needs {
        database: true,
        cache: false,
        blobs: false,
    };
    let target = storage.clone().resolve(needs).expect("config").database;
    Db::connect(&target.expect("database"))
        .await
        .expect("connect")
}

async fn cache(storage: &StorageConfig) -> Cache {
    let needs = Needs {
        database: false,
        cache: true,
        blobs: false,
    };
    let target = storage.clone().resolve(needs).expect("config").cache;
    Cache::connect(&target.expect("cache"))
        .await
        .expect("cache")
}

pub async fn post(app: &TestApp, org: Option<Id>, body: Value) -> (u16, Value) {
    let mut req = app
        .client
        .post(format!("{}/process", app.address))
        .header("x-internal-token", TEST_INTERNAL_TOKEN)
        .header("x-request-id", "bg-test");
    if let Some(org) = org {
        req = req.header("x-organization-id", org.to_string());
    }
    let resp = req.json(&body).send().await.expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

pub async fn organization(db: &Db, slug: &str) -> Id {
    let mut pooled = db.get().await.unwrap();
    NewOrganization::new(slug, slug, None)
        .insert(&mut pooled.conn())
        .await
        .unwrap()
        .id
}

pub async fn add_policy(db: &Db, org: Id, name: &str, kind: &str, rules: Value) -> Policy {
    let now = Timestamp::now();
    let policy = Policy {
        id: Id::new(),
        organization_id: org,
        name: name.into(),
        description: "test".into(),
        enforcement_type: kind.into(),
        rules,
        priority: 10,
        is_active: true,
        created_by: None,
        created_at: now,
        updated_at: now,
    };
    let mut pooled = db.get().await.unwrap();
    policy.insert(&mut pooled.conn()).await.unwrap();
    policy
}

async fn audit_rows(db: &Db, org: Id) -> Vec<AuditLog> {
    let mut pooled = db.get().await.unwrap();
    AuditLog::list_for_org(&mut pooled.conn(), org, 100)
        .await
        .unwrap()
}

async fn violations(db: &Db, org: Id) -> Vec<Violation> {
    let mut pooled = db.get().await.unwrap();
    Violation::list(&mut pooled.conn(), org, &ViolationFilter::default(), 100, 0)
        .await
        .unwrap()
        .0
}

pub const BIASED: &str = "All women are too emotional to lead.";
const FINE: &str = "Please send the quarterly figures by Friday.";

fn short_ttl() -> Settings {
    Settings {
        policy_ttl_secs: Some(0.05),
        ..Settings::default()
    }
}

#[tokio::test]
async fn a_failed_policy_denies_and_leaves_an_audit_row_and_a_violation() {
    for storage in TestStorage::all().await {
        let mode = storage.label;
        let app = spawn(&storage.config, short_ttl()).await;
        let db = db(&storage.config).await;
        let org = organization(&db, "acme").await;
        let other = organization(&db, "other").await;
        let policy = add_policy(
            &db,
            org,
            "no stereotypes",
            "compliance",
            json!({"max_bias_score": 5.0}),
        )
        .await;

        let (status, body) = post(
            &app,
            Some(org),
            json!({"operation": "detect_bias", "text": BIASED, "detailed_analysis": true}),
        )
        .await;
        assert_eq!(status, 200, "{mode}: {body}");
        assert_eq!(body["bias_detected"], true, "{mode}: {body}");
        assert_eq!(body["decision"], "deny", "{mode}: {body}");
        assert_eq!(body["stored"], "database", "{mode}: {body}");
        let found = &body["policy_evaluation"]["violations"][0];
        assert_eq!(found["policy_id"], json!(policy.id), "{mode}: {body}");
        assert!(body["bias_patterns"][0]["span"]["start"].is_u64(), "{body}");
        for field in [
            "bias_score",
            "bias_level",
            "bias_types",
            "protected_classes",
            "entities_detected",
            "severity",
            "suggested_rewrite",
            "explanation",
            "confidence",
        ] {
            assert!(body.get(field).is_some(), "{mode}: {field} missing");
        }

        let audits = audit_rows(&db, org).await;
        assert_eq!(audits.len(), 1, "{mode}");
        let audit = &audits[0];
        assert_eq!(audit.id.to_string(), body["audit_id"].as_str().unwrap());
        assert_eq!(audit.decision, "deny");
        assert_eq!(audit.request_id.as_deref(), Some("bg-test"));
        assert!(audit.analyzed_text.is_none(), "{mode}: text stored unasked");
        assert!(audit.fairness_metrics["counterfactual"]["group_dependence"].is_number());
        let found = violations(&db, org).await;
        assert_eq!(found.len(), 1, "{mode}");
        assert_eq!(found[0].policy_id, Some(policy.id));
        assert_eq!(found[0].audit_log_id, Some(audit.id));
        assert_eq!(found[0].violation_type, "max_bias_score");
        assert!(found[0].requires_remediation && !found[0].resolved);
        assert!(["medium", "high", "critical"].contains(&found[0].severity.as_str()));

        // A fine text passes the same policy: an audit row, no violation.
        let (status, body) = post(
            &app,
            Some(org),
            json!({"operation": "policy_check", "text": FINE}),
        )
        .await;
        assert_eq!(status, 200, "{mode}: {body}");
        assert_eq!(body["decision"], "allow", "{mode}: {body}");
        assert_eq!(audit_rows(&db, org).await.len(), 2, "{mode}");
        assert_eq!(violations(&db, org).await.len(), 1, "{mode}");

        // The other organisation has no policies: allowed, and nothing of the first is its.
        let (_, body) = post(
            &app,
            Some(other),
            json!({"operation": "detect_bias", "text": BIASED}),
        )
        .await;
        assert_eq!(body["decision"], "allow", "{mode}: {body}");
        assert!(violations(&db, other).await.is_empty(), "{mode}");
        assert_eq!(audit_rows(&db, other).await.len(), 1, "{mode}");

        // The organisation opts in to storing text.
        {
            let mut pooled = db.get().await.unwrap();
            Organization::update(
                &mut pooled.conn(),
                org,
                &OrganizationUpdate {
                    name: None,
                    settings: Some(json!({"biasguard": {"store_text": true}})),
                    is_active: None,
                    updated_at: Some(Timestamp::now()),
                },
            )
            .await
            .unwrap();
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let (status, _) = post(
            &app,
            Some(org),
            json!({"operation": "detect_bias", "text": FINE}),
        )
        .await;
        assert_eq!(status, 200);
        let newest = &audit_rows(&db, org).await[0];
        assert_eq!(newest.analyzed_text.as_deref(), Some(FINE), "{mode}");
    }
}

#[tokio::test]
async fn operations_and_policy_selection() {
    let storage = TestStorage::embedded();
    let app = spawn(&storage.config, short_ttl()).await;
    let db = db(&storage.config).await;
    let org = organization(&db, "ops").await;
    let slurs = add_policy(
        &db,
        org,
        "review gendered wording",
        "fairness_check",
        json!({"blocked_bias_types": ["gendered_default"], "action": "review"}),
    )
    .await;
    let strict = add_policy(
        &db,
        org,
        "strict",
        "compliance",
        json!({"max_bias_score": 0.0}),
    )
    .await;
    let text = "Every nurse should make sure she washes her hands, and the chairman must sign.";
    let (status, body) = post(
        &app,
        Some(org),
        json!({"operation": "mitigate", "text": text, "policy_ids": [slurs.id]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["changed"], true, "{body}");
    let mitigated = body["mitigated_text"].as_str().unwrap();
    assert!(!mitigated.contains("chairman"), "{mitigated}");
    // Only the policy asked for was evaluated.
    assert_eq!(
        body["policy_evaluation"]["policies_evaluated"],
        json!([slurs.id]),
        "{body}"
    );
    assert_eq!(body["decision"], "review_required", "{body}");
    // All policies: the strict one denies.
    let (_, body) = post(
        &app,
        Some(org),
        json!({"operation": "policy_check", "text": text}),
    )
    .await;
    assert_eq!(body["decision"], "deny", "{body}");
    let evaluated = body["policy_evaluation"]["policies_evaluated"]
        .as_array()
        .unwrap();
    assert!(evaluated.contains(&json!(strict.id)), "{body}");
    // A fine text is not rewritten.
    let (_, body) = post(&app, None, json!({"operation": "mitigate", "text": FINE})).await;
    assert_eq!(body["changed"], false, "{body}");
    assert_eq!(body["mitigated_text"], FINE);
    assert_eq!(body["decision"], "allow");
}

#[tokio::test]
async fn bad_requests_are_refused_and_record_nothing() {
    let storage = TestStorage::embedded();
    let settings = Settings {
        max_text_bytes: Some(200),
        ..short_ttl()
    };
    let app = spawn(&storage.config, settings).await;
    let db = db(&storage.config).await;
    let org = organization(&db, "strict").await;
    let cases = [
        (
            json!({"operation": "detect_bias", "text": "   "}),
            400,
            "bad_request",
        ),
        (
            json!({"operation": "judge", "text": BIASED}),
            422,
            "validation_error",
        ),
        (json!({"text": BIASED}), 422, "validation_error"),
        (
            json!({"operation": "detect_bias", "text": "x".repeat(201)}),
            413,
            "",
        ),
        (
            json!({"operation": "policy_check", "text": BIASED, "policy_ids": [Id::new()]}),
            422,
            "",
        ),
    ];
    for (body, status, code) in cases {
        let (got, answer) = post(&app, Some(org), body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
        if !code.is_empty() {
            assert_eq!(answer["error"]["code"], code, "{body}: {answer}");
        }
        assert!(answer["error"]["message"].is_string(), "{answer}");
    }
    // A malformed organisation header, and no internal token.
    let resp = app
        .client
        .post(format!("{}/process", app.address))
        .header("x-internal-token", TEST_INTERNAL_TOKEN)
        .header("x-organization-id", "acme")
        .json(&json!({"operation": "detect_bias", "text": BIASED}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
    let resp = app
        .client
        .post(format!("{}/process", app.address))
        .json(&json!({"operation": "detect_bias", "text": BIASED}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert!(
        audit_rows(&db, org).await.is_empty(),
        "a refused request left a record"
    );
}

/// A policy change announced on the cache reaches a replica that cached the old set.
#[tokio::test]
async fn announced_policy_changes_apply_at_once() {
    let Some(storage) = TestStorage::centralized().await else {
        return;
    };
    let settings = Settings {
        policy_ttl_secs: Some(3600.0),
        ..Settings::default()
    };
    let app = spawn(&storage.config, settings).await;
    let db = db(&storage.config).await;
    let cache = cache(&storage.config).await;
    let org = organization(&db, "announce").await;
    let ask = json!({"operation": "detect_bias", "text": BIASED});
    let (_, body) = post(&app, Some(org), ask.clone()).await;
    assert_eq!(body["decision"], "allow", "{body}");
    add_policy(
        &db,
        org,
        "limit",
        "compliance",
        json!({"max_bias_score": 2.0}),
    )
    .await;
    // Cached for an hour: without an announcement the new policy is not seen yet.
    let (_, body) = post(&app, Some(org), ask.clone()).await;
    assert_eq!(body["decision"], "allow", "{body}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        cache
            .publish(cg_guard_api::biasguard::POLICIES_CHANNEL, &org.to_string())
            .await
            .unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let (_, body) = post(&app, Some(org), ask.clone()).await;
        if body["decision"] == "deny" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "announcement ignored: {body}"
        );
    }
}
