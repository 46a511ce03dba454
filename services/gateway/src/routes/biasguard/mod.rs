//! `/api/v1/biasguard`: the administration of BiasGuard for the caller's organisation — its
//! policies (admins write, members read), the violations BiasGuard recorded (admins resolve them)
//! and BiasGuard's audit log (admins). Every query is scoped to the caller's organisation; another
//! organisation's ids answer 404.
//!
//! BiasGuard replicas cache each organisation's policies. Every policy change publishes the
//! organisation id on the cache channel [`POLICIES_CHANNEL`](cg_guard_api::biasguard::POLICIES_CHANNEL), so they drop that cache at once.

mod audit;
mod policies;
mod violations;

use actix_web::web;
use cg_storage::Cache;
use cg_storage::sql_types::Id;
use utoipa::openapi::path::HttpMethod;

use crate::api_doc::{Endpoint, body};

const TAG: &str = "biasguard";

/// Tell BiasGuard replicas that `organization_id`'s policies changed. A failed publish is only
/// logged: the change is stored, and replicas reload their cache when it expires anyway.
async fn announce_policy_change(cache: &Cache, organization_id: Id) {
    if let Err(e) = cache
        .publish(
            cg_guard_api::biasguard::POLICIES_CHANNEL,
            &organization_id.to_string(),
        )
        .await
    {
        tracing::warn!(error = %e, org.id = %organization_id, "announcing a BiasGuard policy change failed");
    }
}

/// This resource's routes.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/biasguard/policies",
            || web::get().to(policies::list),
            TAG,
            "The organisation's BiasGuard policies, evaluation order (`?active=true|false`)",
        ),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/biasguard/policies",
            || web::post().to(policies::create),
            TAG,
            "Create a BiasGuard policy (admin)",
        )
        .body(body::<policies::CreatePolicy>())
        .ok(201),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/biasguard/policies/{id}",
            || web::get().to(policies::get),
            TAG,
            "One BiasGuard policy",
        ),
        Endpoint::new(
            HttpMethod::Patch,
            "/api/v1/biasguard/policies/{id}",
            || web::patch().to(policies::update),
            TAG,
            "Change a BiasGuard policy (admin)",
        )
        .body(body::<policies::UpdatePolicy>()),
        Endpoint::new(
            HttpMethod::Delete,
            "/api/v1/biasguard/policies/{id}",
            || web::delete().to(policies::delete),
            TAG,
            "Delete a BiasGuard policy (admin)",
        )
        .ok(204),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/biasguard/violations",
            || web::get().to(violations::list),
            TAG,
            "Policy violations, newest first (`?resolved=&severity=&policy_id=&since=&until=&limit=&offset=`)",
        ),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/biasguard/violations/{id}",
            || web::get().to(violations::get),
            TAG,
            "One policy violation",
        ),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/biasguard/violations/{id}/resolve",
            || web::post().to(violations::resolve),
            TAG,
            "Resolve a policy violation with notes (admin, user login)",
        )
        .body(body::<violations::Resolve>()),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/biasguard/audit",
            || web::get().to(audit::list),
            TAG,
            "BiasGuard's audit log of the organisation, newest first (admin; `?limit=`)",
        ),
    ]
}
