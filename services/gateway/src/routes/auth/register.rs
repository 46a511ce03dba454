use actix_web::{HttpRequest, HttpResponse, web};
use cg_storage::Conn;
use cg_storage::models::NewUser;
use serde::Deserialize;

use crate::auth::{limits, password};
use crate::client::client_ip;
use crate::domain::{Email, FullName, OrgName, Password};
use crate::error::{GatewayError, Result};
use crate::state::AppState;
use crate::tenancy::create_organization;

/// `POST /api/v1/auth/register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RegisterBody {
    pub email: String,
    /// 8 to 128 characters.
    pub password: String,
    #[serde(default)]
    pub full_name: String,
}

/// Create an account, with an organisation of its own on the free tier.
#[tracing::instrument(skip_all)]
pub async fn register(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RegisterBody>,
) -> Result<HttpResponse> {
    let email = Email::parse(&body.email)?;
    let password = Password::parse(&body.password)?;
    // Each registration costs a password hash and rows, and brings a fresh free quota.
    limits::count_registration(
        &state.cache,
        &client_ip(&req, &state.settings),
        state.settings.registrations_per_ip_per_hour(),
    )
    .await?;
    let full_name = FullName::parse(&body.full_name)?;
    let org_name = OrgName::parse(&format!(
        "{}'s organization",
        if full_name.as_str().is_empty() {
            email.local_part()
        } else {
            full_name.as_str()
        }
    ))?;
    let hash = password::hash(&password).await?;

    let mut pooled = state.db.get().await?;
    let user = pooled
        .conn()
        .transaction(async |tx: &mut Conn<'_>| {
            let user = NewUser::new(email.as_str(), &hash, full_name.as_str())
                .insert(tx)
                .await?;
            create_organization(tx, &org_name, user.id, state.settings.default_tier()).await?;
            Ok::<_, cg_storage::Error>(user)
        })
        .await
        .map_err(|e| match e {
            cg_storage::Error::Conflict(_) => {
                GatewayError::Conflict("this email is already registered".into())
            }
            other => other.into(),
        })?;
    tracing::info!(user.id = %user.id, "user registered");
    Ok(HttpResponse::Created().json(serde_json::json!({
        "message": "registered",
        "user_id": user.id,
        "email": user.email,
    })))
}
