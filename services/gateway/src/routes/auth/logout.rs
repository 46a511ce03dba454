use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::auth::AuthUser;
use crate::error::{GatewayError, Result};
use crate::state::AppState;

/// `POST /api/v1/auth/logout` (body optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct LogoutBody {
    #[serde(default)]
    pub refresh_token: Option<String>,
}

/// End a session: the one holding `refresh_token`, or the one the access token came from. Access
/// tokens already issued stay valid until they expire (`ACCESS_TOKEN_TTL`).
pub async fn logout(
    state: web::Data<AppState>,
    user: Option<AuthUser>,
    body: Option<web::Json<LogoutBody>>,
) -> Result<HttpResponse> {
    match (body.and_then(|b| b.into_inner().refresh_token), user) {
        (Some(token), _) => state.sessions.revoke(token.trim()).await?,
        (None, Some(user)) => state.sessions.revoke_id(user.session_id).await?,
        (None, None) => {
            return Err(GatewayError::Unauthorized(
                "send the refresh token in the body or an access token in Authorization",
            ));
        }
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"message": "logged out"})))
}
