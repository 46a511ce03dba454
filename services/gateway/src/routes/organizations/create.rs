use actix_web::{HttpResponse, web};
use cg_storage::Conn;
use serde::Deserialize;

use super::OrganizationView;
use crate::auth::AuthUser;
use crate::domain::OrgName;
use crate::error::Result;
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
    state: web::Data<AppState>,
    caller: AuthUser,
    body: web::Json<CreateOrganization>,
) -> Result<HttpResponse> {
    let name = OrgName::parse(&body.name)?;
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
