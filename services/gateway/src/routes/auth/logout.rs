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

/// End a session family: the one `refresh_token` belongs to (live or already rotated), else the
/// one the access token came from. Its refresh tokens and every access token it issued stop
/// working on every replica; 503 when that cannot be done (nothing is claimed that did not
/// happen), 401 when neither credential names a session.
pub async fn logout(
    state: web::Data<AppState>,
    user: Option<AuthUser>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    // The body is optional, but one that is sent must be right: a malformed one is refused
    // rather than read as "no refresh token".
    let token = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<LogoutBody>(&body)
            .map_err(|e| GatewayError::BadRequest {
                code: "invalid_json",
                message: format!("the body is not a logout request: {e}"),
                details: serde_json::json!({}),
            })?
            .refresh_token
    };
    let family = match &token {
        Some(token) => state.sessions.family_of(token.trim()).await?,
        None => None,
    };
    let family = family
        .or(user.map(|u| u.family_id))
        .ok_or(GatewayError::Unauthorized(if token.is_some() {
            "invalid or expired refresh token"
        } else {
            "send the refresh token in the body or an access token in Authorization"
        }))?;
    state.sessions.end_family(family).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({"message": "logged out"})))
}
