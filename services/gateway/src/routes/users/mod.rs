//! `/api/v1/users`: the caller's own account, and account administration for platform admins
//! (`users.is_superuser`).

pub(crate) mod admin;
mod me;

use crate::api_doc::{Access, Endpoint, body};
use actix_web::web;
use cg_storage::models::User;
use cg_storage::sql_types::{Id, Timestamp};
use serde::Serialize;
use utoipa::openapi::path::HttpMethod;

const TAG: &str = "users";

/// A user as the API shows it (never the password hash).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Id,
    pub email: String,
    pub full_name: String,
    pub is_active: bool,
    pub is_superuser: bool,
    #[schema(value_type = Option<String>)]
    pub last_login_at: Option<Timestamp>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

impl From<&User> for UserView {
    fn from(u: &User) -> Self {
        Self {
            id: u.id,
            email: u.email.clone(),
            full_name: u.full_name.clone(),
            is_active: u.is_active,
            is_superuser: u.is_superuser,
            last_login_at: u.last_login_at,
            created_at: u.created_at,
        }
    }
}

/// This resource's routes.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/users/me",
            || web::get().to(me::get),
            TAG,
            "Your account",
        )
        .access(Access::User),
        Endpoint::new(
            HttpMethod::Put,
            "/api/v1/users/me",
            || web::put().to(me::update),
            TAG,
            "Change your name or password (a new password ends every session: log in again)",
        )
        .access(Access::User)
        .body(body::<me::UpdateMe>()),
        Endpoint::new(
            HttpMethod::Delete,
            "/api/v1/users/me",
            || web::delete().to(me::delete),
            TAG,
            "Delete your account (needs its password); every session ends",
        )
        .access(Access::User)
        .body(body::<me::DeleteMe>())
        .ok(204),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/users",
            || web::get().to(admin::list),
            TAG,
            "List accounts (platform admin)",
        )
        .access(Access::User),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/users",
            || web::post().to(admin::create),
            TAG,
            "Create an account (platform admin)",
        )
        .access(Access::User)
        .body(body::<admin::CreateUser>())
        .ok(201),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/users/{id}",
            || web::get().to(admin::get),
            TAG,
            "One account (platform admin, or yourself)",
        )
        .access(Access::User),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/users/{id}/activate",
            || web::post().to(admin::activate),
            TAG,
            "Reactivate an account (platform admin)",
        )
        .access(Access::User),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/users/{id}/deactivate",
            || web::post().to(admin::deactivate),
            TAG,
            "Deactivate an account (platform admin)",
        )
        .access(Access::User),
    ]
}
