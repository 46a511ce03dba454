use actix_web::{HttpRequest, HttpResponse, web};
use cg_storage::Conn;
use serde::Deserialize;

use super::OrganizationView;
use crate::auth::{AuthUser, limits};
use crate::client::client_ip;
use crate::domain::OrgName;
use crate::error::{GatewayError, Result};
use crate::state::AppState;
use crate::tenancy::create_organization;

/// `POST /api/v1/organizations`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateOrganization {
    pub name: String,
}

/// Create an organisation owned by the caller, on the free tier. Select it with
/// `X-Organization-ID` (a user's default is their oldest membership).
pub async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    caller: AuthUser,
    body: web::Json<CreateOrganization>,
) -> Result<HttpResponse> {
    let name = OrgName::parse(&body.name)?;
    // Each organisation brings a fresh free quota: limited per user and address, and capped.
    limits::count_organization(
        &state.cache,
        caller.user_id,
        &client_ip(&req, &state.settings),
        state.settings.organizations_per_user_per_hour(),
    )
    .await?;
    let max = state.settings.max_organizations_per_user();
    let memberships = state.memberships.of(caller.user_id).await?;
    if u64::try_from(memberships.len()).unwrap_or(u64::MAX) >= max {
        return Err(GatewayError::Forbidden(
            "you belong to as many organisations as an account may (MAX_ORGANIZATIONS_PER_USER)",
        ));
    }
    let mut pooled = state.db.get().await?;
    let org = pooled
        .conn()
        .transaction(async |tx: &mut Conn<'_>| {
            create_organization(tx, &name, caller.user_id, state.settings.default_tier()).await
        })
        .await?;
    state.memberships.changed(caller.user_id).await;
    Ok(HttpResponse::Created().json(OrganizationView::new(&org, "owner")))
}
