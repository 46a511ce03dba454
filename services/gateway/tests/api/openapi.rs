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

/// Every `$ref` in `value`.
fn refs<'a>(value: &'a serde_json::Value, out: &mut Vec<&'a str>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    ("$ref", Some(target)) => out.push(target),
                    _ => refs(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Client generators and schemathesis give up on a document with a dangling `$ref`
/// (`ErrorDetail` was referenced by `ErrorBody` but never defined).
#[tokio::test(flavor = "multi_thread")]
async fn every_schema_the_document_references_is_defined() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), settings()).await;
    let (_, doc) = gw.app.get_json("/openapi.json").await;
    let mut found = Vec::new();
    refs(&doc, &mut found);
    assert!(found.contains(&"#/components/schemas/ErrorDetail"));
    for target in found {
        let name = target
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("unexpected $ref {target}"));
        assert!(
            doc["components"]["schemas"][name].is_object(),
            "{target} is referenced but not defined"
        );
    }
}

/// A method a path does not support is 405 with `Allow` in the shared envelope, not 404; an
/// unknown path stays 404.
#[tokio::test(flavor = "multi_thread")]
async fn unsupported_methods_answer_405_with_allow() {
    let storage = TestStorage::embedded();
    let gw = spawn(storage.config.clone(), settings()).await;
    let call = |method: reqwest::Method, path: &str| {
        gw.app
            .client
            .request(method, format!("{}{path}", gw.app.address))
            .send()
    };
    for (method, path, allow) in [
        (reqwest::Method::PATCH, "/api/v1/auth/login", "POST"),
        (reqwest::Method::DELETE, "/health", "GET"),
        // Matches `/users/me` and `/users/{id}`: the methods of both.
        (
            reqwest::Method::POST,
            "/api/v1/users/me",
            "GET, PUT, DELETE",
        ),
    ] {
        let resp = call(method.clone(), path).await.unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{method} {path}");
        let mut got: Vec<String> = resp.headers()["allow"]
            .to_str()
            .unwrap()
            .split(", ")
            .map(str::to_owned)
            .collect();
        let mut want: Vec<String> = allow.split(", ").map(str::to_owned).collect();
        got.sort();
        want.sort();
        assert_eq!(got, want, "{method} {path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["error"]["code"], "method_not_allowed", "{body}");
        assert!(body["error"]["request_id"].is_string(), "{body}");
    }
    let resp = call(reqwest::Method::GET, "/api/v1/no-such-thing")
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
}
