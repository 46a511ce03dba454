//! `/api/v1/organizations`: create one, the current one, its members and invitations. Every
//! query is scoped to the caller's organisation.

mod create;
mod current;
mod invitations;
mod members;

use actix_web::web;
use cg_storage::models::Organization;
use cg_storage::sql_types::{Id, Timestamp};
use serde::Serialize;

/// An organisation as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OrganizationView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Id,
    pub name: String,
    pub slug: String,
    #[schema(value_type = Object)]
    pub settings: serde_json::Value,
    /// The caller's role in it.
    pub role: String,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

impl OrganizationView {
    pub fn new(org: &Organization, role: &str) -> Self {
        Self {
            id: org.id,
            name: org.name.clone(),
            slug: org.slug.clone(),
            settings: org.settings.clone(),
            role: role.to_owned(),
            created_at: org.created_at,
        }
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("", web::post().to(create::create))
        .route("/current", web::get().to(current::get))
        .route("/current", web::put().to(current::update))
        .route("/members", web::get().to(members::list))
        .route("/members/invite", web::post().to(invitations::invite))
        .route("/members/{user_id}", web::put().to(members::set_role))
        .route("/members/{user_id}", web::delete().to(members::remove))
        .route("/invitations", web::get().to(invitations::list))
        .route("/invitations/accept", web::post().to(invitations::accept));
}
