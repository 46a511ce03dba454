use cg_service_kit::testing::{TEST_INTERNAL_TOKEN, TestApp, server_config};
use cg_storage::models::TrustAudit;
use cg_storage::testing::TestStorage;
use cg_storage::{Db, Needs, StorageConfig};
use cg_trustguard::config::{Config, Settings};
use cg_trustguard::startup;
use serde_json::{Value, json};

async fn spawn(storage: &StorageConfig, settings: Settings) -> TestApp {
    let app = startup::build(Config {
        server: server_config(),
        storage: storage.clone(),
        trustguard: settings,
    })
    .await
    .expect("build");
    TestApp::run(app)
}

async fn db(storage: &StorageConfig) -> Db {
    let needs = Needs {
        database: true,
        cache: false,
        blobs: false,
    };
    let target = storage
        .resolve(needs)
        .expect("config")
        .database
        .expect("database");
    Db::connect(&target).await.expect("connect")
}

const ORGANIZATION: &str = "019ac000-0000-7000-8000-00000000abcd";

async fn post(app: &TestApp, path: &str, request_id: &str, body: Value) -> (u16, Value) {
    post_as(app, ORGANIZATION, path, request_id, body).await
}

async fn post_as(
    app: &TestApp,
    organization: &str,
    path: &str,
    request_id: &str,
    body: Value,
) -> (u16, Value) {
    let resp = app
        .client
        .post(format!("{}{path}", app.address))
        .header("x-internal-token", TEST_INTERNAL_TOKEN)
        .header("x-request-id", request_id)
        .header("x-organization-id", organization)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const CONTEXT: &str =
    "The Eiffel Tower was completed in 1889 for the World's Fair in Paris. It is 330 metres tall.";

#[tokio::test(flavor = "multi_thread")]
async fn validates_caches_and_audits_on_every_storage_mode() {
    for storage in TestStorage::all().await {
        let mode = storage.label;
        let app = spawn(&storage.config, Settings::default()).await;
        let grounded = json!({"validation_type": "grounding", "content": "It was completed in 1889.", "context": CONTEXT, "question": "When was it completed?"});
        let invented = json!({"validation_type": "grounding", "content": "It was completed in 1925 by Auguste Perret for the Lyon exhibition.", "context": CONTEXT, "question": "When was it completed?"});

        let (status, good) = post(
            &app,
            "/v1/validate",
            &format!("{mode}-good"),
            grounded.clone(),
        )
        .await;
        assert_eq!(status, 200, "{mode}: {good}");
        let (_, bad) = post(&app, "/validate", &format!("{mode}-bad"), invented).await;
        assert!(
            bad["overall_score"].as_f64() > good["overall_score"].as_f64(),
            "{mode}: {good}\n{bad}"
        );
        assert_eq!(bad["risk_level"], "high", "{mode}: {bad}");
        let unsupported: Vec<&str> = bad["grounding"]["unsupported"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u["text"].as_str())
            .collect();
        assert!(
            unsupported.contains(&"1925") && unsupported.contains(&"Lyon"),
            "{unsupported:?}"
        );
        assert_eq!(good["cached"], false);

        let (_, again) = post(&app, "/v1/validate", &format!("{mode}-again"), grounded).await;
        assert_eq!(
            again["cached"], true,
            "{mode}: identical input is served from the cache"
        );
        assert_eq!(again["overall_score"], good["overall_score"]);

        let db = db(&storage.config).await;
        let mut pooled = db.get().await.unwrap();
        let rows = TrustAudit::for_request(&mut pooled.conn(), &format!("{mode}-bad"))
            .await
            .unwrap();
        assert_eq!(rows.len(), 1, "{mode}");
        assert_eq!(rows[0].risk_level, "high");
        assert_eq!(
            rows[0].analyzed_text, None,
            "{mode}: text stored without TRUSTGUARD_STORE_TEXT"
        );
        assert_eq!(rows[0].content_sha256.len(), 64);
        assert_eq!(
            rows[0].organization_id.map(|o| o.to_string()).as_deref(),
            Some(ORGANIZATION)
        );
        let cached_rows = TrustAudit::for_request(&mut pooled.conn(), &format!("{mode}-again"))
            .await
            .unwrap();
        assert!(cached_rows[0].cached);
    }
}

/// The cache is per organisation: another organisation sending the same text gets a fresh
/// analysis, so `cached` cannot tell it what someone else validated.
#[tokio::test(flavor = "multi_thread")]
async fn the_result_cache_does_not_leak_across_organisations() {
    let storage = TestStorage::embedded();
    let app = spawn(&storage.config, Settings::default()).await;
    let body =
        json!({"content": "Our product cures every disease, guaranteed.", "context": CONTEXT});
    let (status, first) = post(&app, "/v1/validate", "org-a-1", body.clone()).await;
    assert_eq!(status, 200, "{first}");
    let (_, again) = post(&app, "/v1/validate", "org-a-2", body.clone()).await;
    assert_eq!(
        again["cached"], true,
        "the same organisation reuses its result"
    );
    let other = "019ac000-0000-7000-8000-00000000ef01";
    let (status, theirs) = post_as(&app, other, "/v1/validate", "org-b-1", body).await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(
        theirs["cached"], false,
        "another organisation learnt that this text was validated before"
    );
    assert_eq!(theirs["overall_score"], first["overall_score"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn detect_mitigate_and_the_internal_token() {
    let storage = TestStorage::embedded();
    let app = spawn(
        &storage.config,
        Settings {
            store_text: Some(true),
            ..Settings::default()
        },
    )
    .await;
    let content = "The tower was completed in 1889. It is 330 metres tall. It was designed by Zaha Hadid. It is 330 metres tall.";
    let (status, mitigated) = post(
        &app,
        "/v1/mitigate",
        "m-1",
        json!({"content": content, "context": CONTEXT}),
    )
    .await;
    assert_eq!(status, 200, "{mitigated}");
    assert_eq!(
        mitigated["mitigated_content"], "The tower was completed in 1889. It is 330 metres tall.",
        "{mitigated}"
    );
    let reasons: Vec<&str> = mitigated["removed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["reason"].as_str())
        .collect();
    assert_eq!(
        reasons,
        ["unsupported name", "repeated sentence"],
        "{mitigated}"
    );
    assert!(mitigated["overall_score_after"].as_f64() < mitigated["overall_score_before"].as_f64());

    let code = "def total(xs):\n    # TODO: handle empty lists\n    pass\n";
    let (_, detected) = post(&app, "/v1/detect", "d-1", json!({"content": code})).await;
    assert!(
        detected["pattern_detections"]["stub_code"]
            .as_f64()
            .unwrap()
            > 0.5,
        "{detected}"
    );
    assert_eq!(detected["evidence"]["stub_code"][0]["rule"], "todo_marker");

    let (status, _) = post(&app, "/v1/validate", "x", json!({"context": "no content"})).await;
    assert_eq!(status, 422);
    let resp = app
        .client
        .post(format!("{}/v1/validate", app.address))
        .json(&json!({"content": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // With TRUSTGUARD_STORE_TEXT the content is kept.
    let db = db(&storage.config).await;
    let mut pooled = db.get().await.unwrap();
    let rows = TrustAudit::for_request(&mut pooled.conn(), "d-1")
        .await
        .unwrap();
    assert_eq!(rows[0].analyzed_text.as_deref(), Some(code));
}
