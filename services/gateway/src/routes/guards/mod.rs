//! `/api/v1/guards`: the unified guard endpoint and guard health and discovery. Every route needs
//! a caller (user or API key).

mod health;
mod process;
mod services;

use actix_web::web;
use cg_guard_api::GuardKind;

pub use process::{ProcessRequest, ProcessResponse};

use crate::api_doc::{Endpoint, body};
use crate::error::GatewayError;
use utoipa::openapi::path::HttpMethod;

const TAG: &str = "guards";

/// This resource's routes.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/guards/process",
            || web::post().to(process::process),
            TAG,
            "Send a payload to one guard, several, or all",
        )
        .body(body::<ProcessRequest>()),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/guards/scan",
            || web::post().to(process::process),
            TAG,
            "Alias of /process",
        )
        .body(body::<ProcessRequest>()),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/guards/health",
            || web::get().to(health::all),
            TAG,
            "Health of every guard (cached 30 s)",
        ),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/guards/health/aggregated",
            || web::get().to(health::aggregated),
            TAG,
            "Summary of the guards' health and circuit breakers",
        ),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/guards/health/{service}",
            || web::get().to(health::one),
            TAG,
            "Health of one guard",
        ),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/guards/services",
            || web::get().to(services::list),
            TAG,
            "The guards this gateway routes to",
        ),
    ]
}

/// A guard named by the caller, or a 400 listing the valid names.
pub(crate) fn parse_guard(name: &str) -> Result<GuardKind, GatewayError> {
    name.parse::<GuardKind>().map_err(|e| GatewayError::BadRequest {
        code: "unknown_service",
        message: e.to_string(),
        details: serde_json::json!({"valid_services": GuardKind::ALL.map(GuardKind::name), "given": name}),
    })
}
