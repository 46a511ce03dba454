//! `/api/v1/config`: the dynamic configuration every replica applies within a second (see
//! [`crate::traffic::config`]). Platform administrators only.

use actix_web::{HttpResponse, web};
use serde_json::{Value, json};
use utoipa::openapi::path::HttpMethod;

use crate::api_doc::{Access, Endpoint};
use crate::auth::AuthUser;
use crate::error::Result;
use crate::routes::users::admin::require_superuser;
use crate::state::AppState;

const TAG: &str = "config";

pub fn endpoints() -> Vec<Endpoint> {
    let e = |method, path, route: fn() -> actix_web::Route, summary| {
        Endpoint::new(method, path, route, TAG, summary).access(Access::User)
    };
    vec![
        e(
            HttpMethod::Get,
            "/api/v1/config",
            || web::get().to(all),
            "The configuration in force (platform admin)",
        ),
        e(
            HttpMethod::Get,
            "/api/v1/config/rate-limits",
            || web::get().to(rate_limits),
            "Rate-limit overrides",
        ),
        e(
            HttpMethod::Put,
            "/api/v1/config/rate-limits",
            || web::put().to(put_rate_limits),
            "Change rate-limit overrides",
        ),
        e(
            HttpMethod::Get,
            "/api/v1/config/feature-flags",
            || web::get().to(feature_flags),
            "Feature flags",
        ),
        e(
            HttpMethod::Put,
            "/api/v1/config/feature-flags",
            || web::put().to(put_feature_flags),
            "Change feature flags",
        ),
        e(
            HttpMethod::Put,
            "/api/v1/config/cache",
            || web::put().to(put_cache),
            "Change cache settings",
        ),
        e(
            HttpMethod::Get,
            "/api/v1/config/status",
            || web::get().to(status),
            "This replica's applied version",
        ),
        e(
            HttpMethod::Post,
            "/api/v1/config/reload",
            || web::post().to(reload),
            "Fetch and apply the shared configuration now",
        ),
        e(
            HttpMethod::Get,
            "/api/v1/config/export",
            || web::get().to(export),
            "The configuration and its last 100 changes",
        ),
    ]
}

async fn admin(state: &AppState, caller: &AuthUser) -> Result<()> {
    require_superuser(state, caller).await
}

async fn all(state: web::Data<AppState>, caller: AuthUser) -> Result<HttpResponse> {
    admin(&state, &caller).await?;
    Ok(HttpResponse::Ok()
        .json(json!({"config": *state.config.get(), "status": state.config.status()})))
}

async fn rate_limits(state: web::Data<AppState>, caller: AuthUser) -> Result<HttpResponse> {
    admin(&state, &caller).await?;
    Ok(HttpResponse::Ok().json(&state.config.get().rate_limits))
}

async fn feature_flags(state: web::Data<AppState>, caller: AuthUser) -> Result<HttpResponse> {
    admin(&state, &caller).await?;
    Ok(HttpResponse::Ok().json(&state.config.get().feature_flags))
}

async fn put(
    state: &AppState,
    caller: &AuthUser,
    section: &str,
    body: Value,
) -> Result<HttpResponse> {
    admin(state, caller).await?;
    let doc = state
        .config
        .change(section, body, &caller.user_id.to_string())
        .await?;
    Ok(HttpResponse::Ok().json(doc))
}

async fn put_rate_limits(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    put(&state, &caller, "rate_limits", body.into_inner()).await
}

async fn put_feature_flags(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    put(&state, &caller, "feature_flags", body.into_inner()).await
}

async fn put_cache(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: web::Json<Value>,
) -> Result<HttpResponse> {
    put(&state, &caller, "cache", body.into_inner()).await
}

async fn status(state: web::Data<AppState>, caller: AuthUser) -> Result<HttpResponse> {
    admin(&state, &caller).await?;
    Ok(HttpResponse::Ok().json(state.config.status()))
}

async fn reload(state: web::Data<AppState>, caller: AuthUser) -> Result<HttpResponse> {
    admin(&state, &caller).await?;
    let version = state.config.reload().await?;
    Ok(HttpResponse::Ok().json(json!({"version": version, "status": state.config.status()})))
}

async fn export(state: web::Data<AppState>, caller: AuthUser) -> Result<HttpResponse> {
    admin(&state, &caller).await?;
    let history = state.config.history(100).await?;
    Ok(HttpResponse::Ok().json(json!({"config": *state.config.get(), "history": history})))
}
