//! Routing to the guards, against fake guards (wiremock) that answer as the guard contracts say;
//! the real guard binaries join these tests as each guard gains its analysis endpoint.

use std::time::Duration;

use cg_gateway::config::GatewaySettings;
use cg_service_kit::testing::TEST_INTERNAL_TOKEN;
use cg_storage::testing::TestStorage;
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Auth, Gateway, access, set_tier, settings, spawn};

struct Guards {
    token: MockServer,
    trust: MockServer,
    context: MockServer,
    bias: MockServer,
    health: MockServer,
}

impl Guards {
    async fn start() -> Self {
        Self {
            token: MockServer::start().await,
            trust: MockServer::start().await,
            context: MockServer::start().await,
            bias: MockServer::start().await,
            health: MockServer::start().await,
        }
    }

    fn settings(&self) -> GatewaySettings {
        GatewaySettings {
            tokenguard_url: Some(self.token.uri()),
            trustguard_url: Some(self.trust.uri()),
            contextguard_url: Some(self.context.uri()),
            biasguard_url: Some(self.bias.uri()),
            healthguard_url: Some(self.health.uri()),
            circuit_breaker_failures: Some(5),
            circuit_breaker_cooldown_secs: Some(1.0),
            guard_health_cache_secs: Some(30.0),
            ..settings()
        }
    }
}

async fn answer(server: &MockServer, route: &str, body: Value) {
    Mock::given(method("POST"))
        .and(path(route))
        .and(header("x-internal-token", TEST_INTERNAL_TOKEN))
        .respond_with(ResponseTemplate::new(200).set_body_json(body))
        .mount(server)
        .await;
}

/// A gateway in front of the fake guards, with a user on the pro tier (all five guards).
async fn setup(guards: &Guards) -> (Gateway, TestStorage, Value) {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), guards.settings()).await;
    let tokens = gw.sign_up("ops@example.com").await;
    let (_, org) = gw
        .get(
            "/api/v1/organizations/current",
            Auth::Bearer(access(&tokens)),
        )
        .await;
    set_tier(&storage.config, org["id"].as_str().unwrap(), "pro").await;
    (gw, storage, tokens)
}

#[tokio::test(flavor = "multi_thread")]
async fn each_guard_gets_its_own_request_with_the_internal_headers() {
    let guards = Guards::start().await;
    answer(
        &guards.token,
        "/scan",
        json!({"token_count": 3, "confidence_score": 0.9, "recommendation": "keep"}),
    )
    .await;
    answer(
        &guards.trust,
        "/v1/validate",
        json!({"overall_score": 2.0, "trust_score": 0.8}),
    )
    .await;
    answer(
        &guards.context,
        "/analyze",
        json!({"drift_detected": false, "confidence": 0.1}),
    )
    .await;
    answer(
        &guards.bias,
        "/process",
        json!({"bias_score": 1.0, "warnings": ["mild"], "metadata": {"v": 1}}),
    )
    .await;
    answer(
        &guards.health,
        "/analyze",
        json!({"results": [{"sample_id": "0", "is_poisoned": false}]}),
    )
    .await;
    let (gw, _storage, tokens) = setup(&guards).await;
    let auth = Auth::Bearer(access(&tokens));

    for (service, server, field) in [
        ("tokenguard", &guards.token, "content"),
        ("trustguard", &guards.trust, "content"),
        ("contextguard", &guards.context, "current_code"),
        ("biasguard", &guards.bias, "text"),
    ] {
        let (status, body) = gw
            .post(
                "/api/v1/guards/process",
                auth,
                json!({"service_type": service, "payload": {"text": "the text"}}),
            )
            .await;
        assert_eq!(status, 200, "{service}: {body}");
        assert_eq!(
            (body["success"].as_bool(), body["service_used"].as_str()),
            (Some(true), Some(service))
        );
        let seen = server.received_requests().await.unwrap();
        let last = seen.last().unwrap();
        let sent: Value = serde_json::from_slice(&last.body).unwrap();
        assert_eq!(sent[field], "the text", "{service}: {sent}");
        assert_eq!(
            last.headers["x-request-id"].to_str().unwrap(),
            body["request_id"].as_str().unwrap()
        );
        let traceparent = last.headers["traceparent"].to_str().unwrap();
        assert!(
            traceparent.starts_with("00-") && traceparent.len() == 55,
            "{traceparent}"
        );
    }
    // Fields lifted from the guard's answer.
    let (_, bias) = gw
        .post(
            "/api/v1/guards/scan",
            auth,
            json!({"service_type": "biasguard", "payload": {"content": "x"}}),
        )
        .await;
    assert_eq!(
        (bias["warnings"][0].as_str(), bias["metadata"]["v"].as_i64()),
        (Some("mild"), Some(1))
    );
    let (_, token) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"service_type": "tokenguard", "payload": {"text": "x"}}),
        )
        .await;
    assert_eq!(token["confidence_score"], 0.9);
    assert_eq!(token["recommendations"][0], "keep");
    // HealthGuard gets a one-sample batch when given plain text.
    let (status, _) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"service_type": "healthguard", "payload": {"text": "sample"}}),
        )
        .await;
    assert_eq!(status, 200);
    let sent: Value =
        serde_json::from_slice(&guards.health.received_requests().await.unwrap()[0].body).unwrap();
    assert_eq!(sent["samples"][0]["content"], "sample");
}

#[tokio::test(flavor = "multi_thread")]
async fn validation_rules_answer_400_413_and_403() {
    let guards = Guards::start().await;
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), guards.settings()).await;
    let tokens = gw.sign_up("v@example.com").await;
    let auth = Auth::Bearer(access(&tokens));

    let (status, unknown) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"service_type": "fooguard", "payload": {"text": "x"}}),
        )
        .await;
    assert_eq!(status, 400, "{unknown}");
    assert_eq!(unknown["error"]["code"], "unknown_service");
    assert_eq!(
        unknown["error"]["details"]["valid_services"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    let (status, empty) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"service_type": "biasguard", "payload": {}}),
        )
        .await;
    assert_eq!(
        (status, empty["error"]["code"].as_str()),
        (400, Some("invalid_payload"))
    );
    let mut deep = json!("x");
    for _ in 0..11 {
        deep = json!({"d": deep});
    }
    let (status, too_deep) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"service_type": "biasguard", "payload": deep}),
        )
        .await;
    assert_eq!(
        (status, too_deep["error"]["code"].as_str()),
        (400, Some("payload_too_deep"))
    );
    let big = "x".repeat(11 * 1024 * 1024);
    let (status, _) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"service_type": "biasguard", "payload": {"text": big}}),
        )
        .await;
    assert_eq!(status, 413);
    // The free tier has no HealthGuard.
    let (status, plan) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"service_type": "healthguard", "payload": {"text": "x"}}),
        )
        .await;
    assert_eq!(
        (status, plan["error"]["code"].as_str()),
        (403, Some("guard_not_in_plan")),
        "{plan}"
    );
    // Nothing reached a guard.
    assert!(guards.bias.received_requests().await.unwrap().is_empty());
    assert_eq!(
        gw.post(
            "/api/v1/guards/process",
            Auth::None,
            json!({"service_type": "biasguard", "payload": {"text": "x"}})
        )
        .await
        .0,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_map_to_502_503_504_and_the_circuit_opens_then_recovers() {
    let guards = Guards::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/validate"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {"code": "boom"}})))
        .mount(&guards.trust)
        .await;
    Mock::given(method("POST"))
        .and(path("/analyze"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({}))
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&guards.context)
        .await;
    Mock::given(method("POST"))
        .and(path("/process"))
        .respond_with(ResponseTemplate::new(422).set_body_json(
            json!({"error": {"code": "validation_error", "message": "text missing"}}),
        ))
        .mount(&guards.bias)
        .await;
    let mut settings = guards.settings();
    settings.tokenguard_url = Some("http://127.0.0.1:9".into()); // nothing listens there
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), settings).await;
    let tokens = gw.sign_up("f@example.com").await;
    let (_, org) = gw
        .get(
            "/api/v1/organizations/current",
            Auth::Bearer(access(&tokens)),
        )
        .await;
    set_tier(&storage.config, org["id"].as_str().unwrap(), "pro").await;
    let auth = Auth::Bearer(access(&tokens));
    let call = |service: &'static str, timeout: f64| {
        gw.post(
            "/api/v1/guards/process",
            auth,
            json!({"service_type": service, "payload": {"text": "x"}, "timeout": timeout}),
        )
    };

    let (status, e) = call("trustguard", 10.0).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (502, Some("guard_failed")),
        "{e}"
    );
    let (status, e) = call("contextguard", 0.5).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (504, Some("guard_timeout")),
        "{e}"
    );
    let (status, e) = call("tokenguard", 5.0).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (503, Some("guard_unavailable")),
        "{e}"
    );
    let (status, e) = call("biasguard", 5.0).await;
    assert_eq!(
        (status, e["error"]["code"].as_str()),
        (422, Some("guard_rejected")),
        "{e}"
    );
    assert_eq!(
        e["error"]["details"]["guard_error"]["message"],
        "text missing"
    );

    // Four more failures open TrustGuard's circuit; the next call is refused without reaching it.
    for _ in 0..4 {
        assert_eq!(call("trustguard", 10.0).await.0, 502);
    }
    let reached = guards.trust.received_requests().await.unwrap().len();
    let (status, e) = call("trustguard", 10.0).await;
    assert_eq!(
        (status, e["error"]["details"]["circuit"].as_str()),
        (503, Some("open")),
        "{e}"
    );
    assert_eq!(
        guards.trust.received_requests().await.unwrap().len(),
        reached,
        "an open circuit called the guard"
    );
    let (_, health) = gw.app.get_json("/health").await;
    assert_eq!(
        health["circuit_breakers"]["trustguard"]["state"], "open",
        "{health}"
    );

    // The guard recovers; after the cooldown one probe closes the circuit.
    guards.trust.reset().await;
    answer(&guards.trust, "/v1/validate", json!({"overall_score": 1.0})).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(call("trustguard", 10.0).await.0, 200);
    let (_, health) = gw.app.get_json("/health").await;
    assert_eq!(health["circuit_breakers"]["trustguard"]["state"], "closed");
}

#[tokio::test(flavor = "multi_thread")]
async fn several_guards_in_parallel_give_one_verdict() {
    let guards = Guards::start().await;
    answer(&guards.token, "/scan", json!({"token_count": 3})).await;
    answer(&guards.trust, "/v1/validate", json!({"overall_score": 3.0})).await;
    answer(
        &guards.context,
        "/analyze",
        json!({"drift_detected": false}),
    )
    .await;
    answer(&guards.bias, "/process", json!({"bias_score": 8.5})).await;
    Mock::given(method("POST"))
        .and(path("/analyze"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&guards.health)
        .await;
    let (gw, _storage, tokens) = setup(&guards).await;
    let auth = Auth::Bearer(access(&tokens));

    let (status, all) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"service_type": "all", "payload": {"text": "x"}}),
        )
        .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["data"]["verdict"], "block", "bias 8.5/10 ≥ 0.8: {all}");
    assert_eq!(all["success"], false);
    assert_eq!(all["fallback_used"], true);
    assert_eq!(all["data"]["services_failed"], json!(["healthguard"]));
    assert_eq!(all["data"]["results"]["trustguard"]["risk"], 0.3);

    let (status, some) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"services": ["trustguard", "tokenguard"], "payload": {"text": "x"}}),
        )
        .await;
    assert_eq!(
        (status, some["data"]["verdict"].as_str()),
        (200, Some("allow")),
        "{some}"
    );
    assert_eq!(some["success"], true);

    // Without fallback, one failed guard fails the request.
    let (status, _) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"service_type": "all", "payload": {"text": "x"}, "fallback_enabled": false}),
        )
        .await;
    assert_eq!(status, 502);

    // The organisation's thresholds decide: with block at 0.9, 0.85 is a flag.
    let (status, _) = gw
        .send(
            gw.app
                .client
                .put(format!("{}/api/v1/organizations/current", gw.app.address))
                .bearer_auth(access(&tokens))
                .json(&json!({"settings": {"verdict": {"flag": 0.5, "block": 0.9}}})),
        )
        .await;
    assert_eq!(status, 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (_, flagged) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"services": ["biasguard"], "payload": {"text": "x"}}),
        )
        .await;
    assert_eq!(flagged["data"]["verdict"], "flag", "{flagged}");
}

#[tokio::test(flavor = "multi_thread")]
async fn guard_health_is_cached_and_discovery_lists_the_guards() {
    let guards = Guards::start().await;
    for server in [&guards.token, &guards.trust, &guards.context, &guards.bias] {
        Mock::given(method("GET"))
            .and(path("/health"))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"status": "healthy", "version": "1"})),
            )
            .expect(1)
            .mount(server)
            .await;
    }
    Mock::given(method("GET"))
        .and(path("/health"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({"status": "unhealthy"})))
        .mount(&guards.health)
        .await;
    let (gw, _storage, tokens) = setup(&guards).await;
    let auth = Auth::Bearer(access(&tokens));

    let (status, all) = gw.get("/api/v1/guards/health", auth).await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["biasguard"]["status"], "healthy");
    assert_eq!(all["healthguard"]["status"], "unhealthy");
    let (_, agg) = gw.get("/api/v1/guards/health/aggregated", auth).await;
    assert_eq!(
        (
            agg["overall_status"].as_str(),
            agg["services_healthy"].as_u64(),
            agg["services_unhealthy"].as_u64()
        ),
        (Some("degraded"), Some(4), Some(1)),
        "{agg}"
    );
    let (status, one) = gw.get("/api/v1/guards/health/trustguard", auth).await;
    assert_eq!(
        (status, one["service_name"].as_str()),
        (200, Some("trustguard"))
    );
    assert_eq!(gw.get("/api/v1/guards/health/bad!name", auth).await.0, 400);
    assert_eq!(
        gw.get("/api/v1/guards/health/nosuchguard", auth).await.0,
        404
    );
    let (_, services) = gw.get("/api/v1/guards/services", auth).await;
    assert_eq!(
        (
            services["total_services"].as_u64(),
            services["healthy_services"].as_u64()
        ),
        (Some(5), Some(4))
    );
    assert_eq!(
        services["services"]["tokenguard"]["base_url"]
            .as_str()
            .unwrap()
            .trim_end_matches('/'),
        guards.token.uri()
    );
    // Each healthy guard was asked once: every later answer came from the cache (wiremock checks
    // `expect(1)` when the servers drop).
}

/// The budget reservation made with the rate-limit check is given back when the request goes no
/// further: a refused payload or an unreadable body leaves the month's spending where it was
/// once the leases' unused calls are back.
#[tokio::test(flavor = "multi_thread")]
async fn requests_refused_before_the_guard_spend_no_budget() {
    let guards = Guards::start().await;
    answer(&guards.token, "/scan", json!({"token_count": 3})).await;
    let (gw, _storage, tokens) = setup(&guards).await;
    let auth = Auth::Bearer(access(&tokens));
    let spent = || async {
        let (status, month) = gw.get("/api/v1/subscriptions/usage", auth).await;
        assert_eq!(status, 200, "{month}");
        month["budget_spent_usd"].as_f64().expect("spent")
    };
    assert_eq!(spent().await, 0.0);
    for _ in 0..5 {
        let (status, _) = gw
            .post(
                "/api/v1/guards/process",
                auth,
                json!({"service_type": "tokenguard", "payload": {}}),
            )
            .await;
        assert_eq!(status, 400);
    }
    // Calls in quick succession reserve in a lease, which holds its unused calls for a quarter
    // of a second and gives them back with the next batch of refunds.
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    while spent().await != 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "refused requests kept their reservations"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // An unreadable body may cancel the request while its reservation is on the way: given back
    // with the next batch of refunds.
    let (status, _) = gw
        .send(
            gw.app
                .client
                .post(format!("{}/api/v1/guards/process", gw.app.address))
                .bearer_auth(access(&tokens))
                .header("content-type", "application/json")
                .body("{\"service_type\": "),
        )
        .await;
    assert_eq!(status, 400);
    let deadline = std::time::Instant::now() + Duration::from_secs(1);
    while spent().await != 0.0 {
        assert!(std::time::Instant::now() < deadline, "never given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A call that reached the guard (which reports no cost) is settled to nothing.
    let (status, answer) = gw
        .post(
            "/api/v1/guards/process",
            auth,
            json!({"service_type": "tokenguard", "payload": {"text": "x"}}),
        )
        .await;
    assert_eq!(status, 200, "{answer}");
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    while spent().await != 0.0 {
        assert!(std::time::Instant::now() < deadline, "never refunded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
