//! `PUT /api/v1/organizations/{id}/subscription` (platform admin): put an organisation on a tier
//! (the same change as `codeguardians org set-tier`).

use actix_web::{HttpResponse, web};
use cg_storage::models::{Organization, Subscription, SubscriptionTier};
use cg_storage::sql_types::{Id, Timestamp};
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::error::{GatewayError, Result};
use crate::routes::subscriptions::subscription_view;
use crate::routes::users::admin::require_superuser;
use crate::state::AppState;

/// The tier to put the organisation on.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SetTier {
    /// An active tier's name (`GET /api/v1/subscriptions/tiers`).
    pub tier: String,
}

/// Move the organisation's subscription in force to the tier, or start one on it when none is in
/// force. Takes effect on this replica at once, on the others within `ORG_PROFILE_CACHE_SECS`.
#[tracing::instrument(skip_all, fields(org.id = %id))]
pub async fn set_tier(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<Id>,
    body: web::Json<SetTier>,
) -> Result<HttpResponse> {
    require_superuser(&state, &caller).await?;
    let id = id.into_inner();
    let mut pooled = state.db.get().await?;
    let conn = &mut pooled.conn();
    Organization::find(conn, id).await.map_err(|e| match e {
        cg_storage::Error::NotFound => GatewayError::NotFound("organization"),
        other => other.into(),
    })?;
    let tier = SubscriptionTier::find_by_name(conn, &body.tier)
        .await
        .map_err(|e| match e {
            cg_storage::Error::NotFound => {
                GatewayError::Invalid(format!("no tier is named {:?}", body.tier))
            }
            other => other.into(),
        })?;
    if !tier.is_active {
        return Err(GatewayError::Conflict(format!(
            "tier {} is not active",
            tier.name
        )));
    }
    let (subscription, tier) = Subscription::set_tier(conn, id, tier.id, Timestamp::now()).await?;
    state.org_profiles.invalidate(id).await;
    tracing::info!(tier.name = %tier.name, "organisation's tier set");
    Ok(HttpResponse::Ok().json(subscription_view(&subscription, &tier)))
}
