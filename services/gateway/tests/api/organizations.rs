use cg_storage::testing::TestStorage;
use serde_json::json;

use crate::helpers::{Auth, access, settings, spawn};

#[tokio::test(flavor = "multi_thread")]
async fn organisations_members_invitations_and_isolation() {
    for storage in TestStorage::all().await {
        let mode = storage.label;
        let gw = spawn(storage.config.clone(), settings()).await;
        let alice = gw.sign_up("alice@example.com").await;
        let bob = gw.sign_up("bob@example.com").await;
        let (a, b) = (Auth::Bearer(access(&alice)), Auth::Bearer(access(&bob)));

        // A second organisation for Alice, selected by header.
        let (status, acme) = gw
            .post("/api/v1/organizations", a, json!({"name": "Acme Corp"}))
            .await;
        assert_eq!(status, 201, "{mode}: {acme}");
        let acme_id = acme["id"].as_str().unwrap().to_owned();
        let (status, current) = gw
            .get_in("/api/v1/organizations/current", a, &acme_id)
            .await;
        assert_eq!(
            (status, current["name"].as_str()),
            (200, Some("Acme Corp")),
            "{mode}: {current}"
        );
        assert_eq!(current["tier"], "free");

        // Bob is not a member: Acme does not exist for him.
        let (status, envelope) = gw
            .get_in("/api/v1/organizations/current", b, &acme_id)
            .await;
        assert_eq!(status, 404, "{mode}: {envelope}");
        assert_eq!(
            gw.get_in("/api/v1/organizations/members", b, &acme_id)
                .await
                .0,
            404
        );

        // Alice invites Bob as viewer; Bob accepts and sees Acme, read-only.
        let invite = gw
            .send(
                gw.app
                    .client
                    .post(format!(
                        "{}/api/v1/organizations/members/invite",
                        gw.app.address
                    ))
                    .bearer_auth(access(&alice))
                    .header("x-organization-id", &acme_id)
                    .json(&json!({"email": "BOB@example.com", "role": "viewer"})),
            )
            .await;
        assert_eq!(invite.0, 201, "{mode}: {}", invite.1);
        let token = invite.1["token"].as_str().unwrap().to_owned();
        let (status, joined) = gw
            .post(
                "/api/v1/organizations/invitations/accept",
                b,
                json!({"token": token}),
            )
            .await;
        assert_eq!(status, 200, "{mode}: {joined}");
        let (status, _) = gw
            .post(
                "/api/v1/organizations/invitations/accept",
                b,
                json!({"token": token}),
            )
            .await;
        assert_eq!(status, 404, "{mode}: an invitation is accepted once");
        let (status, members) = gw
            .get_in("/api/v1/organizations/members", b, &acme_id)
            .await;
        assert_eq!(status, 200);
        assert_eq!(
            members["members"].as_array().unwrap().len(),
            2,
            "{mode}: {members}"
        );
        // A viewer cannot administer.
        let renamed = gw
            .send(
                gw.app
                    .client
                    .put(format!("{}/api/v1/organizations/current", gw.app.address))
                    .bearer_auth(access(&bob))
                    .header("x-organization-id", &acme_id)
                    .json(&json!({"name": "Bob's now"})),
            )
            .await;
        assert_eq!(renamed.0, 403, "{mode}: {}", renamed.1);

        // The last owner stays.
        let me: serde_json::Value = gw.get("/api/v1/users/me", a).await.1;
        let alice_id = me["id"].as_str().unwrap();
        let demote = gw
            .send(
                gw.app
                    .client
                    .put(format!(
                        "{}/api/v1/organizations/members/{alice_id}",
                        gw.app.address
                    ))
                    .bearer_auth(access(&alice))
                    .header("x-organization-id", &acme_id)
                    .json(&json!({"role": "member"})),
            )
            .await;
        assert_eq!(demote.0, 409, "{mode}: {}", demote.1);

        // Subscriptions are per organisation too.
        let (status, sub) = gw
            .get_in("/api/v1/subscriptions/current", a, &acme_id)
            .await;
        assert_eq!(
            (status, sub["tier"]["name"].as_str()),
            (200, Some("free")),
            "{mode}: {sub}"
        );
        let (status, tiers) = gw.get("/api/v1/subscriptions/tiers", a).await;
        assert_eq!(status, 200);
        assert_eq!(tiers["tiers"].as_array().unwrap().len(), 3);
    }
}
