//! Issue 20: sessions that really end, roles and scopes that hold, abuse limits, no leaks.
//! Each test names the defect it pins; docs/security.md points here.

use std::time::{Duration, Instant};

use cg_gateway::config::GatewaySettings;
use cg_storage::testing::TestStorage;
use serde_json::{Value, json};

use crate::helpers::{Auth, Gateway, PASSWORD, access, make_superuser, refresh, settings, spawn};

/// Guards nobody listens for: a call that passes every check ends in 503 at the guard, so a
/// 403 can only come from the check under test.
fn no_guards() -> GatewaySettings {
    let closed = Some("http://127.0.0.1:9".to_owned());
    GatewaySettings {
        tokenguard_url: closed.clone(),
        trustguard_url: closed.clone(),
        contextguard_url: closed.clone(),
        biasguard_url: closed.clone(),
        healthguard_url: closed,
        ..settings()
    }
}

const PROCESS: &str = "/api/v1/guards/process";

fn process_body() -> Value {
    json!({"service_type": "biasguard", "payload": {"text": "hello"}})
}

/// `email` signs up and joins `owner`'s default organisation with `role`; returns their tokens
/// and that organisation's id.
async fn join(gw: &Gateway, owner: &Value, email: &str, role: &str) -> (Value, String) {
    let (_, org) = gw
        .get("/api/v1/organizations/current", Auth::Bearer(access(owner)))
        .await;
    let org = org["id"].as_str().unwrap().to_owned();
    let tokens = gw.sign_up(email).await;
    let (status, invite) = gw
        .post(
            "/api/v1/organizations/members/invite",
            Auth::Bearer(access(owner)),
            json!({"email": email, "role": role}),
        )
        .await;
    assert_eq!(status, 201, "{invite}");
    let (status, joined) = gw
        .post(
            "/api/v1/organizations/invitations/accept",
            Auth::Bearer(access(&tokens)),
            json!({"token": invite["token"]}),
        )
        .await;
    assert_eq!(status, 200, "{joined}");
    (tokens, org)
}

async fn me_status(gw: &Gateway, tokens: &Value) -> u16 {
    gw.get("/api/v1/auth/me", Auth::Bearer(access(tokens)))
        .await
        .0
}

/// Items 1 and 2: a password change ends every session of the account at once: other
/// sessions' refresh tokens and every access token already issued, this session's included.
#[tokio::test(flavor = "multi_thread")]
async fn a_password_change_ends_every_session_and_its_access_tokens() {
    for storage in TestStorage::all().await {
        let mode = storage.label;
        let gw = spawn(storage.config.clone(), settings()).await;
        let here = gw.sign_up("pat@example.com").await;
        let elsewhere = gw.login("pat@example.com").await;
        let (status, body) = gw
            .put(
                "/api/v1/users/me",
                Auth::Bearer(access(&here)),
                json!({"password": "a brand new passphrase", "current_password": PASSWORD}),
            )
            .await;
        assert_eq!(status, 200, "{mode}: {body}");
        for tokens in [&here, &elsewhere] {
            assert_eq!(gw.refresh(refresh(tokens)).await.0, 401, "{mode}: refresh");
            assert_eq!(me_status(&gw, tokens).await, 401, "{mode}: access token");
        }
        let (status, _) = gw
            .post(
                "/api/v1/auth/login",
                Auth::None,
                json!({"email": "pat@example.com", "password": "a brand new passphrase"}),
            )
            .await;
        assert_eq!(status, 200, "{mode}: the new password logs in");
    }
}

/// Items 1 and 2: deactivating an account ends its sessions; its access token stops at once.
#[tokio::test(flavor = "multi_thread")]
async fn deactivation_ends_the_accounts_sessions_at_once() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), settings()).await;
    let admin = gw.sign_up("root@example.com").await;
    make_superuser(&storage.config, "root@example.com").await;
    let user = gw.sign_up("quinn@example.com").await;
    let (_, me) = gw
        .get("/api/v1/users/me", Auth::Bearer(access(&user)))
        .await;
    let id = me["id"].as_str().unwrap();
    let (status, body) = gw
        .post(
            &format!("/api/v1/users/{id}/deactivate"),
            Auth::Bearer(access(&admin)),
            json!({}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(me_status(&gw, &user).await, 401);
    assert_eq!(gw.refresh(refresh(&user)).await.0, 401);
}

/// Item 1: rotation does not extend a session family past `SESSION_MAX_LIFETIME`.
#[tokio::test(flavor = "multi_thread")]
async fn rotation_does_not_extend_a_family_past_its_maximum_lifetime() {
    let storage = TestStorage::embedded();
    let gw = spawn(
        storage.config.clone(),
        GatewaySettings {
            session_max_lifetime: Some(3600),
            ..settings()
        },
    )
    .await;
    let first = gw.sign_up("rory@example.com").await;
    let (status, second) = gw.refresh(refresh(&first)).await;
    assert_eq!(status, 200, "{second}");
    let (status, third) = gw.refresh(refresh(&second)).await;
    assert_eq!(status, 200, "{third}");
    assert_eq!(
        third["refresh_expires_at"], first["refresh_expires_at"],
        "each rotation pushed the end of the family further"
    );
}

/// Item 3: logging out with an access token issued before the latest refresh ends the whole
/// family (the newest refresh and access tokens included); with nothing to end it is refused.
#[tokio::test(flavor = "multi_thread")]
async fn logout_ends_the_whole_family_or_says_it_ended_nothing() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), settings()).await;
    let old = gw.sign_up("sam@example.com").await;
    // A malformed body is refused, not read as "no refresh token" (which would end the session
    // of the access token instead).
    let (status, body) = gw
        .post(
            "/api/v1/auth/logout",
            Auth::Bearer(access(&old)),
            json!({"refresh_token": 5}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(me_status(&gw, &old).await, 200, "nothing ended");
    let (_, newest) = gw.refresh(refresh(&old)).await;
    let resp = gw
        .app
        .client
        .post(format!("{}/api/v1/auth/logout", gw.app.address))
        .bearer_auth(access(&old))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    assert_eq!(
        gw.refresh(refresh(&newest)).await.0,
        401,
        "newest refresh token"
    );
    assert_eq!(me_status(&gw, &newest).await, 401, "newest access token");

    let (status, body) = gw
        .post(
            "/api/v1/auth/logout",
            Auth::None,
            json!({"refresh_token": "cgr_not-a-session"}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
}

/// Item 2: an ended session's access token is refused by every replica within about a second,
/// with no database read per request (the other replica learns it from the announcement).
#[tokio::test(flavor = "multi_thread")]
async fn every_replica_refuses_an_ended_sessions_access_token() {
    let Some(storage) = TestStorage::centralized().await else {
        return;
    };
    let one = spawn(storage.config.clone(), settings()).await;
    let two = spawn(storage.config.clone(), settings()).await;
    let tokens = one.sign_up("tess@example.com").await;
    assert_eq!(me_status(&two, &tokens).await, 200);
    assert_eq!(one.logout(&tokens).await, 200);
    let ended = Instant::now();
    while me_status(&two, &tokens).await != 401 {
        assert!(
            ended.elapsed() < Duration::from_secs(2),
            "replica two still accepts the access token after {:?}",
            ended.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Item 4: deleting one's account needs its password; a refusal deletes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn deleting_the_account_needs_its_password() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), settings()).await;
    let tokens = gw.sign_up("uma@example.com").await;
    let auth = Auth::Bearer(access(&tokens));
    let (status, body) = gw.delete_json("/api/v1/users/me", auth, json!({})).await;
    assert!(status == 400 || status == 422, "{status}: {body}");
    let (status, body) = gw
        .delete_json(
            "/api/v1/users/me",
            auth,
            json!({"password": "not the password"}),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(gw.get("/api/v1/users/me", auth).await.0, 200, "still there");
    let (status, body) = gw
        .delete_json("/api/v1/users/me", auth, json!({"password": PASSWORD}))
        .await;
    assert_eq!(status, 204, "{body}");
    assert_eq!(me_status(&gw, &tokens).await, 401, "its sessions ended");
}

/// Item 5: viewers (people or keys) read; they do not process.
#[tokio::test(flavor = "multi_thread")]
async fn viewers_do_not_process() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), no_guards()).await;
    let owner = gw.sign_up("vera@example.com").await;
    let (viewer, org) = join(&gw, &owner, "walt@example.com", "viewer").await;
    let (status, body) = gw
        .post_in(PROCESS, Auth::Bearer(access(&viewer)), &org, process_body())
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, key) = gw
        .post(
            "/api/v1/api-keys",
            Auth::Bearer(access(&owner)),
            json!({"name": "viewer", "role": "viewer"}),
        )
        .await;
    assert_eq!(status, 201, "{key}");
    assert_eq!(key["scopes"], json!(["read"]), "{key}");
    let (status, body) = gw
        .post(
            PROCESS,
            Auth::ApiKey(key["key"].as_str().unwrap()),
            process_body(),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = gw
        .post(
            "/api/v1/api-keys",
            Auth::Bearer(access(&owner)),
            json!({"name": "v2", "role": "viewer", "scopes": ["process"]}),
        )
        .await;
    assert_eq!(
        status, 422,
        "a viewer key cannot be given the process scope: {body}"
    );
}

/// Item 6: only admins may narrow the BiasGuard policies a call is checked against.
#[tokio::test(flavor = "multi_thread")]
async fn only_admins_choose_which_policies_apply() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), no_guards()).await;
    let owner = gw.sign_up("xena@example.com").await;
    let (member, org) = join(&gw, &owner, "yuri@example.com", "member").await;
    let narrowed =
        json!({"service_type": "biasguard", "payload": {"text": "hello", "policy_ids": []}});
    let (status, body) = gw
        .post_in(
            PROCESS,
            Auth::Bearer(access(&member)),
            &org,
            narrowed.clone(),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = gw
        .post_in(PROCESS, Auth::Bearer(access(&member)), &org, process_body())
        .await;
    assert_eq!(
        status, 503,
        "without policy_ids the member reaches the guard: {body}"
    );
    let (status, body) = gw
        .post(PROCESS, Auth::Bearer(access(&owner)), narrowed)
        .await;
    assert_eq!(status, 503, "an owner may choose: {body}");
}

/// Item 7: keys carry scopes (default: process only), and no key changes credentials,
/// memberships or billing, whatever its role.
#[tokio::test(flavor = "multi_thread")]
async fn api_keys_hold_to_their_scopes_and_never_change_credentials() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), no_guards()).await;
    let owner = gw.sign_up("zoe@example.com").await;
    let user = Auth::Bearer(access(&owner));
    let (_, plain) = gw
        .post("/api/v1/api-keys", user, json!({"name": "plain"}))
        .await;
    assert_eq!(plain["scopes"], json!(["process"]), "{plain}");
    let plain = Auth::ApiKey(plain["key"].as_str().unwrap());
    assert_eq!(gw.post(PROCESS, plain, process_body()).await.0, 503);
    let (status, body) = gw.get("/api/v1/organizations/current", plain).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "insufficient_scope");

    let (status, admin) = gw
        .post(
            "/api/v1/api-keys",
            user,
            json!({"name": "admin", "role": "owner", "scopes": ["admin", "read", "process"]}),
        )
        .await;
    assert_eq!(status, 201, "{admin}");
    let admin = Auth::ApiKey(admin["key"].as_str().unwrap());
    assert_eq!(gw.get("/api/v1/organizations/current", admin).await.0, 200);
    let (_, keys) = gw.get("/api/v1/api-keys", user).await;
    let some_key = keys["api_keys"][0]["id"].as_str().unwrap().to_owned();
    for (what, status) in [
        (
            "mint a key",
            gw.post("/api/v1/api-keys", admin, json!({"name": "minted"}))
                .await
                .0,
        ),
        (
            "revoke a key",
            gw.delete(&format!("/api/v1/api-keys/{some_key}"), admin)
                .await
                .0,
        ),
        (
            "invite",
            gw.post(
                "/api/v1/organizations/members/invite",
                admin,
                json!({"email": "mallory@example.com", "role": "admin"}),
            )
            .await
            .0,
        ),
        (
            "cancel the subscription",
            gw.post("/api/v1/subscriptions/cancel", admin, json!({}))
                .await
                .0,
        ),
    ] {
        assert_eq!(status, 403, "an API key could {what}");
    }
}

/// Item 8: an invitation that expired unaccepted no longer blocks the address, and an open one
/// can be revoked (its token then stops working).
#[tokio::test(flavor = "multi_thread")]
async fn expired_invitations_stop_counting_and_invitations_can_be_revoked() {
    let storage = TestStorage::embedded();
    let expiring = spawn(
        storage.config.clone(),
        GatewaySettings {
            invitation_ttl_hours: Some(0),
            ..settings()
        },
    )
    .await;
    let owner = expiring.sign_up("amy@example.com").await;
    let invite = json!({"email": "ben@example.com", "role": "member"});
    let auth = Auth::Bearer(access(&owner));
    let path = "/api/v1/organizations/members/invite";
    assert_eq!(expiring.post(path, auth, invite.clone()).await.0, 201);
    let (status, body) = expiring.post(path, auth, invite.clone()).await;
    assert_eq!(
        status, 201,
        "an expired invitation blocked the address: {body}"
    );

    let other = TestStorage::embedded();
    let gw = spawn(other.config.clone(), settings()).await;
    let owner = gw.sign_up("amy@example.com").await;
    let auth = Auth::Bearer(access(&owner));
    let (_, open) = gw.post(path, auth, invite.clone()).await;
    let id = open["invitation_id"].as_str().unwrap();
    let (status, body) = gw
        .delete(&format!("/api/v1/organizations/invitations/{id}"), auth)
        .await;
    assert_eq!(status, 204, "{body}");
    let ben = gw.sign_up("ben@example.com").await;
    let (status, _) = gw
        .post(
            "/api/v1/organizations/invitations/accept",
            Auth::Bearer(access(&ben)),
            json!({"token": open["token"]}),
        )
        .await;
    assert_eq!(status, 404, "a revoked invitation was accepted");
    assert_eq!(
        gw.delete(&format!("/api/v1/organizations/invitations/{id}"), auth)
            .await
            .0,
        404
    );
    assert_eq!(
        gw.post(path, auth, invite).await.0,
        201,
        "revoked ones do not block"
    );
}

/// Item 9: registrations per address, organisation creations per user and how many a user
/// may belong to, and password checks on `PUT /users/me`, are limited.
#[tokio::test(flavor = "multi_thread")]
async fn registrations_organisations_and_password_checks_are_limited() {
    let storage = TestStorage::embedded();
    let gw = spawn(
        storage.config.clone(),
        GatewaySettings {
            registrations_per_ip_per_hour: Some(2),
            organizations_per_user_per_hour: Some(1),
            max_organizations_per_user: Some(3),
            login_attempts_per_account: Some(2),
            ..settings()
        },
    )
    .await;
    let tokens = gw.sign_up("cleo@example.com").await;
    gw.sign_up("dan@example.com").await;
    let (status, body) = gw
        .post(
            "/api/v1/auth/register",
            Auth::None,
            json!({"email": "eve@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(status, 429, "{body}");

    let auth = Auth::Bearer(access(&tokens));
    let orgs = "/api/v1/organizations";
    assert_eq!(gw.post(orgs, auth, json!({"name": "One"})).await.0, 201);
    let (status, body) = gw.post(orgs, auth, json!({"name": "Two"})).await;
    assert_eq!(status, 429, "{body}");

    let wrong = json!({"password": "another passphrase", "current_password": "wrong guess"});
    for _ in 0..2 {
        assert_eq!(gw.put("/api/v1/users/me", auth, wrong.clone()).await.0, 403);
    }
    let (status, body) = gw.put("/api/v1/users/me", auth, wrong).await;
    assert_eq!(status, 429, "{body}");
}

/// Item 9: a user cannot belong to more than `MAX_ORGANIZATIONS_PER_USER` organisations by
/// creating them.
#[tokio::test(flavor = "multi_thread")]
async fn organisations_per_user_are_capped() {
    let storage = TestStorage::embedded();
    let gw = spawn(
        storage.config.clone(),
        GatewaySettings {
            max_organizations_per_user: Some(2),
            ..settings()
        },
    )
    .await;
    let tokens = gw.sign_up("fay@example.com").await;
    let auth = Auth::Bearer(access(&tokens));
    let orgs = "/api/v1/organizations";
    assert_eq!(gw.post(orgs, auth, json!({"name": "Second"})).await.0, 201);
    let (status, body) = gw.post(orgs, auth, json!({"name": "Third"})).await;
    assert_eq!(status, 403, "{body}");
}

async fn login_from(gw: &Gateway, address: &str, email: &str, password: &str) -> (u16, Value) {
    gw.send(
        gw.app
            .client
            .post(format!("{}/api/v1/auth/login", gw.app.address))
            .header("x-forwarded-for", address)
            .json(&json!({"email": email, "password": password})),
    )
    .await
}

/// Item 11: wrong passwords from one address do not lock the owner out from another; spread
/// over many addresses they meet a delay that grows, but stays short for the owner.
#[tokio::test(flavor = "multi_thread")]
async fn wrong_passwords_elsewhere_do_not_lock_the_owner_out() {
    let storage = TestStorage::embedded();
    let gw = spawn(
        storage.config.clone(),
        GatewaySettings {
            login_attempts_per_account: Some(3),
            cg_trust_proxy_headers: Some(true),
            ..settings()
        },
    )
    .await;
    gw.sign_up("gus@example.com").await;
    let email = "gus@example.com";
    for expected in [401, 401, 401, 429, 429] {
        let (status, _) = login_from(&gw, "198.51.100.7", email, "guess").await;
        assert_eq!(status, expected);
    }
    let (status, body) = login_from(&gw, "203.0.113.9", email, PASSWORD).await;
    assert_eq!(status, 200, "the owner was locked out: {body}");

    // Many addresses, one wrong password each: past the free failures the account waits.
    let mut refused = None;
    for i in 1..=6 {
        let (status, body) = login_from(&gw, &format!("192.0.2.{i}"), email, "guess").await;
        if status == 429 {
            refused = Some(body);
            break;
        }
        assert_eq!(status, 401, "{body}");
    }
    let refused = refused.expect("no delay for guesses from many addresses");
    let wait = refused["error"]["details"]["retry_after"].as_u64().unwrap();
    assert!((1..=60).contains(&wait), "{refused}");
}

/// Item 14: a guard failure tells the caller which guard and the request id, never where the
/// guard lives or what the transport said.
#[tokio::test(flavor = "multi_thread")]
async fn guard_failures_do_not_leak_internal_addresses() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), no_guards()).await;
    let tokens = gw.sign_up("hal@example.com").await;
    let auth = Auth::Bearer(access(&tokens));
    let (status, body) = gw.post(PROCESS, auth, process_body()).await;
    assert_eq!(status, 503, "{body}");
    let multi = json!({"services": ["biasguard", "trustguard"], "payload": {"text": "hi"}});
    let (_, multi) = gw.post(PROCESS, auth, multi).await;
    let (_, health) = gw.get("/api/v1/guards/health", auth).await;
    for answer in [&body, &multi, &health] {
        let text = answer.to_string();
        for leak in ["127.0.0.1", "http://", "error sending request", "tcp"] {
            assert!(!text.contains(leak), "{leak:?} in {text}");
        }
    }
    assert!(body["error"]["request_id"].is_string(), "{body}");
}
