use std::time::{Duration, Instant};

use cg_storage::testing::TestStorage;
use serde_json::json;

use crate::helpers::{Auth, access, settings, spawn};

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_authenticate_and_stay_in_their_organisation() {
    for storage in TestStorage::all().await {
        let mode = storage.label;
        let gw = spawn(storage.config.clone(), settings()).await;
        let alice = gw.sign_up("alice@example.com").await;
        let mallory = gw.sign_up("mallory@example.com").await;
        let a = Auth::Bearer(access(&alice));

        let (status, created) = gw
            .post(
                "/api/v1/api-keys",
                a,
                json!({"name": "ci pipeline", "role": "member", "scopes": ["process", "read"]}),
            )
            .await;
        assert_eq!(status, 201, "{mode}: {created}");
        let secret = created["key"].as_str().unwrap().to_owned();
        assert!(
            secret.starts_with("cgk_") && secret.starts_with(created["prefix"].as_str().unwrap())
        );

        // Both header forms work and act in Alice's organisation.
        let (_, org_via_user) = gw.get("/api/v1/organizations/current", a).await;
        for auth in [Auth::ApiKey(&secret), Auth::Bearer(&secret)] {
            let (status, org) = gw.get("/api/v1/organizations/current", auth).await;
            assert_eq!(status, 200, "{mode}: {org}");
            assert_eq!(org["id"], org_via_user["id"]);
            assert_eq!(org["role"], "member");
        }
        // A member key cannot mint keys, and the listing never shows secrets.
        let (status, _) = gw
            .post(
                "/api/v1/api-keys",
                Auth::ApiKey(&secret),
                json!({"name": "x"}),
            )
            .await;
        assert_eq!(status, 403, "{mode}");
        let (_, listed) = gw.get("/api/v1/api-keys", a).await;
        assert_eq!(listed["api_keys"].as_array().unwrap().len(), 1);
        assert!(
            !listed.to_string().contains(&secret[12..]),
            "{mode}: secret listed"
        );

        // Another organisation cannot see or revoke it.
        let key_id = created["id"].as_str().unwrap();
        let (status, _) = gw
            .delete(
                &format!("/api/v1/api-keys/{key_id}"),
                Auth::Bearer(access(&mallory)),
            )
            .await;
        assert_eq!(status, 404, "{mode}");
        let (_, mallorys) = gw
            .get("/api/v1/api-keys", Auth::Bearer(access(&mallory)))
            .await;
        assert_eq!(mallorys["api_keys"].as_array().unwrap().len(), 0);

        // Revoked: refused at once.
        let (status, revoked) = gw.delete(&format!("/api/v1/api-keys/{key_id}"), a).await;
        assert_eq!(status, 200, "{mode}: {revoked}");
        assert!(revoked["revoked_at"].is_string());
        let (status, _) = gw
            .get("/api/v1/organizations/current", Auth::ApiKey(&secret))
            .await;
        assert_eq!(status, 401, "{mode}: revoked key accepted");
        let (status, _) = gw
            .get("/api/v1/organizations/current", Auth::ApiKey("cgk_0000"))
            .await;
        assert_eq!(status, 401);
    }
}

/// Two replicas share Redis and the database: a key revoked through one is refused by the other
/// within a second, although the other had it cached.
#[tokio::test(flavor = "multi_thread")]
async fn revocation_reaches_every_replica_within_a_second() {
    let Some(storage) = TestStorage::centralized().await else {
        return;
    };
    let one = spawn(storage.config.clone(), settings()).await;
    let two = spawn(storage.config.clone(), settings()).await;
    let alice = one.sign_up("alice@example.com").await;
    // A reading key: the replicas are asked to read with it.
    let (_, created) = one
        .post(
            "/api/v1/api-keys",
            Auth::Bearer(access(&alice)),
            json!({"name": "k", "scopes": ["read"]}),
        )
        .await;
    let secret = created["key"].as_str().unwrap();
    assert_eq!(
        two.get("/api/v1/organizations/current", Auth::ApiKey(secret))
            .await
            .0,
        200
    );

    let key_id = created["id"].as_str().unwrap();
    let (status, _) = one
        .delete(
            &format!("/api/v1/api-keys/{key_id}"),
            Auth::Bearer(access(&alice)),
        )
        .await;
    assert_eq!(status, 200);
    let revoked_at = Instant::now();
    loop {
        let (status, _) = two
            .get("/api/v1/organizations/current", Auth::ApiKey(secret))
            .await;
        if status == 401 {
            break;
        }
        assert!(
            revoked_at.elapsed() < Duration::from_secs(1),
            "replica two still accepts the key after {:?}",
            revoked_at.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
