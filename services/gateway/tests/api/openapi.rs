use cg_storage::testing::TestStorage;

use crate::helpers::{settings, spawn};

/// Every route the gateway serves is in `/openapi.json`, and `/docs` serves the UI.
#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_covers_every_route() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), settings()).await;
    let (status, doc) = gw.app.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    assert!(
        doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")),
        "{doc}"
    );
    let paths = doc["paths"].as_object().expect("paths");
    let endpoints = cg_gateway::routes::endpoints();
    assert!(endpoints.len() >= 35, "{} endpoints", endpoints.len());
    for e in &endpoints {
        let method = cg_gateway::api_doc::method_name(&e.method);
        assert!(
            paths[e.path][method].is_object(),
            "{e:?} missing from /openapi.json"
        );
    }
    for kit_route in ["/health", "/health/live", "/health/ready"] {
        assert!(paths.contains_key(kit_route), "{kit_route}");
    }
    // Served on the admin port only (CG_ADMIN_PORT), so not part of the public contract.
    assert!(!paths.contains_key("/metrics"));
    let register = &paths["/api/v1/auth/register"]["post"];
    assert_eq!(
        register["requestBody"]["content"]["application/json"]["schema"]["$ref"],
        "#/components/schemas/RegisterBody"
    );
    assert!(doc["components"]["schemas"]["RegisterBody"]["properties"]["email"].is_object());
    assert!(doc["components"]["schemas"]["ProcessRequest"].is_object());

    let (status, html) = gw.app.get_text("/docs/").await;
    assert_eq!(status, 200);
    assert!(html.contains("swagger"), "{}", &html[..html.len().min(300)]);
    let resp = gw
        .app
        .client
        .get(format!("{}/docs", gw.app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200, "/docs redirects to the UI");
}
