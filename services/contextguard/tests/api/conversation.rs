use cg_contextguard::config::Settings;
use cg_storage::testing::TestStorage;
use serde_json::{Value, json};

use crate::helpers::{delete, get, post, spawn};

const FOOTBALL: [&str; 4] = [
    "Scotland will discover on May 21 if the Euro 2016 qualifier with Georgia will be played behind closed doors.",
    "UEFA opened disciplinary proceedings against the Georgian Football Federation after fans invaded the pitch in Tbilisi.",
    "The Georgian federation could be fined, and the qualifier against Scotland moved or played without fans.",
    "Georgian fans twice invaded the pitch during the defeat by Germany in Tbilisi, halting play at the stadium.",
];
const OFF_TOPIC: &str = "Whisk the eggs with sugar, fold in the flour, and bake the sponge cake for twenty-five minutes at 180 degrees.";

async fn turn(app: &cg_service_kit::testing::TestApp, session: &str, text: &str) -> Value {
    let (status, answer) = post(
        app,
        "/v1/drift",
        json!({"session_id": session, "text": text}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    answer
}

#[tokio::test(flavor = "multi_thread")]
async fn conversation_drift_window_and_retrieval_on_every_storage_mode() {
    for storage in TestStorage::all().await {
        let mode = storage.label;
        let app = spawn(&storage.config, Settings::default()).await;
        let first = turn(&app, "chat-1", FOOTBALL[0]).await;
        assert_eq!(
            first["drift_detected"], false,
            "{mode}: the first turn never drifts: {first}"
        );
        let mut on_topic = Vec::new();
        for text in &FOOTBALL[1..] {
            on_topic.push(turn(&app, "chat-1", text).await);
        }
        let last_on = on_topic.last().unwrap();
        assert_eq!(last_on["session_turns"], 4, "{mode}: {last_on}");
        assert_eq!(last_on["drift_detected"], false, "{mode}: {last_on}");
        let off = turn(&app, "chat-1", OFF_TOPIC).await;
        assert_eq!(off["drift_detected"], true, "{mode}: {off}");
        assert!(
            off["drift_score"].as_f64().unwrap() > last_on["drift_score"].as_f64().unwrap(),
            "{mode}: {off}\n{last_on}"
        );
        assert!(off["drift_score"].as_f64().unwrap() <= 1.0);
        assert!(
            !off["topic_terms"].as_array().unwrap().is_empty(),
            "{mode}: {off}"
        );

        // Scoring without remembering.
        let (_, probe) = post(
            &app,
            "/v1/drift",
            json!({"session_id": "chat-1", "text": "Georgia fans and UEFA", "store": false}),
        )
        .await;
        assert_eq!(probe["session_turns"], 5, "{mode}: {probe}");

        let (status, shown) = get(&app, "/v1/conversations/chat-1").await;
        assert_eq!(status, 200, "{mode}: {shown}");
        assert_eq!(shown["session_turns"], 5);
        assert_eq!(shown["window"].as_array().unwrap().len(), 5);
        assert_eq!(shown["window"][4]["content"], OFF_TOPIC);

        let (status, relevant) = get(
            &app,
            "/v1/conversations/chat-1/relevant?query=cake%20flour&k=2",
        )
        .await;
        assert_eq!(status, 200, "{mode}: {relevant}");
        assert_eq!(
            relevant["results"][0]["turn"]["content"], OFF_TOPIC,
            "{mode}: {relevant}"
        );
        let (_, relevant) = get(
            &app,
            "/v1/conversations/chat-1/relevant?query=disciplinary%20UEFA",
        )
        .await;
        assert_eq!(
            relevant["results"][0]["turn"]["content"], FOOTBALL[1],
            "{mode}: {relevant}"
        );

        // The gateway's shape: /analyze with a session.
        let (status, via_analyze) = post(
            &app,
            "/analyze",
            json!({"text": FOOTBALL[3], "session_id": "chat-2"}),
        )
        .await;
        assert_eq!(status, 200, "{via_analyze}");
        assert_eq!(via_analyze["session_turns"], 1);

        assert_eq!(delete(&app, "/v1/conversations/chat-1").await.0, 200);
        assert_eq!(get(&app, "/v1/conversations/chat-1").await.0, 404);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn window_is_bounded_by_turns_and_old_turns_are_dropped() {
    let storage = TestStorage::embedded();
    let settings = Settings {
        max_turns: Some(5),
        window_turns: Some(3),
        window_tokens: Some(40),
        ..Settings::default()
    };
    let app = spawn(&storage.config, settings).await;
    for i in 0..7 {
        turn(
            &app,
            "s",
            &format!("turn number {i} about the harbour ferry timetable"),
        )
        .await;
    }
    let (_, shown) = get(&app, "/v1/conversations/s").await;
    assert_eq!(shown["session_turns"], 5, "{shown}");
    let window = shown["window"].as_array().unwrap();
    assert_eq!(window.len(), 3, "{shown}");
    assert!(window[2]["content"].as_str().unwrap().contains("number 6"));
    // A long turn fills the token budget alone.
    turn(&app, "s", &"ferry ".repeat(60)).await;
    let (_, shown) = get(&app, "/v1/conversations/s").await;
    assert_eq!(shown["window"].as_array().unwrap().len(), 1, "{shown}");
}

#[tokio::test(flavor = "multi_thread")]
async fn code_drift_and_bad_input() {
    let storage = TestStorage::embedded();
    let settings = Settings {
        max_turn_bytes: Some(100),
        ..Settings::default()
    };
    let app = spawn(&storage.config, settings).await;
    let previous = "fn main() {\n    println!(\"hi\");\n}\n";
    let same = post(
        &app,
        "/analyze",
        json!({"current_code": previous, "previous_code": previous}),
    )
    .await;
    assert_eq!(same.0, 200, "{}", same.1);
    assert_eq!(same.1["drift_detected"], false, "{}", same.1);
    assert_eq!(same.1["metrics"]["common_lines"], 3);
    let rewritten = "use std::io;\nfn run() -> io::Result<()> {\n    let x = 1;\n    Ok(())\n}\n";
    let changed = post(
        &app,
        "/analyze",
        json!({"current_code": rewritten, "previous_code": previous}),
    )
    .await;
    assert_eq!(changed.0, 200);
    assert_eq!(changed.1["drift_detected"], true, "{}", changed.1);
    assert!(
        changed.1["metrics"]["drift_ratio"].as_f64().unwrap()
            > same.1["metrics"]["drift_ratio"].as_f64().unwrap()
    );
    // An empty previous version is valid.
    let fresh = post(
        &app,
        "/analyze",
        json!({"current_code": rewritten, "previous_code": ""}),
    )
    .await;
    assert_eq!(fresh.0, 200, "{}", fresh.1);
    assert_eq!(fresh.1["metrics"]["added_lines"], 5, "{}", fresh.1);

    for (body, status) in [
        (json!({"previous_code": "x"}), 400),
        (json!({"session_id": "bad id!", "text": "hello"}), 400),
        (json!({"session_id": "ok", "text": "   "}), 400),
        (json!({"session_id": "ok", "text": "x".repeat(101)}), 413),
        (
            json!({"session_id": "ok", "text": "hi", "role": "a b"}),
            400,
        ),
    ] {
        let (got, answer) = post(&app, "/analyze", body.clone()).await;
        assert_eq!(got, status, "{body}: {answer}");
    }
    assert_eq!(
        get(&app, "/v1/conversations/ok").await.0,
        404,
        "nothing was stored"
    );
    let (status, _) = post(&app, "/v1/drift", json!({"text": "no session"})).await;
    assert_eq!(status, 422);
}

#[tokio::test(flavor = "multi_thread")]
async fn drift_thresholds_are_shared_configuration() {
    let storage = TestStorage::embedded();
    let app = spawn(&storage.config, Settings::default()).await;
    let (status, defaults) = get(&app, "/v1/config/drift").await;
    assert_eq!(status, 200, "{defaults}");
    let mut stricter = defaults.clone();
    stricter["threshold"] = json!(0.01);
    let put = crate::helpers::call(
        &app,
        reqwest::Method::PUT,
        "/v1/config/drift",
        None,
        Some(stricter.clone()),
    )
    .await;
    assert_eq!(put.0, 200, "{}", put.1);
    assert_eq!(get(&app, "/v1/config/drift").await.1["threshold"], 0.01);
    // With a tiny threshold, any second turn on a new subject drifts.
    turn(&app, "t", "The harbour ferry leaves at nine.").await;
    let second = turn(&app, "t", "Quarterly revenue grew by four percent.").await;
    assert_eq!(second["drift_detected"], true, "{second}");
    assert_eq!(second["thresholds"]["threshold"], 0.01);
    let mut bad = defaults.clone();
    bad["threshold"] = json!(1.5);
    let rejected = crate::helpers::call(
        &app,
        reqwest::Method::PUT,
        "/v1/config/drift",
        None,
        Some(bad),
    )
    .await;
    assert_eq!(rejected.0, 400, "{}", rejected.1);
    assert_eq!(get(&app, "/v1/config/drift").await.1["threshold"], 0.01);
}
