//! `GET /api/v1/guards/services`: the guards this gateway routes to.

use actix_web::{HttpResponse, web};
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::error::Result;
use crate::state::AppState;

pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    let profile = state.org_profiles.get(caller.organization_id).await?;
    let id = cg_service_kit::observe::current_request_id();
    let mut services = Map::new();
    let mut healthy = 0;
    for (priority, guard) in state.guards.all().iter().enumerate() {
        let health = state.guards.health(guard.kind, &id).await;
        if health.status == "healthy" {
            healthy += 1;
        }
        services.insert(
            guard.kind.name().into(),
            json!({
                "name": guard.kind.name(),
                "service_type": guard.kind.name(),
                "base_url": guard.client.base_url().as_str(),
                "enabled": profile.allows(guard.kind.name()),
                "priority": priority + 1,
                "tags": ["guard"],
                "status": health.status,
                "last_check": health.last_check,
            }),
        );
    }
    let total = services.len();
    Ok(HttpResponse::Ok().json(json!({
        "services": Value::Object(services),
        "total_services": total,
        "healthy_services": healthy,
    })))
}
