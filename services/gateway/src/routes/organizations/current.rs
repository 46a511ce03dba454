use actix_web::{HttpResponse, web};
use cg_storage::models::{Organization, OrganizationUpdate, Role, Subscription};
use cg_storage::sql_types::Timestamp;
use serde::Deserialize;

use super::OrganizationView;
use crate::auth::Caller;
use crate::domain::OrgName;
use crate::error::{GatewayError, Result};
use crate::state::AppState;

/// `GET /api/v1/organizations/current`: the organisation the caller acts in, with its tier.
pub async fn get(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    let mut pooled = state.db.get().await?;
    let conn = &mut pooled.conn();
    let org = Organization::find(conn, caller.organization_id).await?;
    let tier = Subscription::current(conn, org.id)
        .await?
        .map(|(_, t)| t.name);
    let mut view = serde_json::to_value(OrganizationView::new(&org, caller.role.as_str()))
        .map_err(anyhow::Error::from)?;
    view["tier"] = serde_json::json!(tier);
    Ok(HttpResponse::Ok().json(view))
}

/// `PUT /api/v1/organizations/current` (admin).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdateOrganization {
    #[serde(default)]
    pub name: Option<String>,
    /// Replaces the settings object (verdict thresholds, whether analysed text is stored, …).
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub settings: Option<serde_json::Value>,
}

pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<UpdateOrganization>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    let name = body.name.as_deref().map(OrgName::parse).transpose()?;
    if body.settings.as_ref().is_some_and(|s| !s.is_object()) {
        return Err(GatewayError::Invalid(
            "settings must be a JSON object".into(),
        ));
    }
    let mut pooled = state.db.get().await?;
    let org = Organization::update(
        &mut pooled.conn(),
        caller.organization_id,
        &OrganizationUpdate {
            name: name.as_ref().map(OrgName::as_str),
            settings: body.settings.clone(),
            updated_at: Some(Timestamp::now()),
            ..OrganizationUpdate::default()
        },
    )
    .await?;
    state.org_profiles.invalidate(org.id).await;
    Ok(HttpResponse::Ok().json(OrganizationView::new(&org, caller.role.as_str())))
}
