//! `GET /audit/analysis` (stored results of the caller's organisation) and `/audit/system`
//! (HealthGuard's recorded health).

use std::sync::atomic::Ordering;

use actix_web::{HttpRequest, HttpResponse, web};
use cg_guard_api::ORGANIZATION_HEADER;
use cg_service_kit::ApiError;
use cg_storage::models::{HealthSample, PoisonResult};
use serde::Deserialize;
use serde_json::json;

use crate::state::{HealthState, resident_bytes};

#[derive(Debug, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub offset: Option<i64>,
}

pub async fn analysis(
    req: HttpRequest,
    state: web::Data<HealthState>,
    page: web::Query<Page>,
) -> Result<HttpResponse, ApiError> {
    let organization = req
        .headers()
        .get(ORGANIZATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(|o| {
            o.parse()
                .map_err(|_| ApiError::bad_request("X-Organization-ID must be a UUID"))
        })
        .transpose()?;
    let limit = page.limit.unwrap_or(50).clamp(1, 500);
    let offset = page.offset.unwrap_or(0).max(0);
    let mut pooled = state.db.get().await?;
    let rows = PoisonResult::list(&mut pooled.conn(), organization, limit, offset).await?;
    Ok(HttpResponse::Ok().json(json!({"results": rows, "limit": limit, "offset": offset})))
}

pub async fn system(state: web::Data<HealthState>) -> Result<HttpResponse, ApiError> {
    let depth = state.outbox.depth().await.unwrap_or(-1);
    let recent = async {
        let mut pooled = state.db.get().await?;
        HealthSample::recent(&mut pooled.conn(), 20).await
    }
    .await;
    Ok(HttpResponse::Ok().json(json!({
        "instance": state.instance,
        "status": if depth > 0 || recent.is_err() { "degraded" } else { "healthy" },
        "current": {
            "memory_bytes": resident_bytes(),
            "in_flight": state.in_flight.load(Ordering::Relaxed),
            "requests_total": state.requests.load(Ordering::Relaxed),
            "uptime_seconds": state.started.elapsed().as_secs(),
            "outbox_depth": depth,
        },
        "recent": recent.unwrap_or_default(),
    })))
}
