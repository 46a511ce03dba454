//! `PATCH /api/v1/subscriptions/tiers/{name}` (platform admin): change a tier's limits, guards,
//! budget, price, features or whether it is offered.

use actix_web::{HttpResponse, web};
use cg_storage::models::SubscriptionTier;
use cg_storage::sql_types::Timestamp;

use super::tier_view;
use crate::auth::AuthUser;
use crate::domain::TierFields;
use crate::error::{GatewayError, Result};
use crate::routes::users::admin::require_superuser;
use crate::state::AppState;

/// Apply the fields sent. Organisations on the tier see the change on this replica at once and on
/// the others within `ORG_PROFILE_CACHE_SECS`.
#[tracing::instrument(skip_all, fields(tier.name = %name))]
pub async fn update(
    state: web::Data<AppState>,
    caller: AuthUser,
    name: web::Path<String>,
    body: web::Json<TierFields>,
) -> Result<HttpResponse> {
    require_superuser(&state, &caller).await?;
    let name = name.into_inner();
    if body.name.is_some() {
        return Err(GatewayError::Invalid(
            "a tier's name cannot change (create another tier instead)".into(),
        ));
    }
    let mut update = body.validate()?;
    if update.is_active == Some(false) && name == state.settings.default_tier() {
        return Err(GatewayError::Conflict(format!(
            "{name} is the tier of new organisations (DEFAULT_TIER); name another before deactivating it"
        )));
    }
    update.updated_at = Some(Timestamp::now());
    let mut pooled = state.db.get().await?;
    let tier = SubscriptionTier::update(&mut pooled.conn(), &name, &update)
        .await
        .map_err(|e| match e {
            cg_storage::Error::NotFound => GatewayError::NotFound("tier"),
            other => other.into(),
        })?;
    state.org_profiles.invalidate_all();
    tracing::info!(tier.name = %tier.name, "tier changed");
    Ok(HttpResponse::Ok().json(tier_view(&tier)))
}
