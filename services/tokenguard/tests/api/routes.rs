use cg_service_kit::testing::{TEST_INTERNAL_TOKEN, TestApp, server_config};
use cg_storage::testing::TestStorage;
use cg_tokenguard::config::{Config, Settings};
use cg_tokenguard::startup;
use serde_json::{Value, json};

async fn spawn(settings: Settings) -> (TestApp, TestStorage) {
    let storage = TestStorage::embedded();
    let app = startup::build(Config {
        server: server_config(),
        storage: storage.config.clone(),
        tokenguard: settings,
    })
    .await
    .expect("build");
    (TestApp::run(app), storage)
}

async fn post(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let resp = app
        .client
        .post(format!("{}{path}", app.address))
        .header("x-internal-token", TEST_INTERNAL_TOKEN)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread")]
async fn scan_counts_prices_and_decides() {
    let (app, _s) = spawn(Settings::default()).await;
    let (status, short) = post(
        &app,
        "/scan",
        json!({"content": "hello world", "model": "gpt-4o"}),
    )
    .await;
    assert_eq!(status, 200, "{short}");
    assert_eq!(short["token_count"], 2);
    assert_eq!(short["encoding"], "o200k_base");
    assert_eq!(short["decision"]["action"], "keep");
    assert!(
        (short["cost"]["usd"].as_f64().unwrap() - 2.0 * 2.5 / 1e6).abs() < 1e-12,
        "{short}"
    );

    let long = "The quick brown fox jumps over the lazy dog. ".repeat(300);
    let (_, scanned) = post(&app, "/scan", json!({"text": long, "model": "gpt-4"})).await;
    assert_eq!(scanned["encoding"], "cl100k_base");
    assert_eq!(scanned["decision"]["action"], "prune", "{scanned}");
    assert_eq!(scanned["decision"]["target_length"], 2000);
    assert!(scanned["decision"]["estimated_savings"].as_u64().unwrap() > 0);

    let (_, unsure) = post(
        &app,
        "/scan",
        json!({"content": "maybe this", "confidence": 0.4}),
    )
    .await;
    assert_eq!(unsure["decision"]["action"], "prune", "{unsure}");
    let (_, from_logprobs) = post(
        &app,
        "/scan",
        json!({"content": "answer", "logprobs_stream": [{"token": "a", "logprob": -0.01, "top_logprobs": []}]}),
    )
    .await;
    assert!(
        from_logprobs["confidence_score"].as_f64().unwrap() > 0.98,
        "{from_logprobs}"
    );
    assert_eq!(from_logprobs["decision"]["action"], "keep");
}

#[tokio::test(flavor = "multi_thread")]
async fn prune_analyze_and_cost() {
    let (app, _s) = spawn(Settings::default()).await;
    let text = "Revenue grew 12% in Q3.   Revenue grew 12% in Q3. Costs fell.\n\n\n\nHeadcount was flat. Outlook is stable.";
    let expected = "Revenue grew 12% in Q3. Costs fell.\nHeadcount was flat.";
    let target = cg_tokenguard::analysis::Encoding::O200kBase.count(expected);
    let (status, pruned) = post(
        &app,
        "/v1/prune",
        json!({"content": text, "target_tokens": target}),
    )
    .await;
    assert_eq!(status, 200, "{pruned}");
    assert_eq!(pruned["pruned_text"], expected, "target {target}");
    assert!(pruned["pruned_tokens"].as_u64().unwrap() <= target as u64);
    assert!(pruned["tokens_saved"].as_u64().unwrap() > 0);
    assert_eq!(pruned["steps"].as_array().unwrap().len(), 3);

    let (_, analyzed) = post(&app, "/v1/analyze", json!({"text": text})).await;
    assert_eq!(analyzed["repeated_sentences"], 1, "{analyzed}");
    assert!(analyzed["token_counts"]["cl100k_base"].as_u64().unwrap() > 0);

    let (status, cost) = post(
        &app,
        "/v1/cost-estimate",
        json!({"model": "gpt-4o-mini", "input_tokens": 1_000_000, "output_tokens": 1_000_000}),
    )
    .await;
    assert_eq!(status, 200, "{cost}");
    assert!(
        (cost["total_usd"].as_f64().unwrap() - 0.75).abs() < 1e-9,
        "{cost}"
    );
    let (status, unknown) = post(
        &app,
        "/v1/cost-estimate",
        json!({"model": "llama-9", "input_tokens": 5}),
    )
    .await;
    assert_eq!(status, 422, "{unknown}");
    let (status, _) = post(&app, "/scan", json!({"model": "gpt-4o"})).await;
    assert_eq!(status, 422, "no text");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_route_needs_the_internal_token() {
    let (app, _s) = spawn(Settings::default()).await;
    for path in ["/scan", "/v1/analyze", "/v1/prune", "/v1/cost-estimate"] {
        let resp = app
            .client
            .post(format!("{}{path}", app.address))
            .json(&json!({"content": "x"}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401, "{path}");
    }
    assert_eq!(app.get_json("/health").await.0, 200, "health stays open");
}

#[tokio::test(flavor = "multi_thread")]
async fn price_overrides_come_from_the_environment_settings() {
    let settings = Settings {
        prices: Some(r#"{"house-model": {"input": 1.0, "output": 1.0}}"#.into()),
        ..Settings::default()
    };
    let (app, _s) = spawn(settings).await;
    let (status, cost) = post(
        &app,
        "/v1/cost-estimate",
        json!({"model": "house-model", "encoding": "cl100k_base", "input_tokens": 2_000_000}),
    )
    .await;
    assert_eq!(status, 200, "{cost}");
    assert_eq!(cost["total_usd"], 2.0);
}
