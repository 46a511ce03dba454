//! `/api/v1/biasguard/*`: policies, violations and the audit log of an organisation, on both
//! storage backends.

use std::time::Duration;

use cg_gateway::config::Config;
use cg_service_kit::testing::{TestApp, server_config};
use cg_storage::Storage;
use cg_storage::models::{AuditLog, Violation};
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::testing::TestStorage;
use serde_json::{Value, json};

use crate::helpers::{Auth, Gateway, access, settings};

const POLICIES: &str = "/api/v1/biasguard/policies";
const VIOLATIONS: &str = "/api/v1/biasguard/violations";
const AUDIT: &str = "/api/v1/biasguard/audit";

/// A gateway and the storage it is connected to (the same cache, so a test can hear what it
/// publishes, and the same database, so a test can write what BiasGuard would).
async fn start(storage: &TestStorage) -> (Gateway, Storage) {
    let app = cg_gateway::startup::build(Config {
        server: server_config(),
        storage: storage.config.clone(),
        gateway: settings(),
    })
    .await
    .expect("build the gateway");
    let backends = app.storage().clone();
    let gw = Gateway {
        app: TestApp::run(app),
    };
    (gw, backends)
}

async fn patch(gw: &Gateway, path: &str, auth: Auth<'_>, body: Value) -> (u16, Value) {
    let req = gw
        .app
        .client
        .patch(format!("{}{path}", gw.app.address))
        .json(&body);
    let req = match auth {
        Auth::None => req,
        Auth::Bearer(t) => req.bearer_auth(t),
        Auth::ApiKey(k) => req.header("x-api-key", k),
    };
    gw.send(req).await
}

async fn org_id(gw: &Gateway, auth: Auth<'_>) -> Id {
    let (status, org) = gw.get("/api/v1/organizations/current", auth).await;
    assert_eq!(status, 200, "{org}");
    org["id"].as_str().unwrap().parse().unwrap()
}

async fn user_id(gw: &Gateway, auth: Auth<'_>) -> String {
    let (status, me) = gw.get("/api/v1/users/me", auth).await;
    assert_eq!(status, 200, "{me}");
    me["id"].as_str().unwrap().to_owned()
}

/// A member-role API key of the caller's organisation: a non-admin caller.
async fn member_key(gw: &Gateway, admin: Auth<'_>) -> String {
    let (status, key) = gw
        .post(
            "/api/v1/api-keys",
            admin,
            json!({"name": "reader", "role": "member", "scopes": ["process", "read"]}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    key["key"].as_str().unwrap().to_owned()
}

fn policy_body(name: &str) -> Value {
    json!({
        "name": name,
        "enforcement_type": "fairness_check",
        "rules": {"max_bias_score": 6.5, "blocked_bias_types": ["slur"]},
    })
}

fn violation(org: Id, policy: Option<Id>, severity: &str, minutes_ago: i64) -> Violation {
    Violation {
        id: Id::new(),
        created_at: Timestamp::from(*Timestamp::now() - chrono::Duration::minutes(minutes_ago)),
        organization_id: Some(org),
        policy_id: policy,
        audit_log_id: None,
        request_id: Some(format!("req-{minutes_ago}")),
        violation_type: "max_bias_score".into(),
        severity: severity.into(),
        impact_score: 0.5,
        details: json!({"bias_score": 7.1}),
        requires_remediation: severity == "critical",
        resolved: false,
        resolved_at: None,
        resolved_by: None,
        resolution_notes: None,
    }
}

fn audit_row(org: Option<Id>, minutes_ago: i64) -> AuditLog {
    AuditLog {
        id: Id::new(),
        created_at: Timestamp::from(*Timestamp::now() - chrono::Duration::minutes(minutes_ago)),
        organization_id: org,
        request_id: Some(format!("audit-{minutes_ago}")),
        operation: "detect_bias".into(),
        decision: "deny".into(),
        bias_score: 7.1,
        bias_level: "high".into(),
        bias_types: json!(["slur"]),
        policy_ids: json!([]),
        violations: json!([]),
        warnings: json!([]),
        fairness_metrics: json!({}),
        request_context: json!({}),
        analyzed_text: None,
        processing_time_ms: 1.5,
    }
}

async fn insert_violations(storage: &Storage, rows: &[Violation]) {
    let mut pooled = storage.db().unwrap().get().await.unwrap();
    for row in rows {
        assert!(row.insert_or_ignore(&mut pooled.conn()).await.unwrap());
    }
}

async fn insert_audit(storage: &Storage, rows: &[AuditLog]) {
    let mut pooled = storage.db().unwrap().get().await.unwrap();
    for row in rows {
        assert!(row.insert_or_ignore(&mut pooled.conn()).await.unwrap());
    }
}

fn ids(list: &Value, key: &str) -> Vec<String> {
    list[key]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_manages_policies_and_members_only_read_them() {
    for storage in TestStorage::all().await {
        let mode = storage.label;
        let (gw, _) = start(&storage).await;
        let alice = gw.sign_up("alice@example.com").await;
        let a = Auth::Bearer(access(&alice));
        let alice_id = user_id(&gw, a).await;

        let (status, created) = gw.post(POLICIES, a, policy_body("no slurs")).await;
        assert_eq!(status, 201, "{mode}: {created}");
        assert_eq!(created["priority"], 100, "{mode}: default priority");
        assert_eq!(created["is_active"], true);
        assert_eq!(created["description"], "");
        assert_eq!(created["created_by"], alice_id.as_str());
        assert_eq!(created["rules"]["blocked_bias_types"], json!(["slur"]));
        let id = created["id"].as_str().unwrap().to_owned();
        let one = format!("{POLICIES}/{id}");

        let (status, second) = gw
            .post(
                POLICIES,
                a,
                json!({"name": "religion first", "description": "checked before the rest",
                       "enforcement_type": "attribute_based", "priority": 10, "is_active": false,
                       "rules": {"blocked_levels": ["high"], "protected_classes": ["religion"],
                                 "action": "review"}}),
            )
            .await;
        assert_eq!(status, 201, "{mode}: {second}");
        let (status, duplicate) = gw.post(POLICIES, a, policy_body("no slurs")).await;
        assert_eq!(status, 409, "{mode}: {duplicate}");

        // Listed in evaluation order; `active` filters both ways.
        let (status, listed) = gw.get(POLICIES, a).await;
        assert_eq!(status, 200, "{mode}: {listed}");
        assert_eq!(
            ids(&listed, "policies"),
            [second["id"].as_str().unwrap(), id.as_str()]
        );
        let (_, active) = gw.get(&format!("{POLICIES}?active=true"), a).await;
        assert_eq!(ids(&active, "policies"), [id.as_str()], "{mode}");
        let (_, inactive) = gw.get(&format!("{POLICIES}?active=false"), a).await;
        assert_eq!(
            ids(&inactive, "policies"),
            [second["id"].as_str().unwrap()],
            "{mode}"
        );
        let (status, got) = gw.get(&one, a).await;
        assert_eq!((status, &got), (200, &created), "{mode}");

        // Any subset of fields; the rest stays.
        let (status, changed) = patch(
            &gw,
            &one,
            a,
            json!({"name": "no slurs, please", "priority": 5, "is_active": false}),
        )
        .await;
        assert_eq!(status, 200, "{mode}: {changed}");
        assert_eq!(changed["name"], "no slurs, please");
        assert_eq!(changed["priority"], 5);
        assert_eq!(changed["is_active"], false);
        assert_eq!(changed["rules"], created["rules"], "{mode}: rules kept");
        assert_eq!(changed["enforcement_type"], "fairness_check");
        // Rules are checked against the resulting enforcement type: attribute_based needs
        // protected classes, which these rules lack; given both, it is accepted.
        let (status, refused) =
            patch(&gw, &one, a, json!({"enforcement_type": "attribute_based"})).await;
        assert_eq!(status, 422, "{mode}: {refused}");
        assert!(
            refused["error"]["message"]
                .as_str()
                .unwrap()
                .contains("protected_classes"),
            "{mode}: {refused}"
        );
        let (status, changed) = patch(
            &gw,
            &one,
            a,
            json!({"enforcement_type": "attribute_based",
                   "rules": {"max_bias_score": 4, "protected_classes": ["gender"]}}),
        )
        .await;
        assert_eq!(status, 200, "{mode}: {changed}");
        assert_eq!(changed["enforcement_type"], "attribute_based");
        assert_eq!(
            changed["rules"],
            json!({"max_bias_score": 4, "protected_classes": ["gender"]})
        );
        let (_, got) = gw.get(&one, a).await;
        assert_eq!(got, changed, "{mode}: the change is stored");

        // A member reads but never writes.
        let key = member_key(&gw, a).await;
        let m = Auth::ApiKey(&key);
        let (status, listed) = gw.get(POLICIES, m).await;
        assert_eq!(status, 200, "{mode}: {listed}");
        assert_eq!(listed["policies"].as_array().unwrap().len(), 2);
        assert_eq!(gw.get(&one, m).await.0, 200, "{mode}");
        let (status, denied) = gw.post(POLICIES, m, policy_body("mine")).await;
        assert_eq!(status, 403, "{mode}: {denied}");
        // A member's key has no admin scope, and a member could not write anyway.
        assert_eq!(
            denied["error"]["code"], "insufficient_scope",
            "{mode}: {denied}"
        );
        assert_eq!(
            patch(&gw, &one, m, json!({"priority": 1})).await.0,
            403,
            "{mode}"
        );
        assert_eq!(gw.delete(&one, m).await.0, 403, "{mode}");
        assert_eq!(
            gw.get(AUDIT, m).await.0,
            403,
            "{mode}: the audit log is admin-only"
        );
        let (_, got) = gw.get(&one, a).await;
        assert_eq!(got, changed, "{mode}: refused writes changed nothing");

        let (status, _) = gw.delete(&one, a).await;
        assert_eq!(status, 204, "{mode}");
        assert_eq!(gw.get(&one, a).await.0, 404, "{mode}");
        assert_eq!(gw.delete(&one, a).await.0, 404, "{mode}");
        assert_eq!(
            patch(&gw, &one, a, json!({"priority": 1})).await.0,
            404,
            "{mode}"
        );
        let (_, listed) = gw.get(POLICIES, a).await;
        assert_eq!(listed["policies"].as_array().unwrap().len(), 1, "{mode}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn invalid_policies_are_refused_with_the_reason_and_nothing_is_stored() {
    for storage in TestStorage::all().await {
        let mode = storage.label;
        let (gw, _) = start(&storage).await;
        let alice = gw.sign_up("alice@example.com").await;
        let a = Auth::Bearer(access(&alice));

        let rules = json!({"max_bias_score": 5});
        let bad = [
            (
                json!({"name": "p", "enforcement_type": "vibes", "rules": rules}),
                "enforcement_type must be one of: fairness_check, attribute_based, compliance, audit",
            ),
            (
                json!({"name": "p", "enforcement_type": "compliance", "rules": {"max_score": 5}}),
                "unknown field",
            ),
            (
                json!({"name": "p", "enforcement_type": "compliance", "rules": {"max_bias_score": 11}}),
                "rules.max_bias_score must be between 0 and 10",
            ),
            (
                json!({"name": "p", "enforcement_type": "compliance",
                       "rules": {"blocked_bias_types": ["rudeness"]}}),
                "unknown value \"rudeness\"",
            ),
            (
                json!({"name": "p", "enforcement_type": "audit", "rules": {}}),
                "at least one condition",
            ),
            (
                json!({"name": "p", "enforcement_type": "attribute_based", "rules": rules}),
                "an attribute_based policy needs rules.protected_classes",
            ),
            (
                json!({"name": "p", "enforcement_type": "audit", "rules": [1, 2]}),
                "rules must be a JSON object",
            ),
            (
                json!({"name": "  ", "enforcement_type": "audit", "rules": rules}),
                "name must be 1 to 100",
            ),
            (
                json!({"name": "p", "enforcement_type": "audit", "rules": rules, "priority": -1}),
                "priority must be 0 to 10000",
            ),
            (json!({"name": "p", "enforcement_type": "audit"}), "rules"),
            (
                json!({"name": "p", "enforcement_type": "audit", "rules": rules, "active": false}),
                "unknown field `active`",
            ),
        ];
        for (body, needle) in bad {
            let (status, answer) = gw.post(POLICIES, a, body.clone()).await;
            assert_eq!(status, 422, "{mode}: {body} → {answer}");
            assert_eq!(
                answer["error"]["code"], "validation_error",
                "{mode}: {answer}"
            );
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(needle), "{mode}: {body} → {message}");
        }
        let (status, listed) = gw.get(POLICIES, a).await;
        assert_eq!(status, 200);
        assert_eq!(listed["policies"], json!([]), "{mode}: nothing stored");

        // A refused change leaves the policy as it was.
        let (_, created) = gw.post(POLICIES, a, policy_body("kept")).await;
        let one = format!("{POLICIES}/{}", created["id"].as_str().unwrap());
        for body in [
            json!({"rules": {"max_bias_score": -1}}),
            json!({"enforcement_type": "nope"}),
            json!({"name": ""}),
            json!({"rules": {}}),
        ] {
            let (status, answer) = patch(&gw, &one, a, body.clone()).await;
            assert_eq!(status, 422, "{mode}: {body} → {answer}");
        }
        let (_, got) = gw.get(&one, a).await;
        assert_eq!(got, created, "{mode}");
        let (status, answer) = gw.get(&format!("{POLICIES}/not-a-uuid"), a).await;
        assert_eq!(status, 400, "{mode}: {answer}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn violations_are_filtered_paged_and_resolved_once() {
    for storage in TestStorage::all().await {
        let mode = storage.label;
        let (gw, backends) = start(&storage).await;
        let alice = gw.sign_up("alice@example.com").await;
        let a = Auth::Bearer(access(&alice));
        let org = org_id(&gw, a).await;
        let alice_id = user_id(&gw, a).await;
        let (_, policy) = gw.post(POLICIES, a, policy_body("no slurs")).await;
        let policy_id: Id = policy["id"].as_str().unwrap().parse().unwrap();

        // Newest first: v[0] is one minute old, v[4] five.
        let rows = vec![
            violation(org, Some(policy_id), "high", 1),
            violation(org, Some(policy_id), "low", 2),
            violation(org, None, "high", 3),
            violation(org, Some(policy_id), "critical", 4),
            violation(org, None, "medium", 5),
        ];
        insert_violations(&backends, &rows).await;
        let id = |i: usize| rows[i].id.to_string();

        let (status, all) = gw.get(VIOLATIONS, a).await;
        assert_eq!(status, 200, "{mode}: {all}");
        assert_eq!(all["total"], 5);
        assert_eq!(all["limit"], 20, "{mode}: default page size");
        assert_eq!(all["offset"], 0);
        assert_eq!(
            ids(&all, "violations"),
            (0..5).map(id).collect::<Vec<_>>(),
            "{mode}"
        );
        let first = &all["violations"][0];
        assert_eq!(first["severity"], "high");
        assert_eq!(first["policy_id"], policy_id.to_string());
        assert_eq!(first["details"], json!({"bias_score": 7.1}));
        assert_eq!(first["resolved"], false);

        // Pages: the total is of everything matching, the page is a slice of it.
        let (_, page) = gw.get(&format!("{VIOLATIONS}?limit=2&offset=2"), a).await;
        assert_eq!(page["total"], 5, "{mode}: {page}");
        assert_eq!(ids(&page, "violations"), [id(2), id(3)], "{mode}");
        let (_, last) = gw.get(&format!("{VIOLATIONS}?limit=2&offset=4"), a).await;
        assert_eq!(ids(&last, "violations"), [id(4)], "{mode}");
        let (_, capped) = gw.get(&format!("{VIOLATIONS}?limit=1000"), a).await;
        assert_eq!(capped["limit"], 100, "{mode}: page size capped");

        let (_, high) = gw.get(&format!("{VIOLATIONS}?severity=high"), a).await;
        assert_eq!(high["total"], 2, "{mode}: {high}");
        assert_eq!(ids(&high, "violations"), [id(0), id(2)]);
        let (_, of_policy) = gw
            .get(&format!("{VIOLATIONS}?policy_id={policy_id}"), a)
            .await;
        assert_eq!(
            ids(&of_policy, "violations"),
            [id(0), id(1), id(3)],
            "{mode}"
        );
        // since is inclusive, until exclusive; a `+` offset survives the query string either
        // encoded or not.
        let since = rows[3].created_at.to_string();
        let until = rows[1].created_at.to_string();
        let (status, window) = gw
            .get(&format!("{VIOLATIONS}?since={since}&until={until}"), a)
            .await;
        assert_eq!(status, 200, "{mode}: {window}");
        assert_eq!(ids(&window, "violations"), [id(2), id(3)], "{mode}");
        let offset_since = rows[3]
            .created_at
            .with_timezone(&chrono::FixedOffset::east_opt(2 * 3600).unwrap())
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
        for encoded in [offset_since.replace('+', "%2B"), offset_since.clone()] {
            let (status, window) = gw
                .get(&format!("{VIOLATIONS}?since={encoded}&until={until}"), a)
                .await;
            assert_eq!(status, 200, "{mode}: {encoded}: {window}");
            assert_eq!(ids(&window, "violations"), [id(2), id(3)], "{mode}");
        }

        for (query, needle) in [
            (
                "severity=extreme",
                "severity \"extreme\" is not one of: low, medium, high, critical",
            ),
            ("since=yesterday", "since must be an RFC 3339 time"),
            (
                "until=2026-13-01T00:00:00Z",
                "until must be an RFC 3339 time",
            ),
            ("resolved=maybe", ""),
            ("policy_id=42", ""),
        ] {
            let (status, answer) = gw.get(&format!("{VIOLATIONS}?{query}"), a).await;
            assert_eq!(status, 400, "{mode}: {query} → {answer}");
            assert_eq!(answer["error"]["code"], "invalid_query", "{mode}: {answer}");
            let message = answer["error"]["message"].as_str().unwrap();
            assert!(message.contains(needle), "{mode}: {query} → {message}");
        }
        let (_, bad) = gw.get(&format!("{VIOLATIONS}?severity=extreme"), a).await;
        assert_eq!(
            bad["error"]["details"]["allowed"],
            json!(["low", "medium", "high", "critical"])
        );

        // Resolving: admins only, as a person, with notes, once.
        let target = format!("{VIOLATIONS}/{}", id(3));
        let resolve = format!("{target}/resolve");
        let key = member_key(&gw, a).await;
        let (status, _) = gw
            .post(&resolve, Auth::ApiKey(&key), json!({"notes": "fine"}))
            .await;
        assert_eq!(status, 403, "{mode}: a member cannot resolve");
        let (_, admin_key) = gw
            .post(
                "/api/v1/api-keys",
                a,
                json!({"name": "automation", "role": "admin", "scopes": ["admin", "read"]}),
            )
            .await;
        let (status, answer) = gw
            .post(
                &resolve,
                Auth::ApiKey(admin_key["key"].as_str().unwrap()),
                json!({"notes": "fine"}),
            )
            .await;
        assert_eq!(status, 403, "{mode}: a key is not a person: {answer}");
        for notes in [json!(""), json!("   "), json!("x".repeat(2001))] {
            let (status, answer) = gw.post(&resolve, a, json!({"notes": notes})).await;
            assert_eq!(status, 422, "{mode}: {answer}");
            assert_eq!(answer["error"]["code"], "validation_error");
        }
        let (status, _) = gw.post(&resolve, a, json!({})).await;
        assert_eq!(status, 422, "{mode}: notes are required");

        let notes = "Reviewed with the author; the wording was changed.";
        let (status, resolved) = gw.post(&resolve, a, json!({"notes": notes})).await;
        assert_eq!(status, 200, "{mode}: {resolved}");
        assert_eq!(resolved["resolved"], true);
        assert_eq!(resolved["resolution_notes"], notes);
        assert_eq!(resolved["resolved_by"], alice_id.as_str());
        assert!(resolved["resolved_at"].is_string(), "{mode}: {resolved}");
        let (status, again) = gw.post(&resolve, a, json!({"notes": "once more"})).await;
        assert_eq!(status, 409, "{mode}: {again}");
        assert_eq!(again["error"]["code"], "conflict");
        let (status, got) = gw.get(&target, Auth::ApiKey(&key)).await;
        assert_eq!(status, 200, "{mode}: members read violations");
        assert_eq!(got, resolved, "{mode}: the first resolution stands");

        let (_, open) = gw.get(&format!("{VIOLATIONS}?resolved=false"), a).await;
        assert_eq!(open["total"], 4, "{mode}: {open}");
        let (_, done) = gw
            .get(&format!("{VIOLATIONS}?resolved=true&severity=critical"), a)
            .await;
        assert_eq!(ids(&done, "violations"), [id(3)], "{mode}");
        assert_eq!(
            gw.post(
                &format!("{VIOLATIONS}/{}/resolve", Id::new()),
                a,
                json!({"notes": "x"})
            )
            .await
            .0,
            404,
            "{mode}"
        );

        // Deleting a policy keeps its violations, without the policy.
        let (status, _) = gw.delete(&format!("{POLICIES}/{policy_id}"), a).await;
        assert_eq!(status, 204, "{mode}");
        let (_, kept) = gw.get(&format!("{VIOLATIONS}/{}", id(0)), a).await;
        assert_eq!(kept["policy_id"], Value::Null, "{mode}: {kept}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn another_organisation_sees_and_changes_none_of_it() {
    for storage in TestStorage::all().await {
        let mode = storage.label;
        let (gw, backends) = start(&storage).await;
        let alice = gw.sign_up("alice@example.com").await;
        let mallory = gw.sign_up("mallory@example.com").await;
        let a = Auth::Bearer(access(&alice));
        let m = Auth::Bearer(access(&mallory));
        let acme = org_id(&gw, a).await;
        let evil = org_id(&gw, m).await;

        let (_, policy) = gw.post(POLICIES, a, policy_body("acme policy")).await;
        let policy_path = format!("{POLICIES}/{}", policy["id"].as_str().unwrap());
        let acme_violation = violation(acme, None, "high", 1);
        let evil_violation = violation(evil, None, "low", 1);
        insert_violations(&backends, &[acme_violation.clone(), evil_violation.clone()]).await;
        // Rows of Acme, of Mallory's organisation and of no organisation at all.
        let audit = [
            audit_row(Some(acme), 3),
            audit_row(Some(acme), 1),
            audit_row(Some(evil), 2),
            audit_row(None, 0),
        ];
        insert_audit(&backends, &audit).await;

        // Acme's admin sees Acme's rows only, newest first, `limit` at a time.
        let (status, acme_audit) = gw.get(AUDIT, a).await;
        assert_eq!(status, 200, "{mode}: {acme_audit}");
        assert_eq!(
            ids(&acme_audit, "audit_logs"),
            [audit[1].id.to_string(), audit[0].id.to_string()],
            "{mode}"
        );
        assert_eq!(acme_audit["limit"], 50);
        let row = &acme_audit["audit_logs"][0];
        assert_eq!(row["decision"], "deny");
        assert_eq!(row["bias_types"], json!(["slur"]));
        let (_, newest) = gw.get(&format!("{AUDIT}?limit=1"), a).await;
        assert_eq!(
            ids(&newest, "audit_logs"),
            [audit[1].id.to_string()],
            "{mode}"
        );
        let (_, capped) = gw.get(&format!("{AUDIT}?limit=100000"), a).await;
        assert_eq!(capped["limit"], 500, "{mode}");

        // Mallory sees only her own organisation's rows, and none of Acme's ids exist for her.
        let (_, theirs) = gw.get(POLICIES, m).await;
        assert_eq!(theirs["policies"], json!([]), "{mode}");
        let (_, theirs) = gw.get(VIOLATIONS, m).await;
        assert_eq!(theirs["total"], 1, "{mode}: {theirs}");
        assert_eq!(
            ids(&theirs, "violations"),
            [evil_violation.id.to_string()],
            "{mode}"
        );
        let (_, theirs) = gw.get(AUDIT, m).await;
        assert_eq!(
            ids(&theirs, "audit_logs"),
            [audit[2].id.to_string()],
            "{mode}"
        );
        let (_, ours) = gw.get(VIOLATIONS, a).await;
        assert_eq!(
            ids(&ours, "violations"),
            [acme_violation.id.to_string()],
            "{mode}"
        );

        assert_eq!(gw.get(&policy_path, m).await.0, 404, "{mode}");
        assert_eq!(
            patch(&gw, &policy_path, m, json!({"is_active": false}))
                .await
                .0,
            404,
            "{mode}"
        );
        assert_eq!(gw.delete(&policy_path, m).await.0, 404, "{mode}");
        let acme_violation_path = format!("{VIOLATIONS}/{}", acme_violation.id);
        assert_eq!(gw.get(&acme_violation_path, m).await.0, 404, "{mode}");
        let (status, _) = gw
            .post(
                &format!("{acme_violation_path}/resolve"),
                m,
                json!({"notes": "not yours"}),
            )
            .await;
        assert_eq!(status, 404, "{mode}");

        // Nothing of Acme's changed.
        let (_, kept) = gw.get(&policy_path, a).await;
        assert_eq!(kept, policy, "{mode}");
        let (_, kept) = gw.get(&acme_violation_path, a).await;
        assert_eq!(kept["resolved"], false, "{mode}");
    }
}

/// Wait until `sub` hears the organisation id, skipping the readiness probes.
async fn next_announcement(sub: &mut cg_storage::cache::Subscription) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match sub.next().await {
                Some(msg) if msg == "probe" => {}
                other => return other,
            }
        }
    })
    .await
    .ok()
    .flatten()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_policy_change_is_announced_to_biasguard_replicas() {
    for storage in TestStorage::all().await {
        let mode = storage.label;
        let (gw, backends) = start(&storage).await;
        let alice = gw.sign_up("alice@example.com").await;
        let a = Auth::Bearer(access(&alice));
        let org = org_id(&gw, a).await.to_string();

        // Subscribe through the gateway's own cache; on Redis the subscription settles
        // asynchronously, so probe until it hears.
        let cache = backends.cache().unwrap();
        let mut sub = cache.subscribe("biasguard:policies").await.unwrap();
        let mut ready = false;
        for _ in 0..50 {
            cache.publish("biasguard:policies", "probe").await.unwrap();
            if tokio::time::timeout(Duration::from_millis(100), sub.next())
                .await
                .is_ok()
            {
                ready = true;
                break;
            }
        }
        assert!(ready, "{mode}: subscription never settled");

        let (status, created) = gw.post(POLICIES, a, policy_body("announced")).await;
        assert_eq!(status, 201, "{mode}: {created}");
        assert_eq!(
            next_announcement(&mut sub).await,
            Some(org.clone()),
            "{mode}: create"
        );
        let one = format!("{POLICIES}/{}", created["id"].as_str().unwrap());
        let (status, _) = patch(&gw, &one, a, json!({"priority": 7})).await;
        assert_eq!(status, 200, "{mode}");
        assert_eq!(
            next_announcement(&mut sub).await,
            Some(org.clone()),
            "{mode}: update"
        );
        let (status, _) = gw.delete(&one, a).await;
        assert_eq!(status, 204, "{mode}");
        assert_eq!(
            next_announcement(&mut sub).await,
            Some(org.clone()),
            "{mode}: delete"
        );

        // Refused changes announce nothing.
        let (status, _) = gw
            .post(
                POLICIES,
                a,
                json!({"name": "x", "enforcement_type": "audit", "rules": {}}),
            )
            .await;
        assert_eq!(status, 422, "{mode}");
        let heard =
            tokio::time::timeout(Duration::from_millis(300), next_announcement(&mut sub)).await;
        assert!(
            matches!(heard, Err(_) | Ok(None)),
            "{mode}: a refused change was announced: {heard:?}"
        );
    }
}
