//! The whole system as it is deployed: the `gateway` binary and the five guard binaries as
//! separate processes on one PostgreSQL and one Redis (owned by the test, so it can stop it).
//! Register → log in → create an organisation and an API key → text through each guard →
//! refresh → log out; another organisation is refused; a revoked key stops working; each
//! validation rule; a killed guard is a 503 that opens its circuit and traffic returns with it;
//! with Redis stopped, sessions carry on from the database.

use std::time::{Duration, Instant};

use cg_storage::testing::{RedisServer, TestDb};
use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Auth, access, refresh};
use crate::processes::{Service, binary, psql, replica_with};

const GUARDS: [&str; 5] = [
    "tokenguard",
    "trustguard",
    "contextguard",
    "biasguard",
    "healthguard",
];
const PROCESS: &str = "/api/v1/guards/process";

/// What each guard must say about the text sent to it, as its contract defines.
fn check_guard_answer(guard: &str, answer: &Value) {
    let data = &answer["data"];
    let ok = match guard {
        "tokenguard" => data["token_count"].as_u64().is_some_and(|n| n > 0),
        "trustguard" => data["trust_score"].is_number() && data["risk_level"].is_string(),
        "contextguard" => data["session_turns"] == 1 && data["drift_detected"].is_boolean(),
        "biasguard" => data["bias_score"].is_number() && data["decision"].is_string(),
        "healthguard" => data["results"][0]["is_poisoned"].is_boolean(),
        _ => false,
    };
    assert!(ok, "{guard} answered {answer}");
    assert_eq!(answer["service_used"], guard, "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_gateway_and_the_guard_binaries_serve_the_whole_path() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let common = [
        ("DATABASE_URL", db.url.clone()),
        ("REDIS_URL", redis.url.clone()),
        ("REDIS_RESPONSE_TIMEOUT_MS", "300".to_owned()),
        ("REDIS_CONNECT_TIMEOUT_MS", "300".to_owned()),
    ];
    let mut guards: Vec<Service> =
        join_all(GUARDS.map(|name| Service::start(binary(name), &common))).await;
    let mut env: Vec<(&str, String)> = GUARDS
        .iter()
        .zip(&guards)
        .map(|(name, g)| {
            let var = match *name {
                "tokenguard" => "TOKENGUARD_URL",
                "trustguard" => "TRUSTGUARD_URL",
                "contextguard" => "CONTEXTGUARD_URL",
                "biasguard" => "BIASGUARD_URL",
                _ => "HEALTHGUARD_URL",
            };
            (var, g.url())
        })
        .collect();
    env.push(("CIRCUIT_BREAKER_FAILURES", "5".to_owned()));
    env.push(("CIRCUIT_BREAKER_COOLDOWN_SECS", "1".to_owned()));
    env.push(("SESSION_STORAGE_TYPE", "redis".to_owned()));
    let gateway = replica_with(&db.url, &redis.url, &env).await;
    let gw = &gateway.gw;

    // Register, log in, create an organisation and an API key in it (on the pro tier: all five
    // guards).
    let tokens = gw.sign_up("eve@example.com").await;
    let bearer = Auth::Bearer(access(&tokens));
    let (status, org) = gw
        .post("/api/v1/organizations", bearer, json!({"name": "Eve Labs"}))
        .await;
    assert_eq!(status, 201, "{org}");
    let org_id = org["id"].as_str().unwrap().to_owned();
    psql(
        &db.url,
        &format!(
            "UPDATE subscriptions SET tier_id = (SELECT id FROM subscription_tiers WHERE name = 'pro') \
             WHERE organization_id = '{org_id}'"
        ),
    );
    let (status, key) = gw
        .post_in(
            "/api/v1/api-keys",
            bearer,
            &org_id,
            json!({"name": "ci", "role": "member", "scopes": ["process", "read"]}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    let secret = key["key"].as_str().unwrap().to_owned();
    let api_key = Auth::ApiKey(&secret);

    // Text through each guard, and through all five at once.
    let text = "Our new hire is a woman, so she will probably need extra help with the maths.";
    for guard in GUARDS {
        let (status, answer) = gw
            .post(
                PROCESS,
                api_key,
                json!({"service_type": guard, "payload": {"text": text, "session_id": "s-1"}}),
            )
            .await;
        assert_eq!(status, 200, "{guard}: {answer}");
        check_guard_answer(guard, &answer);
    }
    let (status, all) = gw
        .post(
            PROCESS,
            api_key,
            json!({"service_type": "all", "payload": {"text": text, "session_id": "s-2"}}),
        )
        .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["data"]["services_failed"], json!([]), "{all}");
    assert!(
        ["allow", "flag", "block"].contains(&all["data"]["verdict"].as_str().unwrap()),
        "{all}"
    );

    // Every validation rule, refused before any guard is asked.
    let deep = (0..11).fold(json!("x"), |inner, _| json!({"d": inner}));
    for (body, status, code) in [
        (
            json!({"service_type": "tokenguard", "payload": {}}),
            400,
            "invalid_payload",
        ),
        (
            json!({"service_type": "tokenguard", "payload": "text"}),
            400,
            "invalid_payload",
        ),
        (
            json!({"service_type": "tokenguard", "payload": deep}),
            400,
            "payload_too_deep",
        ),
        (
            json!({"service_type": "nope", "payload": {"text": "x"}}),
            400,
            "unknown_service",
        ),
    ] {
        let (got, e) = gw.post(PROCESS, api_key, body.clone()).await;
        assert_eq!(
            (got, e["error"]["code"].as_str()),
            (status, Some(code)),
            "{body}: {e}"
        );
        if code == "unknown_service" {
            let message = e["error"]["message"].as_str().unwrap();
            assert!(GUARDS.iter().all(|g| message.contains(g)), "{e}");
        }
    }
    let huge = json!({"service_type": "tokenguard", "payload": {"text": "a".repeat(10 * 1024 * 1024 + 1)}});
    let (got, e) = gw.post(PROCESS, api_key, huge).await;
    assert_eq!(got, 413, "{e}");

    // Another organisation's user sees none of it.
    let mallory = gw.sign_up("mallory@example.com").await;
    let mallory = Auth::Bearer(access(&mallory));
    let (status, _) = gw
        .delete(
            &format!("/api/v1/api-keys/{}", key["id"].as_str().unwrap()),
            mallory,
        )
        .await;
    assert_eq!(status, 404);
    let (status, _) = gw
        .get_in("/api/v1/organizations/current", mallory, &org_id)
        .await;
    assert_eq!(status, 404);

    // Refresh rotates; the old refresh token no longer works; logout ends the session.
    let (status, rotated) = gw.refresh(refresh(&tokens)).await;
    assert_eq!(status, 200, "{rotated}");
    let (status, _) = gw.refresh(refresh(&tokens)).await;
    assert_eq!(status, 401);
    let fresh = gw.login("eve@example.com").await;
    let status = gw.logout(&fresh).await;
    assert_eq!(status, 200);
    let (status, _) = gw.refresh(refresh(&fresh)).await;
    assert_eq!(status, 401);

    // Replaying the old refresh token above ended `rotated`'s family: log in again.
    let admin = gw.login("eve@example.com").await;
    // A revoked key stops working within a second.
    let key_path = format!("/api/v1/api-keys/{}", key["id"].as_str().unwrap());
    // Outside the key's organisation (Eve's default one) it does not exist.
    let (status, _) = gw.delete(&key_path, Auth::Bearer(access(&admin))).await;
    assert_eq!(status, 404);
    let (status, _) = gw
        .delete_in(&key_path, Auth::Bearer(access(&admin)), &org_id)
        .await;
    assert_eq!(status, 200);
    let revoked = Instant::now();
    loop {
        let (status, _) = gw
            .post(
                PROCESS,
                api_key,
                json!({"service_type": "tokenguard", "payload": {"text": "x"}}),
            )
            .await;
        if status == 401 {
            break;
        }
        assert!(
            revoked.elapsed() < Duration::from_secs(1),
            "a revoked key still works: {status}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // A guard killed: 503, its circuit opens after five failures, and it serves again once back.
    let user = Auth::Bearer(access(&admin));
    let trust = json!({"service_type": "trustguard", "payload": {"text": text}});
    guards[1].kill();
    for _ in 0..5 {
        let (status, e) = gw.post_in(PROCESS, user, &org_id, trust.clone()).await;
        assert_eq!(
            (status, e["error"]["code"].as_str()),
            (503, Some("guard_unavailable")),
            "{e}"
        );
    }
    let (status, e) = gw.post_in(PROCESS, user, &org_id, trust.clone()).await;
    assert_eq!(status, 503, "{e}");
    assert_eq!(e["error"]["details"]["circuit"], "open", "{e}");
    guards[1].run().await;
    let back = Instant::now();
    loop {
        let (status, answer) = gw.post_in(PROCESS, user, &org_id, trust.clone()).await;
        if status == 200 {
            check_guard_answer("trustguard", &answer);
            break;
        }
        assert!(
            back.elapsed() < Duration::from_secs(5),
            "trustguard never came back: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Redis stopped: logins, refreshes, the caller's identity and logouts work from the database.
    redis.stop();
    let during = gw.login("eve@example.com").await;
    let (status, me) = gw
        .get("/api/v1/auth/me", Auth::Bearer(access(&during)))
        .await;
    assert_eq!(
        (status, me["email"].as_str()),
        (200, Some("eve@example.com")),
        "{me}"
    );
    let (status, again) = gw.refresh(refresh(&during)).await;
    assert_eq!(status, 200, "{again}");
    // Logging out cannot tell other replicas to refuse the access token: it says so, and
    // nothing ended; once Redis is back it does.
    let status = gw.logout(&again).await;
    assert_eq!(status, 503);
    redis.resume().await;
    let status = gw.logout(&again).await;
    assert_eq!(status, 200);
    let (status, _) = gw.refresh(refresh(&again)).await;
    assert_eq!(status, 401);
}
