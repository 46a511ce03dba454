//! `/api/v1/auth`: register, log in, refresh, log out, who am I.

mod login;
mod logout;
mod me;
mod refresh;
mod register;

use actix_web::web;
use serde::Serialize;

pub use login::LoginBody;
pub use register::RegisterBody;

/// Tokens handed out by login and refresh.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// When the refresh token expires (RFC 3339).
    pub refresh_expires_at: String,
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/register", web::post().to(register::register))
        .route("/login", web::post().to(login::login))
        .route("/refresh", web::post().to(refresh::refresh))
        .route("/logout", web::post().to(logout::logout))
        .route("/me", web::get().to(me::me));
}

/// Issue an access token for a session just created or rotated.
pub(crate) fn tokens(
    state: &crate::state::AppState,
    issued: crate::auth::sessions::Issued,
) -> crate::error::Result<TokenResponse> {
    Ok(TokenResponse {
        access_token: state.tokens.issue(issued.user_id, issued.session_id)?,
        refresh_token: issued.refresh_token,
        token_type: "bearer",
        expires_in: state.tokens.ttl_secs(),
        refresh_expires_at: issued.expires_at.to_string(),
    })
}
