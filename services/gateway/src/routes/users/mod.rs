//! `/api/v1/users`: the caller's own account, and account administration for platform admins
//! (`users.is_superuser`).

mod admin;
mod me;

use actix_web::web;
use cg_storage::models::User;
use cg_storage::sql_types::{Id, Timestamp};
use serde::Serialize;

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

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/me", web::get().to(me::get))
        .route("/me", web::put().to(me::update))
        .route("/me", web::delete().to(me::delete))
        .route("", web::get().to(admin::list))
        .route("", web::post().to(admin::create))
        .route("/{id}", web::get().to(admin::get))
        .route("/{id}/activate", web::post().to(admin::activate))
        .route("/{id}/deactivate", web::post().to(admin::deactivate));
}
