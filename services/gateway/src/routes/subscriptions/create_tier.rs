//! `POST /api/v1/subscriptions/tiers` (platform admin): a new tier.

use actix_web::{HttpResponse, web};
use cg_storage::models::SubscriptionTier;
use cg_storage::sql_types::{Id, Timestamp};

use super::tier_view;
use crate::auth::AuthUser;
use crate::domain::{TierFields, TierName};
use crate::error::{GatewayError, Result};
use crate::routes::users::admin::require_superuser;
use crate::state::AppState;

/// Create a tier.
#[tracing::instrument(skip_all)]
pub async fn create(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: web::Json<TierFields>,
) -> Result<HttpResponse> {
    require_superuser(&state, &caller).await?;
    let required = |field: &str| GatewayError::Invalid(format!("{field} is required"));
    let name = TierName::parse(body.name.as_deref().ok_or_else(|| required("name"))?)?;
    let valid = body.validate()?;
    let now = Timestamp::now();
    let tier = SubscriptionTier {
        id: Id::new(),
        name: name.as_str().to_owned(),
        display_name: valid
            .display_name
            .unwrap_or_else(|| name.as_str().to_owned()),
        requests_per_minute: valid
            .requests_per_minute
            .ok_or_else(|| required("requests_per_minute"))?,
        requests_per_month: valid
            .requests_per_month
            .ok_or_else(|| required("requests_per_month"))?,
        monthly_budget_usd_micros: valid.monthly_budget_usd_micros.unwrap_or(0),
        guards_allowed: valid
            .guards_allowed
            .ok_or_else(|| required("guards_allowed"))?,
        price_usd_cents_monthly: valid.price_usd_cents_monthly.unwrap_or(0),
        features: valid.features.unwrap_or_else(|| serde_json::json!({})),
        is_active: valid.is_active.unwrap_or(true),
        created_at: now,
        updated_at: now,
    };
    let mut pooled = state.db.get().await?;
    let stored = tier.insert(&mut pooled.conn()).await.map_err(|e| match e {
        cg_storage::Error::Conflict(_) => {
            GatewayError::Conflict(format!("a tier named {} exists", name.as_str()))
        }
        other => other.into(),
    })?;
    tracing::info!(tier.name = %stored.name, "tier created");
    Ok(HttpResponse::Created().json(tier_view(&stored)))
}
