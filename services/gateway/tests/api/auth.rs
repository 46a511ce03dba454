use cg_storage::testing::TestStorage;
use serde_json::json;

use crate::helpers::{Auth, PASSWORD, access, refresh, settings, spawn};

#[tokio::test(flavor = "multi_thread")]
async fn register_login_refresh_logout_on_every_storage_mode() {
    for storage in TestStorage::all().await {
        let gw = spawn(storage.config.clone(), settings()).await;
        let mode = storage.label;
        let tokens = gw.sign_up("Ada@Example.com").await;
        assert_eq!(tokens["token_type"], "bearer", "{mode}");
        assert_eq!(tokens["expires_in"], 900, "{mode}");

        let (status, me) = gw
            .get("/api/v1/auth/me", Auth::Bearer(access(&tokens)))
            .await;
        assert_eq!(status, 200, "{mode}: {me}");
        assert_eq!(me["email"], "ada@example.com", "{mode}: stored lower-cased");
        assert_eq!(
            me["organizations"].as_array().unwrap().len(),
            1,
            "{mode}: {me}"
        );
        assert_eq!(me["organizations"][0]["role"], "owner");
        assert!(me.get("password_hash").is_none());

        // Refresh rotates: the new pair works, the old refresh token does not.
        let (status, rotated) = gw
            .post(
                "/api/v1/auth/refresh",
                Auth::None,
                json!({"refresh_token": refresh(&tokens)}),
            )
            .await;
        assert_eq!(status, 200, "{mode}: {rotated}");
        assert_ne!(refresh(&rotated), refresh(&tokens));
        assert_eq!(
            gw.get("/api/v1/auth/me", Auth::Bearer(access(&rotated)))
                .await
                .0,
            200
        );

        // Replaying the old token is theft: the whole family dies, the newest token included.
        let (status, _) = gw
            .post(
                "/api/v1/auth/refresh",
                Auth::None,
                json!({"refresh_token": refresh(&tokens)}),
            )
            .await;
        assert_eq!(status, 401, "{mode}: reused refresh token accepted");
        let (status, _) = gw
            .post(
                "/api/v1/auth/refresh",
                Auth::None,
                json!({"refresh_token": refresh(&rotated)}),
            )
            .await;
        assert_eq!(status, 401, "{mode}: family survived a reuse");

        // Logout ends a fresh session for good.
        let again = gw.login("ada@example.com").await;
        let (status, _) = gw
            .post(
                "/api/v1/auth/logout",
                Auth::Bearer(access(&again)),
                json!({"refresh_token": refresh(&again)}),
            )
            .await;
        assert_eq!(status, 200, "{mode}");
        let (status, _) = gw
            .post(
                "/api/v1/auth/refresh",
                Auth::None,
                json!({"refresh_token": refresh(&again)}),
            )
            .await;
        assert_eq!(status, 401, "{mode}: refresh after logout");

        // Logout with only the access token ends that session too.
        let third = gw.login("ada@example.com").await;
        let resp = gw
            .app
            .client
            .post(format!("{}/api/v1/auth/logout", gw.app.address))
            .bearer_auth(access(&third))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200, "{mode}");
        let (status, _) = gw
            .post(
                "/api/v1/auth/refresh",
                Auth::None,
                json!({"refresh_token": refresh(&third)}),
            )
            .await;
        assert_eq!(status, 401, "{mode}: refresh after access-token logout");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_input_and_bad_credentials() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), settings()).await;
    gw.sign_up("bob@example.com").await;

    for (body, status) in [
        (json!({"email": "not-an-email", "password": PASSWORD}), 422),
        (
            json!({"email": "new@example.com", "password": "short"}),
            422,
        ),
        (
            json!({"email": "BOB@example.com", "password": PASSWORD}),
            409,
        ),
        (json!({"password": PASSWORD}), 422),
    ] {
        let (got, envelope) = gw
            .post("/api/v1/auth/register", Auth::None, body.clone())
            .await;
        assert_eq!(got, status, "{body} → {envelope}");
        assert!(envelope["error"]["code"].is_string(), "{envelope}");
    }

    // Unknown account and wrong password are indistinguishable.
    let (s1, unknown) = gw
        .post(
            "/api/v1/auth/login",
            Auth::None,
            json!({"email": "nobody@example.com", "password": PASSWORD}),
        )
        .await;
    let (s2, wrong) = gw
        .post(
            "/api/v1/auth/login",
            Auth::None,
            json!({"email": "bob@example.com", "password": "wrong password"}),
        )
        .await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(unknown["error"]["message"], wrong["error"]["message"]);

    for token in ["", "garbage", "cgk_notakey"] {
        let (status, _) = gw.get("/api/v1/auth/me", Auth::Bearer(token)).await;
        assert_eq!(
            status,
            if token.starts_with("cgk_") { 403 } else { 401 },
            "{token:?}"
        );
    }
    assert_eq!(
        gw.get("/api/v1/organizations/current", Auth::None).await.0,
        401
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_attempts_are_limited_per_account() {
    let storage = TestStorage::embedded();
    let mut limited = settings();
    limited.login_attempts_per_account = Some(3);
    let gw = spawn(storage.config.clone(), limited).await;
    gw.sign_up("carol@example.com").await; // one attempt
    for _ in 0..2 {
        let (status, _) = gw
            .post(
                "/api/v1/auth/login",
                Auth::None,
                json!({"email": "carol@example.com", "password": "wrong password"}),
            )
            .await;
        assert_eq!(status, 401);
    }
    let resp = gw
        .app
        .client
        .post(format!("{}/api/v1/auth/login", gw.app.address))
        .json(&json!({"email": "carol@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        429,
        "the right password does not lift the limit"
    );
    let retry: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    // Sliding window: the spent bucket keeps weighing for part of the next one.
    assert!(retry > 0 && retry <= 1800, "{retry}");
    let envelope: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(envelope["error"]["code"], "rate_limited");
    // Another account from the same address is not affected.
    gw.sign_up("dave@example.com").await;
}
