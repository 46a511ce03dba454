//! `/api/v1/auth`: register, log in, refresh, log out, who am I.

mod login;
mod logout;
mod me;
mod refresh;
mod register;

use crate::api_doc::{Access, Endpoint, body};
use actix_web::web;
use serde::Serialize;
use utoipa::openapi::path::HttpMethod;

const TAG: &str = "auth";

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

/// This resource's routes.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/auth/register",
            || web::post().to(register::register),
            TAG,
            "Create an account (and an organisation of its own)",
        )
        .access(Access::Public)
        .body(body::<RegisterBody>())
        .ok(201),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/auth/login",
            || web::post().to(login::login),
            TAG,
            "Log in with email and password",
        )
        .access(Access::Public)
        .body(body::<LoginBody>()),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/auth/refresh",
            || web::post().to(refresh::refresh),
            TAG,
            "Rotate a refresh token",
        )
        .access(Access::Public)
        .body(body::<refresh::RefreshBody>()),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/auth/logout",
            || web::post().to(logout::logout),
            TAG,
            "End a session family (503 when that cannot be done everywhere)",
        )
        .access(Access::Public)
        .optional_body(body::<logout::LogoutBody>()),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/auth/me",
            || web::get().to(me::me),
            TAG,
            "The caller and their organisations",
        )
        .access(Access::User),
    ]
}

/// Issue an access token for a session just created or rotated.
pub(crate) fn tokens(
    state: &crate::state::AppState,
    issued: crate::auth::sessions::Issued,
) -> crate::error::Result<TokenResponse> {
    Ok(TokenResponse {
        access_token: state.tokens.issue(&issued)?,
        refresh_token: issued.refresh_token,
        token_type: "bearer",
        expires_in: state.tokens.ttl_secs(),
        refresh_expires_at: issued.expires_at.to_string(),
    })
}
