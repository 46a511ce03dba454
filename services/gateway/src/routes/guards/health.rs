//! Guard health, cached per replica for 30 seconds.

use actix_web::{HttpResponse, web};
use cg_guard_api::GuardKind;
use cg_service_kit::observe::current_request_id;
use serde_json::{Map, Value, json};

use super::parse_guard;
use crate::auth::Caller;
use crate::error::{GatewayError, Result};
use crate::guards::GuardHealth;
use crate::state::AppState;

async fn every(state: &AppState) -> Vec<GuardHealth> {
    let id = current_request_id();
    futures::future::join_all(GuardKind::ALL.map(|k| state.guards.health(k, &id))).await
}

fn by_name(all: &[GuardHealth]) -> Map<String, Value> {
    all.iter()
        .map(|h| {
            (
                h.service_name.clone(),
                serde_json::to_value(h).unwrap_or(Value::Null),
            )
        })
        .collect()
}

/// `GET /api/v1/guards/health`.
pub async fn all(state: web::Data<AppState>, _caller: Caller) -> Result<HttpResponse> {
    Ok(HttpResponse::Ok().json(by_name(&every(&state).await)))
}

/// `GET /api/v1/guards/health/aggregated`.
pub async fn aggregated(state: web::Data<AppState>, _caller: Caller) -> Result<HttpResponse> {
    let all = every(&state).await;
    let count = |s: &str| all.iter().filter(|h| h.status == s).count();
    let (healthy, degraded, unhealthy) = (count("healthy"), count("degraded"), count("unhealthy"));
    let overall = if healthy == all.len() {
        "healthy"
    } else if healthy + degraded > 0 {
        "degraded"
    } else {
        "unhealthy"
    };
    Ok(HttpResponse::Ok().json(json!({
        "overall_status": overall,
        "services_healthy": healthy,
        "services_degraded": degraded,
        "services_unhealthy": unhealthy,
        "services_total": all.len(),
        "services": by_name(&all),
        "circuit_breakers": state.guards.breaker_states(),
    })))
}

/// `GET /api/v1/guards/health/{service}`.
pub async fn one(
    state: web::Data<AppState>,
    _caller: Caller,
    service: web::Path<String>,
) -> Result<HttpResponse> {
    let name = service.into_inner();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(GatewayError::BadRequest {
            code: "invalid_service_name",
            message: "service names contain only letters, digits, '_' and '-'".into(),
            details: json!({}),
        });
    }
    let kind = parse_guard(&name).map_err(|_| GatewayError::NotFound("service"))?;
    Ok(HttpResponse::Ok().json(state.guards.health(kind, &current_request_id()).await))
}
