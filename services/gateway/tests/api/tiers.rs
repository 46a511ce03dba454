//! Self-hosted plans: the tier of new organisations (`DEFAULT_TIER`), tiers created and edited by
//! platform admins, and an organisation moved to another tier, on both storage backends.

use cg_gateway::config::GatewaySettings;
use cg_storage::testing::TestStorage;
use serde_json::{Value, json};

use crate::helpers::{Auth, Gateway, access, make_superuser, settings, spawn};

const TIERS: &str = "/api/v1/subscriptions/tiers";

async fn current_tier(gw: &Gateway, auth: Auth<'_>) -> Value {
    let (status, org) = gw.get("/api/v1/organizations/current", auth).await;
    assert_eq!(status, 200, "{org}");
    org["tier"].clone()
}

async fn tier_names(gw: &Gateway, auth: Auth<'_>) -> Vec<String> {
    let (status, tiers) = gw.get(TIERS, auth).await;
    assert_eq!(status, 200, "{tiers}");
    tiers["tiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

/// What a request for ContextGuard gets: refused by the plan (403) or let through to a guard
/// that is not running here (503).
async fn contextguard_call(gw: &Gateway, auth: Auth<'_>) -> (u16, Value) {
    gw.post(
        "/api/v1/guards/process",
        auth,
        json!({"service_type": "contextguard", "payload": {"text": "hello", "session_id": "s"}}),
    )
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn new_organisations_get_the_configured_tier() {
    for storage in TestStorage::all().await {
        let b = storage.label;
        let gw = spawn(
            storage.config.clone(),
            GatewaySettings {
                default_tier: Some("pro".into()),
                ..settings()
            },
        )
        .await;
        let user = gw.sign_up("pro@example.com").await;
        let auth = Auth::Bearer(access(&user));
        assert_eq!(current_tier(&gw, auth).await, "pro", "{b}");
        let (status, second) = gw
            .post("/api/v1/organizations", auth, json!({"name": "Second"}))
            .await;
        assert_eq!(status, 201, "{b}: {second}");
        let (status, org) = gw
            .get_in(
                "/api/v1/organizations/current",
                auth,
                second["id"].as_str().unwrap(),
            )
            .await;
        assert_eq!((status, org["tier"].as_str()), (200, Some("pro")), "{b}");

        // Without DEFAULT_TIER: free, as before.
        let plain = spawn(storage.config.clone(), settings()).await;
        let user = plain.sign_up("free@example.com").await;
        assert_eq!(
            current_tier(&plain, Auth::Bearer(access(&user))).await,
            "free"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_default_tier_that_does_not_exist_stops_start_up() {
    let storage = TestStorage::embedded();
    let err = cg_gateway::startup::build(cg_gateway::config::Config {
        server: cg_service_kit::testing::server_config(),
        storage: storage.config.clone(),
        gateway: GatewaySettings {
            default_tier: Some("platinum".into()),
            ..settings()
        },
    })
    .await
    .expect_err("an unknown DEFAULT_TIER must stop start-up");
    let message = format!("{err:#}");
    assert!(
        message.contains("DEFAULT_TIER") && message.contains("free, pro, enterprise"),
        "{message}"
    );
    assert!(
        err.chain()
            .any(|c| c.is::<cg_service_kit::config::ConfigError>()),
        "exits 78 like every configuration error: {message}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn platform_admins_create_and_edit_tiers_and_move_organisations() {
    for storage in TestStorage::all().await {
        let b = storage.label;
        let gw = spawn(storage.config.clone(), settings()).await;
        let root = gw.sign_up("root@example.com").await;
        let customer = gw.sign_up("customer@example.com").await;
        make_superuser(&storage.config, "root@example.com").await;
        let (root, customer) = (Auth::Bearer(access(&root)), Auth::Bearer(access(&customer)));
        let (_, org) = gw.get("/api/v1/organizations/current", customer).await;
        let org_id = org["id"].as_str().unwrap().to_owned();
        let subscription = format!("/api/v1/organizations/{org_id}/subscription");
        let team = json!({
            "name": "team",
            "display_name": "Team",
            "requests_per_minute": 300,
            "requests_per_month": 50000,
            "monthly_budget_usd": 25.5,
            "guards_allowed": ["tokenguard", "contextguard"],
            "price_usd_monthly": 29,
            "features": {"ab_testing": false},
        });

        // Only a platform admin: an organisation's owner is not one.
        for (status, e) in [
            gw.post(TIERS, customer, team.clone()).await,
            gw.patch(
                &format!("{TIERS}/free"),
                customer,
                json!({"requests_per_minute": 1}),
            )
            .await,
            gw.put(&subscription, customer, json!({"tier": "enterprise"}))
                .await,
        ] {
            assert_eq!(status, 403, "{b}: {e}");
        }
        assert_eq!(gw.post(TIERS, Auth::None, team.clone()).await.0, 401);

        // Bad tiers are refused and create nothing.
        let before = tier_names(&gw, root).await;
        for bad in [
            json!({"name": "Team!", "requests_per_minute": 1, "requests_per_month": 1, "guards_allowed": []}),
            json!({"name": "team", "requests_per_minute": 0, "requests_per_month": 1, "guards_allowed": []}),
            json!({"name": "team", "requests_per_minute": 1, "requests_per_month": 1, "guards_allowed": ["nope"]}),
            json!({"name": "team", "requests_per_minute": 1, "requests_per_month": 1}),
            json!({"name": "team", "requests_per_minute": 1, "requests_per_month": 1, "guards_allowed": [], "colour": "red"}),
            json!({"requests_per_minute": 1, "requests_per_month": 1, "guards_allowed": []}),
        ] {
            let (status, e) = gw.post(TIERS, root, bad.clone()).await;
            assert_eq!(status, 422, "{b}: {bad} → {e}");
            assert_eq!(e["error"]["code"], "validation_error", "{b}: {e}");
        }
        assert_eq!(tier_names(&gw, root).await, before, "{b}");

        let (status, created) = gw.post(TIERS, root, team.clone()).await;
        assert_eq!(status, 201, "{b}: {created}");
        assert_eq!(created["monthly_budget_usd"], 25.5, "{b}");
        assert_eq!(created["price_usd_monthly"], 29.0, "{b}");
        assert_eq!(
            created["guards_allowed"],
            json!(["tokenguard", "contextguard"])
        );
        let (status, e) = gw.post(TIERS, root, team.clone()).await;
        assert_eq!(status, 409, "{b}: {e}");
        assert!(
            tier_names(&gw, customer).await.contains(&"team".to_owned()),
            "{b}"
        );

        // On the free tier ContextGuard is not in the plan; on `team` it is (the guard is not
        // running here, so the call gets as far as the guard: 503).
        let (status, e) = contextguard_call(&gw, customer).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (403, Some("guard_not_in_plan")),
            "{b}: {e}"
        );
        for (body, status) in [
            (json!({"tier": "platinum"}), 422),
            (json!({"tier": "team", "extra": 1}), 422),
        ] {
            let (got, e) = gw.put(&subscription, root, body).await;
            assert_eq!(got, status, "{b}: {e}");
        }
        let (status, e) = gw
            .put(
                &format!(
                    "/api/v1/organizations/{}/subscription",
                    cg_storage::sql_types::Id::new()
                ),
                root,
                json!({"tier": "team"}),
            )
            .await;
        assert_eq!(status, 404, "{b}: {e}");
        let (status, moved) = gw.put(&subscription, root, json!({"tier": "team"})).await;
        assert_eq!(status, 200, "{b}: {moved}");
        assert_eq!(moved["tier"]["name"], "team", "{b}");
        assert_eq!(moved["status"], "active", "{b}");
        assert_eq!(current_tier(&gw, customer).await, "team", "{b}");
        let (status, e) = contextguard_call(&gw, customer).await;
        assert_eq!(status, 503, "{b}: {e}");

        // Edits apply at once on this replica: ContextGuard leaves the plan again.
        let (status, e) = gw
            .patch(&format!("{TIERS}/team"), root, json!({"name": "crew"}))
            .await;
        assert_eq!(status, 422, "{b}: {e}");
        let (status, e) = gw
            .patch(
                &format!("{TIERS}/nosuch"),
                root,
                json!({"requests_per_minute": 5}),
            )
            .await;
        assert_eq!(status, 404, "{b}: {e}");
        let (status, edited) = gw
            .patch(
                &format!("{TIERS}/team"),
                root,
                json!({"guards_allowed": ["tokenguard"], "requests_per_minute": 120}),
            )
            .await;
        assert_eq!(status, 200, "{b}: {edited}");
        assert_eq!(edited["requests_per_minute"], 120, "{b}");
        assert_eq!(edited["display_name"], "Team", "{b}: other fields kept");
        let (status, e) = contextguard_call(&gw, customer).await;
        assert_eq!(status, 403, "{b}: {e}");

        // A tier that is not offered cannot be assigned, and the default one cannot be retired.
        let (status, e) = gw
            .patch(&format!("{TIERS}/free"), root, json!({"is_active": false}))
            .await;
        assert_eq!(status, 409, "{b}: {e}");
        let (status, _) = gw
            .patch(
                &format!("{TIERS}/enterprise"),
                root,
                json!({"is_active": false}),
            )
            .await;
        assert_eq!(status, 200, "{b}");
        let (status, e) = gw
            .put(&subscription, root, json!({"tier": "enterprise"}))
            .await;
        assert_eq!(status, 409, "{b}: {e}");
        assert!(
            !tier_names(&gw, customer)
                .await
                .contains(&"enterprise".to_owned()),
            "{b}"
        );
    }
}
