//! `/api/v1/subscriptions`: tiers (created and edited by platform admins), the organisation's
//! subscription, its history, cancel and reactivate (`/usage` is in [`super::usage`]).

mod create_tier;
mod update_tier;

use actix_web::{HttpResponse, web};
use cg_storage::models::{Role, Subscription, SubscriptionTier};
use cg_storage::sql_types::Timestamp;

use crate::api_doc::{Access, Endpoint, body};
use crate::auth::Caller;
use crate::error::{GatewayError, Result};
use crate::state::AppState;
use utoipa::openapi::path::HttpMethod;

const TAG: &str = "subscriptions";

/// This resource's routes.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/subscriptions/tiers",
            || web::get().to(tiers),
            TAG,
            "Subscription tiers",
        ),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/subscriptions/tiers",
            || web::post().to(create_tier::create),
            TAG,
            "Create a tier (platform admin)",
        )
        .access(Access::User)
        .body(body::<crate::domain::TierFields>())
        .ok(201),
        Endpoint::new(
            HttpMethod::Patch,
            "/api/v1/subscriptions/tiers/{name}",
            || web::patch().to(update_tier::update),
            TAG,
            "Change a tier's limits, guards, budget, price, features or availability (platform admin)",
        )
        .access(Access::User)
        .body(body::<crate::domain::TierFields>()),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/subscriptions/current",
            || web::get().to(current),
            TAG,
            "The subscription in force",
        ),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/subscriptions/history",
            || web::get().to(history),
            TAG,
            "Every subscription the organisation had (admin)",
        ),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/subscriptions/cancel",
            || web::post().to(cancel),
            TAG,
            "End the subscription with its period (owner)",
        ),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/subscriptions/reactivate",
            || web::post().to(reactivate),
            TAG,
            "Undo a cancellation (owner)",
        ),
    ]
}

pub(crate) fn tier_view(t: &SubscriptionTier) -> serde_json::Value {
    serde_json::json!({
        "name": t.name,
        "display_name": t.display_name,
        "requests_per_minute": t.requests_per_minute,
        "requests_per_month": t.requests_per_month,
        "monthly_budget_usd": t.monthly_budget_usd_micros as f64 / 1_000_000.0,
        "guards_allowed": t.guards_allowed,
        "price_usd_monthly": t.price_usd_cents_monthly as f64 / 100.0,
        "features": t.features,
    })
}

pub(crate) fn subscription_view(s: &Subscription, t: &SubscriptionTier) -> serde_json::Value {
    serde_json::json!({
        "id": s.id,
        "status": s.status,
        "tier": tier_view(t),
        "current_period_start": s.current_period_start,
        "current_period_end": s.current_period_end,
        "cancel_at_period_end": s.cancel_at_period_end,
        "canceled_at": s.canceled_at,
        "created_at": s.created_at,
    })
}

/// `GET /api/v1/subscriptions/tiers`.
pub async fn tiers(state: web::Data<AppState>, _caller: Caller) -> Result<HttpResponse> {
    let mut pooled = state.db.get().await?;
    let tiers = SubscriptionTier::list_active(&mut pooled.conn()).await?;
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({"tiers": tiers.iter().map(tier_view).collect::<Vec<_>>()})))
}

async fn current_of(state: &AppState, caller: &Caller) -> Result<(Subscription, SubscriptionTier)> {
    let mut pooled = state.db.get().await?;
    Subscription::current(&mut pooled.conn(), caller.organization_id)
        .await?
        .ok_or(GatewayError::NotFound("subscription"))
}

/// `GET /api/v1/subscriptions/current`.
pub async fn current(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    let (s, t) = current_of(&state, &caller).await?;
    Ok(HttpResponse::Ok().json(subscription_view(&s, &t)))
}

/// `GET /api/v1/subscriptions/history`.
pub async fn history(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    let mut pooled = state.db.get().await?;
    let all = Subscription::history(&mut pooled.conn(), caller.organization_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "subscriptions": all.iter().map(|(s, t)| subscription_view(s, t)).collect::<Vec<_>>(),
    })))
}

async fn set_cancel(state: &AppState, caller: &Caller, cancel: bool) -> Result<HttpResponse> {
    caller.require(Role::Owner)?;
    // Billing changes need a person, not a key.
    caller.user()?;
    let (s, t) = current_of(state, caller).await?;
    let mut pooled = state.db.get().await?;
    let updated =
        Subscription::set_cancel_at_period_end(&mut pooled.conn(), s.id, cancel, Timestamp::now())
            .await?;
    Ok(HttpResponse::Ok().json(subscription_view(&updated, &t)))
}

/// `POST /api/v1/subscriptions/cancel` (owner): the subscription ends with its period.
pub async fn cancel(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    set_cancel(&state, &caller, true).await
}

/// `POST /api/v1/subscriptions/reactivate` (owner): undo a cancellation before the period ends.
pub async fn reactivate(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    set_cancel(&state, &caller, false).await
}
