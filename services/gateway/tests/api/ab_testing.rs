//! `/api/v1/ab-testing/*` on both storage backends (life cycle, validation, roles, tenancy,
//! sticky assignment, results and analysis), and a variant's overrides applied to the routing
//! of its users' guard requests (against fake guards).

use cg_gateway::config::GatewaySettings;
use cg_storage::testing::TestStorage;
use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Auth, Gateway, access, set_tier, settings, spawn};

const EXPERIMENTS: &str = "/api/v1/ab-testing/experiments";

async fn org_id(gw: &Gateway, auth: Auth<'_>) -> String {
    let (status, org) = gw.get("/api/v1/organizations/current", auth).await;
    assert_eq!(status, 200, "{org}");
    org["id"].as_str().unwrap().to_owned()
}

async fn member_key(gw: &Gateway, admin: Auth<'_>, role: &str) -> String {
    let (status, key) = gw
        .post(
            "/api/v1/api-keys",
            admin,
            json!({"name": format!("{role} key"), "role": role}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    key["key"].as_str().unwrap().to_owned()
}

fn experiment(name: &str) -> Value {
    json!({
        "name": name,
        "description": "stricter verdicts",
        "variants": [
            {"name": "control", "traffic_split": 50},
            {"name": "strict", "traffic_split": 50,
             "overrides": {"thresholds": {"flag": 0.2, "block": 0.4}}}
        ],
        "primary_metric": {"name": "accepted", "type": "conversion"},
        "secondary_metrics": ["latency_ms"]
    })
}

async fn total(gw: &Gateway, auth: Auth<'_>) -> i64 {
    let (status, list) = gw.get(EXPERIMENTS, auth).await;
    assert_eq!(status, 200, "{list}");
    list["total"].as_i64().unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn experiments_run_from_draft_to_analysis_within_their_organisation() {
    for storage in TestStorage::all().await {
        let b = storage.label;
        let gw = spawn(storage.config.clone(), settings()).await;
        let owner = gw.sign_up("owner@example.com").await;
        let admin = Auth::Bearer(access(&owner));
        let org = org_id(&gw, admin).await;

        // The free tier has no A/B testing.
        let (status, e) = gw.post(EXPERIMENTS, admin, experiment("x")).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (403, Some("feature_not_in_plan")),
            "{b}: {e}"
        );
        set_tier(&storage.config, &org, "pro").await;

        // Bad designs are refused and create nothing.
        for (field, value) in [
            ("variants", json!([{"name": "only", "traffic_split": 1}])),
            (
                "variants",
                json!([{"name": "a", "traffic_split": 0.5}, {"name": "b", "traffic_split": 0.6}]),
            ),
            (
                "variants",
                json!([{"name": "a", "traffic_split": 0.5}, {"name": "a", "traffic_split": 0.5}]),
            ),
            (
                "variants",
                json!([{"name": "a", "traffic_split": 0.5}, {"name": "b", "traffic_split": 0.5, "overrides": {"services": ["nope"]}}]),
            ),
            ("primary_metric", json!({"name": "m", "type": "median"})),
            ("secondary_metrics", json!(["accepted"])),
            ("audience", json!({"percentage": 0})),
            ("audience", json!({"client_types": ["fax"]})),
            ("confidence_level", json!(1.5)),
            ("name", json!("")),
            ("colour", json!("blue")),
        ] {
            let mut body = experiment("bad");
            body[field] = value;
            let (status, e) = gw.post(EXPERIMENTS, admin, body.clone()).await;
            assert!(
                matches!(status, 400 | 422) && e["error"]["code"].is_string(),
                "{b}: {body} → {status} {e}"
            );
        }
        assert_eq!(total(&gw, admin).await, 0, "{b}");

        let (status, created) = gw
            .post(EXPERIMENTS, admin, experiment("strict verdicts"))
            .await;
        assert_eq!(status, 201, "{b}: {created}");
        assert_eq!(created["status"], "draft");
        assert_eq!(created["variants"][1]["traffic_split"], 0.5);
        assert_eq!(created["secondary_metrics"][0]["type"], "mean");
        let id = created["id"].as_str().unwrap().to_owned();
        let one = format!("{EXPERIMENTS}/{id}");
        let (status, _) = gw
            .post(EXPERIMENTS, admin, experiment("strict verdicts"))
            .await;
        assert_eq!(status, 409, "{b}");

        // Members read and report; only admins define and run experiments.
        let member = member_key(&gw, admin, "member").await;
        let member = Auth::ApiKey(&member);
        let viewer = member_key(&gw, admin, "viewer").await;
        let viewer = Auth::ApiKey(&viewer);
        assert_eq!(gw.post(EXPERIMENTS, member, experiment("m")).await.0, 403);
        assert_eq!(
            gw.post(&format!("{one}/start"), member, json!({})).await.0,
            403
        );
        assert_eq!(total(&gw, viewer).await, 1);

        // Users are assigned only while it runs.
        let assign = |user: &str| json!({"user_id": user, "experiment_id": id});
        let (status, _) = gw
            .post("/api/v1/ab-testing/assign-user", member, assign("u-1"))
            .await;
        assert_eq!(status, 409, "{b}");

        // A draft's variants may change; then it starts, and they may not.
        let (status, changed) = gw
            .put(
                &one,
                admin,
                json!({"variants": [{"name": "control", "traffic_split": 0.5}, {"name": "strict", "traffic_split": 0.5}]}),
            )
            .await;
        assert_eq!(status, 200, "{b}: {changed}");
        let (status, started) = gw.post(&format!("{one}/start"), admin, json!({})).await;
        assert_eq!(
            (status, started["status"].as_str()),
            (200, Some("running")),
            "{b}: {started}"
        );
        assert!(started["started_at"].is_string());
        assert_eq!(
            gw.post(&format!("{one}/start"), admin, json!({})).await.0,
            409
        );
        let (status, _) = gw
            .put(&one, admin, json!({"audience": {"percentage": 10}}))
            .await;
        assert_eq!(status, 409, "{b}");
        let (status, renamed) = gw
            .put(&one, admin, json!({"description": "now running"}))
            .await;
        assert_eq!(
            (status, renamed["description"].as_str()),
            (200, Some("now running"))
        );
        assert_eq!(gw.delete(&one, admin).await.0, 409, "{b}");
        // Results are totalled by metric name: a running experiment's metrics stay; more may come.
        let (status, e) = gw
            .put(
                &one,
                admin,
                json!({"primary_metric": {"name": "accepted", "type": "mean"}}),
            )
            .await;
        assert_eq!(status, 409, "{b}: {e}");
        let (status, e) = gw
            .put(&one, admin, json!({"secondary_metrics": ["latency"]}))
            .await;
        assert_eq!(status, 409, "{b}: {e}");
        let (status, grown) = gw
            .put(
                &one,
                admin,
                json!({"secondary_metrics": ["latency_ms", "tokens"]}),
            )
            .await;
        assert_eq!(status, 200, "{b}: {grown}");
        assert_eq!(grown["secondary_metrics"][1]["name"], "tokens");

        // Sticky assignment: the same variant every time, and listed for the user.
        let mut by_variant: std::collections::HashMap<String, Vec<String>> = Default::default();
        for i in 0..12 {
            let user = format!("u-{i}");
            let (status, first) = gw
                .post("/api/v1/ab-testing/assign-user", member, assign(&user))
                .await;
            assert_eq!(status, 200, "{b}: {first}");
            let (_, again) = gw
                .post("/api/v1/ab-testing/assign-user", member, assign(&user))
                .await;
            assert_eq!(first["variant"], again["variant"], "{b}");
            by_variant
                .entry(first["variant"].as_str().unwrap().to_owned())
                .or_default()
                .push(user);
        }
        let (status, listed) = gw
            .get("/api/v1/ab-testing/users/u-3/variants", viewer)
            .await;
        assert_eq!(status, 200, "{listed}");
        assert_eq!(
            listed["variants"].as_array().unwrap().len(),
            1,
            "{b}: {listed}"
        );
        assert_eq!(listed["variants"][0]["experiment_id"], id.as_str());
        let (status, _) = gw
            .post(
                "/api/v1/ab-testing/assign-user",
                member,
                json!({"user_id": "", "experiment_id": id}),
            )
            .await;
        assert_eq!(status, 422, "{b}");

        // Results: checked against the design, and a retry is counted once.
        let (control_user, strict_user) = (
            by_variant.get("control").and_then(|u| u.first()).cloned(),
            by_variant.get("strict").and_then(|u| u.first()).cloned(),
        );
        let result = |variant: &str, user: Option<&str>, metrics: Value| json!({"experiment_id": id, "variant_name": variant, "user_id": user, "session_id": "s", "metrics": metrics});
        for (body, expected) in [
            (result("nope", None, json!({"accepted": 1})), 422),
            (result("control", None, json!({"unknown": 1})), 422),
            (result("control", None, json!({"accepted": 2})), 422),
            (result("control", None, json!({"latency_ms": "fast"})), 422),
            (result("control", None, json!({})), 422),
            (result("control", None, json!({"latency_ms": 1e200})), 422),
        ] {
            let (status, e) = gw
                .post("/api/v1/ab-testing/results", member, body.clone())
                .await;
            assert_eq!(status, expected, "{b}: {body} → {e}");
        }
        if let (Some(c), Some(_)) = (&control_user, &strict_user) {
            let (status, e) = gw
                .post(
                    "/api/v1/ab-testing/results",
                    member,
                    result("strict", Some(c), json!({"accepted": 1})),
                )
                .await;
            assert_eq!(
                status, 422,
                "{b}: a control user's result filed under strict: {e}"
            );
        }
        assert_eq!(
            gw.post(
                "/api/v1/ab-testing/results",
                viewer,
                result("control", None, json!({"accepted": 1}))
            )
            .await
            .0,
            403
        );
        let retried = {
            let mut body = result(
                "control",
                None,
                json!({"accepted": true, "latency_ms": 12.5}),
            );
            body["result_id"] = json!("5b0f6a43-5a0e-4c7e-9f77-2d4c8a3e8f01");
            body
        };
        let (status, first) = gw
            .post("/api/v1/ab-testing/results", member, retried.clone())
            .await;
        assert_eq!(
            (status, first["duplicate"].as_bool()),
            (201, Some(false)),
            "{b}: {first}"
        );
        let (status, again) = gw
            .post("/api/v1/ab-testing/results", member, retried.clone())
            .await;
        assert_eq!(
            (status, again["duplicate"].as_bool()),
            (200, Some(true)),
            "{b}"
        );
        let mut reused = retried;
        reused["metrics"] = json!({"accepted": false});
        let (status, e) = gw.post("/api/v1/ab-testing/results", member, reused).await;
        assert_eq!(status, 409, "{b}: an id holding another result: {e}");
        for (variant, accepted, latency) in [
            ("control", 0, 14.0),
            ("control", 1, 13.0),
            ("strict", 1, 20.0),
            ("strict", 1, 22.0),
            ("strict", 0, 21.0),
        ] {
            let (status, e) = gw
                .post(
                    "/api/v1/ab-testing/results",
                    member,
                    result(
                        variant,
                        None,
                        json!({"accepted": accepted, "latency_ms": latency}),
                    ),
                )
                .await;
            assert_eq!(status, 201, "{b}: {e}");
        }

        let (status, analysis) = gw.get(&format!("{one}/analysis"), viewer).await;
        assert_eq!(status, 200, "{b}: {analysis}");
        let control = &analysis["variants"][0];
        assert_eq!(control["name"], "control");
        assert_eq!(control["results"], 3, "{b}: {analysis}");
        assert_eq!(control["metrics"]["accepted"]["conversions"], 2);
        assert_eq!(control["metrics"]["latency_ms"]["n"], 3);
        assert!(
            (control["metrics"]["latency_ms"]["mean"].as_f64().unwrap() - 13.166_666).abs() < 1e-5
        );
        let assigned: i64 = analysis["variants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v["assigned_users"].as_i64().unwrap())
            .sum();
        assert_eq!(assigned, 12, "{b}");
        let latency = analysis["comparisons"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["metric"] == "latency_ms")
            .unwrap();
        assert_eq!(latency["test"], "welch_t", "{b}: {analysis}");
        assert!(latency["p_value"].as_f64().unwrap() < 0.05, "{latency}");
        assert_eq!(latency["significant"], true);
        let accepted = &analysis["comparisons"][0];
        assert_eq!(
            (accepted["metric"].as_str(), accepted["test"].as_str()),
            (Some("accepted"), Some("two_proportion_z"))
        );
        assert_eq!(accepted["significant"], false);

        // Another organisation sees none of it.
        let other = gw.sign_up("other@example.com").await;
        let other = Auth::Bearer(access(&other));
        let other_org = org_id(&gw, other).await;
        set_tier(&storage.config, &other_org, "pro").await;
        assert_eq!(gw.get(&one, other).await.0, 404);
        assert_eq!(gw.get(&format!("{one}/analysis"), other).await.0, 404);
        assert_eq!(
            gw.post("/api/v1/ab-testing/assign-user", other, assign("u-1"))
                .await
                .0,
            404
        );
        assert_eq!(
            gw.post(
                "/api/v1/ab-testing/results",
                other,
                result("control", None, json!({"accepted": 1}))
            )
            .await
            .0,
            404
        );
        let (_, theirs) = gw.get("/api/v1/ab-testing/users/u-3/variants", other).await;
        assert_eq!(theirs["variants"], json!([]), "{b}");

        // Stopping ends results; a finished experiment can go.
        let (status, e) = gw
            .post(&format!("{one}/stop"), admin, json!({"status": "finished"}))
            .await;
        assert_eq!(status, 422, "{e}");
        let (status, stopped) = gw.post(&format!("{one}/stop"), admin, json!({})).await;
        assert_eq!(
            (status, stopped["status"].as_str()),
            (200, Some("completed")),
            "{b}"
        );
        let (status, _) = gw
            .post(
                "/api/v1/ab-testing/results",
                member,
                result("control", None, json!({"accepted": 1})),
            )
            .await;
        assert_eq!(status, 409, "{b}");
        let (status, listed) = gw
            .get(&format!("{EXPERIMENTS}?status=completed"), viewer)
            .await;
        assert_eq!((status, listed["total"].as_i64()), (200, Some(1)));
        assert_eq!(
            gw.get(&format!("{EXPERIMENTS}?status=gone"), viewer)
                .await
                .0,
            400
        );
        // Pages are brought into range, as on every list route.
        let (_, paged) = gw
            .get(&format!("{EXPERIMENTS}?limit=0&offset=-1"), viewer)
            .await;
        assert_eq!(
            (paged["limit"].as_i64(), paged["offset"].as_i64()),
            (Some(1), Some(0))
        );
        assert_eq!(gw.delete(&one, admin).await.0, 204, "{b}");
        assert_eq!(gw.get(&one, admin).await.0, 404);
    }
}

async fn guard(server: &MockServer, route: &str, body: Value) {
    Mock::given(method("POST"))
        .and(path(route))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

/// A user in the `strict` variant gets its guards, thresholds and guard options; a control user
/// gets the organisation's; a request without a user takes part in nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_variant_changes_how_its_users_requests_are_routed() {
    let (token, trust, bias) = (
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
    );
    guard(&token, "/scan", json!({"token_count": 2})).await;
    guard(&trust, "/v1/validate", json!({"overall_score": 3.0})).await;
    // BiasGuard answers 3/10 only when told to mitigate (the variant's option).
    Mock::given(method("POST"))
        .and(path("/process"))
        .and(body_partial_json(json!({"operation": "mitigate"})))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"bias_score": 3.0, "mitigated": true})),
        )
        .with_priority(1)
        .mount(&bias)
        .await;
    guard(&bias, "/process", json!({"bias_score": 3.0})).await;
    let storage = TestStorage::embedded();
    let gw = spawn(
        storage.config.clone(),
        GatewaySettings {
            tokenguard_url: Some(token.uri()),
            trustguard_url: Some(trust.uri()),
            biasguard_url: Some(bias.uri()),
            contextguard_url: Some("http://127.0.0.1:9".into()),
            healthguard_url: Some("http://127.0.0.1:9".into()),
            ..settings()
        },
    )
    .await;
    let tokens = gw.sign_up("routing@example.com").await;
    let admin = Auth::Bearer(access(&tokens));
    let org = org_id(&gw, admin).await;
    set_tier(&storage.config, &org, "pro").await;
    let (status, created) = gw
        .post(
            EXPERIMENTS,
            admin,
            json!({
                "name": "routing",
                "variants": [
                    {"name": "control", "traffic_split": 0.5},
                    {"name": "strict", "traffic_split": 0.5, "overrides": {
                        "services": ["trustguard", "biasguard"],
                        "thresholds": {"flag": 0.1, "block": 0.25},
                        "guard_options": {"biasguard": {"operation": "mitigate"}}
                    }}
                ],
                "primary_metric": "risk"
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, _) = gw
        .post(&format!("{EXPERIMENTS}/{id}/start"), admin, json!({}))
        .await;
    assert_eq!(status, 200);

    // Find one user of each variant.
    let mut users: std::collections::HashMap<String, String> = Default::default();
    for i in 0..40 {
        let user = format!("end-user-{i}");
        let (_, a) = gw
            .post(
                "/api/v1/ab-testing/assign-user",
                admin,
                json!({"user_id": user, "experiment_id": id}),
            )
            .await;
        users
            .entry(a["variant"].as_str().unwrap().to_owned())
            .or_insert(user);
    }
    let (control, strict) = (&users["control"], &users["strict"]);
    let call = |user: Option<&str>| json!({"services": ["tokenguard", "biasguard"], "payload": {"text": "t"}, "user_id": user});

    let (status, strict_answer) = gw
        .post("/api/v1/guards/process", admin, call(Some(strict)))
        .await;
    assert_eq!(status, 200, "{strict_answer}");
    let data = &strict_answer["data"];
    let mut ran: Vec<&String> = data["results"].as_object().unwrap().keys().collect();
    ran.sort();
    assert_eq!(ran, ["biasguard", "trustguard"], "{strict_answer}");
    assert_eq!(data["results"]["biasguard"]["data"]["mitigated"], true);
    assert_eq!(data["thresholds"], json!({"flag": 0.1, "block": 0.25}));
    // 3/10 from BiasGuard is past the variant's block threshold.
    assert_eq!(data["verdict"], "block", "{strict_answer}");
    assert_eq!(
        strict_answer["metadata"]["experiments"][0]["variant"],
        "strict"
    );
    assert_eq!(
        strict_answer["metadata"]["experiments"][0]["experiment_id"],
        id.as_str()
    );

    let (status, control_answer) = gw
        .post("/api/v1/guards/process", admin, call(Some(control)))
        .await;
    assert_eq!(status, 200, "{control_answer}");
    let data = &control_answer["data"];
    let mut ran: Vec<&String> = data["results"].as_object().unwrap().keys().collect();
    ran.sort();
    assert_eq!(ran, ["biasguard", "tokenguard"]);
    assert_eq!(data["results"]["biasguard"]["data"].get("mitigated"), None);
    assert_eq!(data["verdict"], "allow", "{control_answer}");
    assert_eq!(
        control_answer["metadata"]["experiments"][0]["variant"],
        "control"
    );

    let (_, nobody) = gw.post("/api/v1/guards/process", admin, call(None)).await;
    assert_eq!(nobody["metadata"].get("experiments"), None, "{nobody}");

    // A single-guard request gets the variant's options for that guard too.
    let (status, single) = gw
        .post(
            "/api/v1/guards/process",
            admin,
            json!({"service_type": "biasguard", "payload": {"text": "t"}, "user_id": strict}),
        )
        .await;
    assert_eq!(status, 200, "{single}");
    assert_eq!(single["data"]["mitigated"], true, "{single}");
    assert_eq!(single["metadata"]["experiments"][0]["variant"], "strict");

    // Once stopped, nobody is routed by it.
    let (status, _) = gw
        .post(
            &format!("{EXPERIMENTS}/{id}/stop"),
            admin,
            json!({"status": "paused"}),
        )
        .await;
    assert_eq!(status, 200);
    let (_, after) = gw
        .post("/api/v1/guards/process", admin, call(Some(strict)))
        .await;
    assert_eq!(after["metadata"].get("experiments"), None, "{after}");
    assert!(
        after["data"]["results"].get("tokenguard").is_some(),
        "{after}"
    );
}

/// The older body `{"traffic_split": {"control": 50, "treatment": 50}}` names the variants by its
/// keys (the control first); giving it with `variants` is refused and creates nothing.
#[tokio::test(flavor = "multi_thread")]
async fn the_traffic_split_shorthand_names_the_variants() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), settings()).await;
    let owner = gw.sign_up("split@example.com").await;
    let admin = Auth::Bearer(access(&owner));
    let org = org_id(&gw, admin).await;
    set_tier(&storage.config, &org, "pro").await;

    let shorthand = json!({
        "name": "older clients",
        "traffic_split": {"treatment": 25, "control": 75},
        "primary_metric": "latency_ms",
    });
    let mut both = shorthand.clone();
    both["variants"] = experiment("x")["variants"].clone();
    let (status, e) = gw.post(EXPERIMENTS, admin, both).await;
    assert_eq!(status, 422, "{e}");
    let mut neither = shorthand.clone();
    neither.as_object_mut().unwrap().remove("traffic_split");
    let (status, e) = gw.post(EXPERIMENTS, admin, neither).await;
    assert_eq!(status, 422, "{e}");
    let mut bad = shorthand.clone();
    bad["traffic_split"] = json!({"control": 50, "treatment": 60});
    assert_eq!(gw.post(EXPERIMENTS, admin, bad).await.0, 422);
    assert_eq!(total(&gw, admin).await, 0);

    let (status, created) = gw.post(EXPERIMENTS, admin, shorthand).await;
    assert_eq!(status, 201, "{created}");
    let variants: Vec<(&str, f64)> = created["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["name"].as_str().unwrap(),
                v["traffic_split"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(variants, [("control", 0.75), ("treatment", 0.25)]);

    // A draft's variants may be replaced the same way.
    let id = created["id"].as_str().unwrap();
    let (status, updated) = gw
        .patch(
            &format!("{EXPERIMENTS}/{id}"),
            admin,
            json!({"traffic_split": {"control": 50, "a": 25, "b": 25}}),
        )
        .await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(updated["variants"].as_array().unwrap().len(), 3);
}
