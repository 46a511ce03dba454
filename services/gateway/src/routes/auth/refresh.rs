use actix_web::{HttpRequest, HttpResponse, web};
use cg_storage::models::User;
use serde::Deserialize;

use super::tokens;
use crate::client::client_info;
use crate::error::{GatewayError, Result};
use crate::state::AppState;

/// `POST /api/v1/auth/refresh`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct RefreshBody {
    pub refresh_token: String,
}

/// Rotate a refresh token: the old one stops working, a new pair is issued. Presenting an old
/// token again revokes the whole session.
#[tracing::instrument(skip_all)]
pub async fn refresh(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<RefreshBody>,
) -> Result<HttpResponse> {
    let client = client_info(&req, &state.settings);
    let issued = state
        .sessions
        .rotate(body.refresh_token.trim(), &client)
        .await?;
    let active = {
        let mut pooled = state.db.get().await?;
        User::find(&mut pooled.conn(), issued.user_id)
            .await
            .map(|u| u.is_active)
    };
    if !matches!(active, Ok(true)) {
        state.sessions.end_family(issued.family_id).await?;
        return Err(GatewayError::Unauthorized(
            "invalid or expired refresh token",
        ));
    }
    Ok(HttpResponse::Ok().json(tokens(&state, issued)?))
}
