//! Rate limits across replicas: three gateway processes (the real binary) on one PostgreSQL and
//! one Redis owned by the test. A limit admits exactly its number of requests in total under
//! concurrent load spread across the replicas; with Redis stopped requests still flow under each
//! replica's local limiter, reported by `/health/ready`. A budget is never overspent, a config
//! change reaches every replica within a second, and a user keeps one A/B variant everywhere.

use std::time::Duration;

use cg_service_kit::testing::TEST_INTERNAL_TOKEN;
use cg_storage::testing::{RedisServer, TestDb};
use futures::future::join_all;
use serde_json::Value;

use crate::helpers::{Auth, access};
use crate::processes::{Service, binary, psql, replica, replica_with};

/// A TokenGuard process on embedded storage.
async fn tokenguard() -> Service {
    Service::start(
        binary("tokenguard"),
        &[("CG_STORAGE_MODE", "embedded".to_owned())],
    )
    .await
}

/// Seconds into the current wall-clock minute (windows are aligned on it).
fn second_of_minute() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 60
}

#[tokio::test(flavor = "multi_thread")]
async fn a_limit_holds_exactly_across_three_replicas_and_survives_redis_going_away() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let Some(mut redis) = RedisServer::start().await else {
        return;
    };
    let replicas = join_all((0..3).map(|_| replica(&db.url, &redis.url))).await;
    let alice = replicas[0].gw.sign_up("alice@example.com").await;
    let token = access(&alice);

    // The free tier allows 60 guard calls a minute, so 120 reads; keep the burst inside one
    // wall-clock minute so no earlier bucket weighs in.
    if second_of_minute() > 45 {
        tokio::time::sleep(Duration::from_secs(61 - second_of_minute())).await;
    }
    let attempts = 200;
    let answers: Vec<(u16, Option<String>, Value)> = join_all((0..attempts).map(|i| {
        let gw = &replicas[i % 3].gw;
        async move {
            let resp = gw
                .app
                .client
                .get(format!("{}/api/v1/organizations/current", gw.app.address))
                .bearer_auth(token)
                .send()
                .await
                .expect("request");
            let status = resp.status().as_u16();
            let limit = resp
                .headers()
                .get("x-ratelimit-limit")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            let retry = resp.headers().get("retry-after").is_some();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            assert!(status != 429 || retry, "a 429 without Retry-After: {body}");
            (status, limit, body)
        }
    }))
    .await;
    let admitted = answers.iter().filter(|a| a.0 == 200).count();
    let refused: Vec<&(u16, Option<String>, Value)> =
        answers.iter().filter(|a| a.0 == 429).collect();
    assert_eq!(admitted, 120, "admitted across the replicas");
    assert_eq!(refused.len(), attempts - 120);
    assert_eq!(
        refused[0].2["error"]["code"], "rate_limited",
        "{}",
        refused[0].2
    );
    assert!(
        answers.iter().all(|a| a.1.as_deref() == Some("120")),
        "X-RateLimit-Limit on every answer"
    );

    // Redis goes away: each replica limits on its own and keeps serving, ready but degraded.
    if second_of_minute() > 50 {
        tokio::time::sleep(Duration::from_secs(61 - second_of_minute())).await;
    }
    redis.stop();
    let bob = replicas[1].gw.sign_up("bob@example.com").await;
    let (status, _) = replicas[2]
        .gw
        .get("/api/v1/organizations/current", Auth::Bearer(access(&bob)))
        .await;
    assert_eq!(status, 200, "requests flow without Redis");
    // The local limiter still limits: 120 reads a minute on this replica, one of them spent.
    let bob_token = access(&bob);
    let statuses: Vec<u16> = join_all((0..130).map(|_| {
        replicas[2]
            .gw
            .get("/api/v1/organizations/current", Auth::Bearer(bob_token))
    }))
    .await
    .into_iter()
    .map(|(s, _)| s)
    .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 119);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 11);
    let (status, health) = replicas[2].gw.app.get_json("/health/ready").await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["degraded"], true, "{health}");
    let (_, health) = replicas[2].gw.app.get_admin_json("/health").await;
    assert_eq!(health["status"], "degraded", "{health}");
    assert_eq!(health["rate_limiter"]["using"], "local", "{health}");
    assert!(health["usage_backlog"].as_u64() > Some(0), "{health}");

    // Redis returns: the usage counted meanwhile reaches the totals (1 + 119 admitted reads).
    redis.resume().await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, usage) = replicas[0]
            .gw
            .get("/api/v1/usage", Auth::Bearer(bob_token))
            .await;
        assert_eq!(status, 200, "{usage}");
        let reads = usage["totals"]["by_endpoint"]["/api/v1/organizations/current"]["requests"]
            .as_i64()
            .unwrap_or(0);
        if reads == 120 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline && reads < 120,
            "usage counted without Redis was lost or doubled: {usage}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The monthly quota holds across replicas: three guard calls allowed, the fourth refused
    // by another replica (the guard itself is not running: the calls fail, and still count),
    // and refusals themselves do not count.
    psql(
        &db.url,
        "UPDATE subscription_tiers SET requests_per_month = 3 WHERE name = 'free'",
    );
    let call = serde_json::json!({"service_type": "tokenguard", "payload": {"text": "hi"}});
    for _ in 0..3 {
        let (status, answer) = replicas[0]
            .gw
            .post(
                "/api/v1/guards/process",
                Auth::Bearer(bob_token),
                call.clone(),
            )
            .await;
        assert_ne!(status, 429, "{answer}");
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let (status, refused) = replicas[1]
        .gw
        .post("/api/v1/guards/process", Auth::Bearer(bob_token), call)
        .await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], "quota_exceeded", "{refused}");
    let (_, month) = replicas[2]
        .gw
        .get("/api/v1/subscriptions/usage", Auth::Bearer(bob_token))
        .await;
    assert_eq!(month["quota"], 3, "{month}");
    assert_eq!(month["remaining"], 0, "{month}");
    assert_eq!(
        month["guard_requests"], 3,
        "the refusal was not counted: {month}"
    );
}

/// Thirty guard calls at once over three replicas against a budget that fits about ten: the
/// reserved-and-settled total never passes the budget.
#[tokio::test(flavor = "multi_thread")]
async fn a_budget_is_never_exceeded_under_concurrent_load_across_replicas() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let guard = tokenguard().await;
    let guard_url = guard.url();
    let text = "The quarterly report shows revenue growth across every region. ".repeat(20);
    // What one call costs, as TokenGuard prices it.
    let priced: Value = reqwest::Client::new()
        .post(format!("{guard_url}/scan"))
        .header("x-internal-token", TEST_INTERNAL_TOKEN)
        .json(&serde_json::json!({"text": text}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cost = (priced["cost"]["usd"].as_f64().expect("a price") * 1e6).round() as i64;
    assert!(cost > 0, "{priced}");
    let budget = 10 * cost;
    psql(
        &db.url,
        &format!(
            "UPDATE subscription_tiers SET monthly_budget_usd_micros = {budget} WHERE name = 'free'"
        ),
    );
    let extra = [
        ("TOKENGUARD_URL", guard_url.clone()),
        ("GATEWAY_BUDGET_RESERVE_USD_MICROS", (2 * cost).to_string()),
    ];
    let replicas = join_all((0..3).map(|_| replica_with(&db.url, &redis.url, &extra))).await;
    let carol = replicas[0].gw.sign_up("carol@example.com").await;
    let token = access(&carol);
    let call = serde_json::json!({"service_type": "tokenguard", "payload": {"text": text}});
    let statuses: Vec<(u16, Value)> = join_all((0..30).map(|i| {
        replicas[i % 3]
            .gw
            .post("/api/v1/guards/process", Auth::Bearer(token), call.clone())
    }))
    .await;
    let admitted = statuses.iter().filter(|(s, _)| *s == 200).count();
    let refused: Vec<&Value> = statuses
        .iter()
        .filter(|(s, _)| *s == 402)
        .map(|(_, b)| b)
        .collect();
    assert_eq!(admitted + refused.len(), 30, "{statuses:?}");
    assert!(
        (5..=10).contains(&admitted),
        "admitted {admitted}: {:?}",
        statuses.iter().find(|(s, _)| *s != 200 && *s != 402)
    );
    assert_eq!(
        refused[0]["error"]["code"], "budget_exceeded",
        "{}",
        refused[0]
    );
    // Refunds of unused reservations arrive in batches: the total only falls to the real cost,
    // and is never above the budget on the way.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let (_, month) = replicas[1]
            .gw
            .get("/api/v1/subscriptions/usage", Auth::Bearer(token))
            .await;
        let spent = (month["budget_spent_usd"].as_f64().expect("spent") * 1e6).round() as i64;
        assert!(
            spent <= budget,
            "spent {spent} µ$ over the budget {budget} µ$: {month}"
        );
        if spent == admitted as i64 * cost {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "refunds never settled: {spent} µ$ vs {} µ$",
            admitted as i64 * cost
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A platform administrator changes the rate limits through one replica; every replica applies
/// the new version within a second, and the new limit is what the next request is held to.
#[tokio::test(flavor = "multi_thread")]
async fn a_config_change_reaches_every_replica_within_a_second() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let replicas = join_all((0..3).map(|_| replica(&db.url, &redis.url))).await;
    let root = replicas[0].gw.sign_up("root@example.com").await;
    psql(
        &db.url,
        "UPDATE users SET is_superuser = true WHERE email = 'root@example.com'",
    );
    let token = access(&root);
    let dave = replicas[0].gw.sign_up("dave@example.com").await;
    let (status, refused) = replicas[0]
        .gw
        .get("/api/v1/config", Auth::Bearer(access(&dave)))
        .await;
    assert_eq!(status, 403, "{refused}");

    let (status, doc) = replicas[0]
        .gw
        .put(
            "/api/v1/config/rate-limits",
            Auth::Bearer(token),
            serde_json::json!({"tiers": {"free": {"requests_per_minute": 5}}}),
        )
        .await;
    assert_eq!(status, 200, "{doc}");
    let version = doc["version"].as_i64().unwrap();
    let changed = std::time::Instant::now();
    for r in &replicas {
        loop {
            let (_, status) = r.gw.get("/api/v1/config/status", Auth::Bearer(token)).await;
            if status["version"].as_i64() == Some(version) {
                break;
            }
            assert!(
                changed.elapsed() < Duration::from_secs(1),
                "a replica still applies version {} a second later",
                status["version"]
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    // Reads of the free tier are now limited to 2 × 5 a minute, on every replica.
    let resp = replicas[2]
        .gw
        .app
        .client
        .get(format!(
            "{}/api/v1/organizations/current",
            replicas[2].gw.app.address
        ))
        .bearer_auth(access(&dave))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-ratelimit-limit"], "10");
    // Invalid settings are refused and change nothing; the change history names who and what.
    let (status, _) = replicas[1]
        .gw
        .put(
            "/api/v1/config/rate-limits",
            Auth::Bearer(token),
            serde_json::json!({"burst_share": 3}),
        )
        .await;
    assert_eq!(status, 422);
    let (_, export) = replicas[1]
        .gw
        .get("/api/v1/config/export", Auth::Bearer(token))
        .await;
    assert_eq!(export["config"]["version"], version, "{export}");
    assert_eq!(export["history"][0]["section"], "rate_limits", "{export}");
    assert_eq!(export["history"][0]["previous"], Value::Null, "{export}");
}

/// An experiment started through one replica is applied by all three at once (each had cached
/// "no experiments" for a minute: the announcement drops that), and every user gets the same
/// variant from every replica: asked for, listed, and applied to their guard calls.
#[tokio::test(flavor = "multi_thread")]
async fn a_user_keeps_the_same_variant_on_every_replica() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let guard = tokenguard().await;
    let extra = [
        ("TOKENGUARD_URL", guard.url()),
        ("EXPERIMENT_CACHE_SECS", "60".to_owned()),
    ];
    let replicas = join_all((0..3).map(|_| replica_with(&db.url, &redis.url, &extra))).await;
    let erin = replicas[0].gw.sign_up("erin@example.com").await;
    let auth = Auth::Bearer(access(&erin));
    psql(
        &db.url,
        "UPDATE subscriptions SET tier_id = (SELECT id FROM subscription_tiers WHERE name = 'pro')",
    );
    let call = |user: &str| serde_json::json!({"service_type": "tokenguard", "payload": {"text": "hello"}, "user_id": user});
    // Every replica caches that the organisation runs no experiment.
    for r in &replicas {
        let (status, answer) =
            r.gw.post("/api/v1/guards/process", auth, call("warm"))
                .await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["metadata"].get("experiments"), None, "{answer}");
    }

    let (status, created) = replicas[0]
        .gw
        .post(
            "/api/v1/ab-testing/experiments",
            auth,
            serde_json::json!({
                "name": "three ways",
                "variants": [
                    {"name": "a", "traffic_split": 34},
                    {"name": "b", "traffic_split": 33},
                    {"name": "c", "traffic_split": 33}
                ],
                "primary_metric": {"name": "accepted", "type": "conversion"}
            }),
        )
        .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, _) = replicas[0]
        .gw
        .post(
            &format!("/api/v1/ab-testing/experiments/{id}/start"),
            auth,
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let started = std::time::Instant::now();
    for r in &replicas {
        loop {
            let (_, answer) =
                r.gw.post("/api/v1/guards/process", auth, call("warm"))
                    .await;
            if answer["metadata"]["experiments"][0]["experiment_id"] == id.as_str() {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(1),
                "a replica still routes without the experiment a second after it started"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    let mut seen = std::collections::HashSet::new();
    for i in 0..24 {
        let user = format!("user-{i}");
        let (status, first) = replicas[i % 3]
            .gw
            .post(
                "/api/v1/ab-testing/assign-user",
                auth,
                serde_json::json!({"user_id": user, "experiment_id": id}),
            )
            .await;
        assert_eq!(status, 200, "{first}");
        let variant = first["variant"].as_str().unwrap().to_owned();
        for r in &replicas {
            let (_, again) =
                r.gw.post(
                    "/api/v1/ab-testing/assign-user",
                    auth,
                    serde_json::json!({"user_id": user, "experiment_id": id}),
                )
                .await;
            assert_eq!(again["variant"], variant.as_str(), "{user}");
            let (_, routed) = r.gw.post("/api/v1/guards/process", auth, call(&user)).await;
            assert_eq!(
                routed["metadata"]["experiments"][0]["variant"],
                variant.as_str(),
                "{user}: {routed}"
            );
            let (_, listed) =
                r.gw.get(&format!("/api/v1/ab-testing/users/{user}/variants"), auth)
                    .await;
            assert_eq!(
                listed["variants"][0]["variant"],
                variant.as_str(),
                "{listed}"
            );
        }
        seen.insert(variant);
    }
    // 24 users over three equal variants: all three are used.
    assert_eq!(seen.len(), 3, "{seen:?}");
}

/// Memberships are cached per replica (no database read per request with an access token): a
/// member added or removed through one replica is seen by all three at once.
#[tokio::test(flavor = "multi_thread")]
async fn a_membership_change_reaches_every_replica_at_once() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let Some(redis) = RedisServer::start().await else {
        return;
    };
    let replicas = join_all((0..3).map(|_| replica(&db.url, &redis.url))).await;
    let alice = replicas[0].gw.sign_up("alice.m@example.com").await;
    let bob = replicas[0].gw.sign_up("bob.m@example.com").await;
    let (a, b) = (Auth::Bearer(access(&alice)), Auth::Bearer(access(&bob)));
    let (_, org) = replicas[0].gw.get("/api/v1/organizations/current", a).await;
    let org_id = org["id"].as_str().unwrap().to_owned();
    // Every replica caches that Bob is not in Alice's organisation.
    for r in &replicas {
        let (status, _) =
            r.gw.get_in("/api/v1/organizations/members", b, &org_id)
                .await;
        assert_eq!(status, 404);
    }
    let (status, invite) = replicas[0]
        .gw
        .post_in(
            "/api/v1/organizations/members/invite",
            a,
            &org_id,
            serde_json::json!({"email": "bob.m@example.com", "role": "member"}),
        )
        .await;
    assert_eq!(status, 201, "{invite}");
    let (status, _) = replicas[1]
        .gw
        .post(
            "/api/v1/organizations/invitations/accept",
            b,
            serde_json::json!({"token": invite["token"]}),
        )
        .await;
    assert_eq!(status, 200);
    let within = |what: &'static str, expected: u16| {
        let (replicas, org_id) = (&replicas, &org_id);
        async move {
            let since = std::time::Instant::now();
            for r in replicas {
                loop {
                    let (status, _) =
                        r.gw.get_in("/api/v1/organizations/members", b, org_id)
                            .await;
                    if status == expected {
                        break;
                    }
                    assert!(
                        since.elapsed() < Duration::from_secs(1),
                        "{what}: a replica still answers {status} a second later"
                    );
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }
    };
    within("joined", 200).await;
    let (_, me) = replicas[0].gw.get("/api/v1/users/me", b).await;
    let bob_id = me["id"].as_str().unwrap().to_owned();
    let (status, _) = replicas[2]
        .gw
        .delete_in(
            &format!("/api/v1/organizations/members/{bob_id}"),
            a,
            &org_id,
        )
        .await;
    assert_eq!(status, 204);
    within("removed", 404).await;
}
