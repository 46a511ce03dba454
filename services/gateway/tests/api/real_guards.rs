//! The gateway in front of the real guards (their own code over real HTTP, started in process on
//! free ports): text goes through, a guard that dies is a 503 with its circuit opening, and traffic
//! flows again once it is back.

use std::time::Duration;

use cg_gateway::config::GatewaySettings;
use cg_service_kit::testing::server_config;
use cg_storage::testing::TestStorage;
use serde_json::json;

use crate::helpers::{Auth, access, set_tier, settings, spawn};

async fn start_tokenguard(port: u16) -> cg_service_kit::Application {
    let storage = TestStorage::embedded();
    let mut server = server_config();
    server.cg_port = Some(port);
    cg_tokenguard::startup::build(cg_tokenguard::config::Config {
        server,
        storage: storage.config.clone(),
        tokenguard: Default::default(),
    })
    .await
    .expect("start tokenguard")
}

#[tokio::test(flavor = "multi_thread")]
async fn text_flows_through_tokenguard_and_survives_its_death() {
    let guard = start_tokenguard(0).await;
    let port = guard.port();
    let handle = guard.handle();
    let running = tokio::spawn(guard.run_until_stopped());

    let storage = TestStorage::embedded();
    let gw = spawn(
        storage.config.clone(),
        GatewaySettings {
            tokenguard_url: Some(format!("http://127.0.0.1:{port}")),
            circuit_breaker_cooldown_secs: Some(1.0),
            ..settings()
        },
    )
    .await;
    let tokens = gw.sign_up("real@example.com").await;
    let auth = Auth::Bearer(access(&tokens));
    let body = json!({"service_type": "tokenguard", "payload": {"text": "hello world", "model": "gpt-4o"}});

    let (status, answer) = gw.post("/api/v1/guards/process", auth, body.clone()).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["token_count"], 2);
    assert_eq!(answer["data"]["encoding"], "o200k_base");

    // Kill it: unreachable → 503; five failures open the circuit.
    handle.stop(false).await;
    let _ = running.await;
    for _ in 0..5 {
        let (status, e) = gw.post("/api/v1/guards/process", auth, body.clone()).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (503, Some("guard_unavailable")),
            "{e}"
        );
    }
    let (_, e) = gw.post("/api/v1/guards/process", auth, body.clone()).await;
    assert_eq!(e["error"]["details"]["circuit"], "open", "{e}");

    // Back on the same port: after the cooldown one probe closes the circuit.
    let revived = start_tokenguard(port).await;
    let _revived = tokio::spawn(revived.run_until_stopped());
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, answer) = gw.post("/api/v1/guards/process", auth, body).await;
    assert_eq!(status, 200, "{answer}");
    let (_, health) = gw.app.get_json("/health").await;
    assert_eq!(health["circuit_breakers"]["tokenguard"]["state"], "closed");
}

/// TrustGuard's verdict reaches the caller through the gateway, with the organisation recorded.
#[tokio::test(flavor = "multi_thread")]
async fn trustguard_grounding_through_the_gateway() {
    let guard_storage = TestStorage::embedded();
    let guard = cg_trustguard::startup::build(cg_trustguard::config::Config {
        server: server_config(),
        storage: guard_storage.config.clone(),
        trustguard: Default::default(),
    })
    .await
    .expect("start trustguard");
    let port = guard.port();
    let _running = tokio::spawn(guard.run_until_stopped());

    let storage = TestStorage::embedded();
    let gw = spawn(
        storage.config.clone(),
        GatewaySettings {
            trustguard_url: Some(format!("http://127.0.0.1:{port}")),
            ..settings()
        },
    )
    .await;
    let tokens = gw.sign_up("trust@example.com").await;
    let auth = Auth::Bearer(access(&tokens));
    let context = "Marie Curie won the Nobel Prize in Physics in 1903 and in Chemistry in 1911.";
    let (status, answer) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"service_type": "trustguard", "payload": {"text": "She won the Nobel Prize in Medicine in 1921 in Oslo.", "context": context}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["data"]["risk_level"], "high", "{answer}");
    assert!(
        answer["recommendations"]
            .as_array()
            .is_some_and(|r| !r.is_empty()),
        "{answer}"
    );
    let (_, all) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"services": ["trustguard"], "payload": {"text": "She won the Nobel Prize in Physics in 1903.", "context": context}}),
        )
        .await;
    assert_eq!(all["data"]["verdict"], "allow", "{all}");
}

/// A training sample with hidden characters is flagged by HealthGuard through the gateway, and
/// the result is stored under the caller's organisation.
#[tokio::test(flavor = "multi_thread")]
async fn healthguard_flags_poisoned_samples_through_the_gateway() {
    let guard_storage = TestStorage::embedded();
    let guard = cg_healthguard::startup::build(cg_healthguard::config::Config {
        server: server_config(),
        storage: guard_storage.config.clone().for_healthguard(),
        healthguard: Default::default(),
    })
    .await
    .expect("start healthguard");
    let port = guard.port();
    let _running = tokio::spawn(guard.run_until_stopped());

    let storage = TestStorage::embedded();
    let gw = spawn(
        storage.config.clone(),
        GatewaySettings {
            healthguard_url: Some(format!("http://127.0.0.1:{port}")),
            ..settings()
        },
    )
    .await;
    let tokens = gw.sign_up("health@example.com").await;
    let auth = Auth::Bearer(access(&tokens));
    let (_, org) = gw.get("/api/v1/organizations/current", auth).await;
    set_tier(&storage.config, org["id"].as_str().unwrap(), "pro").await;
    let (status, answer) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"service_type": "healthguard", "payload": {"text": "Great product, would buy again.\u{200B}\u{200C}\u{200B}"}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(
        answer["data"]["results"][0]["is_poisoned"], true,
        "{answer}"
    );
    assert_eq!(
        answer["data"]["results"][0]["kind"], "zero_width",
        "{answer}"
    );
    let (_, clean) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"services": ["healthguard"], "payload": {"samples": [{"id": "a", "content": "The museum opens at nine."}]}}),
        )
        .await;
    assert_eq!(clean["data"]["verdict"], "allow", "{clean}");

    let db = cg_storage::Db::connect(
        &guard_storage
            .config
            .clone()
            .for_healthguard()
            .resolve(cg_storage::Needs {
                database: true,
                cache: false,
                blobs: false,
            })
            .expect("config")
            .database
            .expect("database"),
    )
    .await
    .expect("connect");
    let stored = cg_storage::models::PoisonResult::count(&mut db.get().await.expect("conn").conn())
        .await
        .expect("count");
    assert_eq!(stored, 2);
}

/// Conversation turns reach ContextGuard through the gateway, kept per organisation: the drift of
/// an off-topic turn shows in the answer.
#[tokio::test(flavor = "multi_thread")]
async fn contextguard_conversation_through_the_gateway() {
    let guard_storage = TestStorage::embedded();
    let guard = cg_contextguard::startup::build(cg_contextguard::config::Config {
        server: server_config(),
        storage: guard_storage.config.clone().for_contextguard(),
        contextguard: Default::default(),
    })
    .await
    .expect("start contextguard");
    let port = guard.port();
    let _running = tokio::spawn(guard.run_until_stopped());

    let storage = TestStorage::embedded();
    let gw = spawn(
        storage.config.clone(),
        GatewaySettings {
            contextguard_url: Some(format!("http://127.0.0.1:{port}")),
            ..settings()
        },
    )
    .await;
    let tokens = gw.sign_up("context@example.com").await;
    let auth = Auth::Bearer(access(&tokens));
    let (_, org) = gw.get("/api/v1/organizations/current", auth).await;
    set_tier(&storage.config, org["id"].as_str().unwrap(), "pro").await;
    let turns = [
        "The city council approved the new tram line to the harbour district.",
        "Construction of the harbour tram line starts in March and the council expects it to take two years.",
        "Whisk the eggs with sugar, fold in the flour and bake the sponge cake for twenty-five minutes.",
    ];
    let mut last = serde_json::Value::Null;
    for text in turns {
        let (status, answer) = gw
            .post(
                "/api/v1/guards/process",
                auth,
                json!({"service_type": "contextguard", "payload": {"text": text, "session_id": "trip-1"}}),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        last = answer;
    }
    assert_eq!(last["data"]["session_turns"], 3, "{last}");
    assert_eq!(last["data"]["drift_detected"], true, "{last}");

    // Another organisation's caller starts from nothing under the same session id.
    let other = gw.sign_up("elsewhere@example.com").await;
    let other_auth = Auth::Bearer(access(&other));
    let (_, other_org) = gw.get("/api/v1/organizations/current", other_auth).await;
    set_tier(&storage.config, other_org["id"].as_str().unwrap(), "pro").await;
    let (_, theirs) = gw
        .post(
            "/api/v1/guards/process",
            other_auth,
            json!({"service_type": "contextguard", "payload": {"text": turns[0], "session_id": "trip-1"}}),
        )
        .await;
    assert_eq!(theirs["data"]["session_turns"], 1, "{theirs}");
}

/// BiasGuard behind the gateway, sharing its database: an admin's policy denies a biased text,
/// the audit row and the violation it leaves are listed and the violation resolved, and another
/// organisation sees none of it.
#[tokio::test(flavor = "multi_thread")]
async fn biasguard_policy_denies_and_its_violation_is_resolved_through_the_gateway() {
    for storage in TestStorage::all().await {
        let mode = storage.label;
        let guard = cg_biasguard::startup::build(cg_biasguard::config::Config {
            server: server_config(),
            storage: storage.config.clone(),
            biasguard: cg_biasguard::config::Settings {
                policy_ttl_secs: Some(0.05),
                ..Default::default()
            },
        })
        .await
        .expect("start biasguard");
        let port = guard.port();
        let _running = tokio::spawn(guard.run_until_stopped());
        let gw = spawn(
            storage.config.clone(),
            GatewaySettings {
                biasguard_url: Some(format!("http://127.0.0.1:{port}")),
                ..settings()
            },
        )
        .await;
        let alice = gw.sign_up("alice@example.com").await;
        let a = Auth::Bearer(access(&alice));
        let mallory = gw.sign_up("mallory@example.com").await;
        let m = Auth::Bearer(access(&mallory));

        let (status, policy) = gw
            .post(
                "/api/v1/biasguard/policies",
                a,
                json!({"name": "no stereotypes", "enforcement_type": "compliance",
                       "rules": {"max_bias_score": 4.0}}),
            )
            .await;
        assert_eq!(status, 201, "{mode}: {policy}");
        tokio::time::sleep(Duration::from_millis(100)).await;

        let ask = json!({"service_type": "biasguard",
                         "payload": {"text": "All women are too emotional to lead."}});
        let (status, answer) = gw.post("/api/v1/guards/process", a, ask.clone()).await;
        assert_eq!(status, 200, "{mode}: {answer}");
        assert_eq!(answer["data"]["decision"], "deny", "{mode}: {answer}");
        // Through the multi-guard path the denial is a block verdict.
        let (_, multi) = gw
            .post(
                "/api/v1/guards/process",
                a,
                json!({"services": ["biasguard"], "payload": {"text": "Every woman is too emotional to lead."}}),
            )
            .await;
        assert_eq!(multi["data"]["verdict"], "block", "{mode}: {multi}");
        // Mallory's organisation has no policy: the same text is not denied by policy.
        let (_, theirs) = gw.post("/api/v1/guards/process", m, ask).await;
        assert_eq!(theirs["data"]["decision"], "allow", "{mode}: {theirs}");

        let (status, audit) = gw.get("/api/v1/biasguard/audit", a).await;
        assert_eq!(status, 200, "{mode}: {audit}");
        let rows = audit["audit_logs"].as_array().unwrap();
        assert_eq!(rows.len(), 2, "{mode}: {audit}");
        assert!(
            rows.iter().all(|r| r["decision"] == "deny"),
            "{mode}: {audit}"
        );
        let (_, listed) = gw
            .get("/api/v1/biasguard/violations?resolved=false", a)
            .await;
        assert_eq!(listed["total"], 2, "{mode}: {listed}");
        // Newest first: the oldest is the first call's.
        let violation = &listed["violations"][1];
        assert_eq!(violation["policy_id"], policy["id"], "{mode}: {listed}");
        assert_eq!(violation["audit_log_id"], rows[1]["id"], "{mode}: {listed}");
        let id = violation["id"].as_str().unwrap();

        // Mallory sees none of it and cannot resolve it.
        let (_, their_list) = gw.get("/api/v1/biasguard/violations", m).await;
        assert_eq!(their_list["total"], 0, "{mode}: {their_list}");
        let (_, their_audit) = gw.get("/api/v1/biasguard/audit", m).await;
        assert_eq!(
            their_audit["audit_logs"].as_array().unwrap().len(),
            1,
            "{mode}: only their own call"
        );
        let (status, _) = gw
            .get(&format!("/api/v1/biasguard/violations/{id}"), m)
            .await;
        assert_eq!(status, 404, "{mode}");
        let resolve = format!("/api/v1/biasguard/violations/{id}/resolve");
        let (status, _) = gw.post(&resolve, m, json!({"notes": "mine now"})).await;
        assert_eq!(status, 404, "{mode}");

        let (status, resolved) = gw
            .post(&resolve, a, json!({"notes": "rewritten before sending"}))
            .await;
        assert_eq!(status, 200, "{mode}: {resolved}");
        assert_eq!(resolved["resolved"], true);
        let (_, open) = gw
            .get("/api/v1/biasguard/violations?resolved=false", a)
            .await;
        assert_eq!(open["total"], 1, "{mode}: {open}");
    }
}
