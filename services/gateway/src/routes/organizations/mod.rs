//! `/api/v1/organizations`: create one, the current one, its members and invitations. Every
//! query is scoped to the caller's organisation.

mod create;
mod current;
mod invitations;
mod members;
mod set_tier;

use crate::api_doc::{Access, Endpoint, body};
use actix_web::web;
use cg_storage::models::Organization;
use cg_storage::sql_types::{Id, Timestamp};
use serde::Serialize;
use utoipa::openapi::path::HttpMethod;

const TAG: &str = "organizations";

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

/// This resource's routes.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/organizations",
            || web::post().to(create::create),
            TAG,
            "Create an organisation",
        )
        .access(Access::User)
        .body(body::<create::CreateOrganization>())
        .ok(201),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/organizations/current",
            || web::get().to(current::get),
            TAG,
            "The organisation you act in",
        ),
        Endpoint::new(
            HttpMethod::Put,
            "/api/v1/organizations/current",
            || web::put().to(current::update),
            TAG,
            "Rename it or change its settings (admin)",
        )
        .body(body::<current::UpdateOrganization>()),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/organizations/members",
            || web::get().to(members::list),
            TAG,
            "Its members",
        ),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/organizations/members/invite",
            || web::post().to(invitations::invite),
            TAG,
            "Invite an address (admin)",
        )
        .body(body::<invitations::Invite>())
        .ok(201),
        Endpoint::new(
            HttpMethod::Put,
            "/api/v1/organizations/members/{user_id}",
            || web::put().to(members::set_role),
            TAG,
            "Change a member's role (admin)",
        )
        .body(body::<members::SetRole>()),
        Endpoint::new(
            HttpMethod::Delete,
            "/api/v1/organizations/members/{user_id}",
            || web::delete().to(members::remove),
            TAG,
            "Remove a member, or leave",
        )
        .ok(204),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/organizations/invitations",
            || web::get().to(invitations::list),
            TAG,
            "Open invitations (admin)",
        ),
        Endpoint::new(
            HttpMethod::Delete,
            "/api/v1/organizations/invitations/{id}",
            || web::delete().to(invitations::revoke),
            TAG,
            "Revoke an open invitation (admin, logged in)",
        )
        .ok(204),
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/organizations/invitations/accept",
            || web::post().to(invitations::accept),
            TAG,
            "Accept an invitation",
        )
        .access(Access::User)
        .body(body::<invitations::Accept>()),
        Endpoint::new(
            HttpMethod::Put,
            "/api/v1/organizations/{id}/subscription",
            || web::put().to(set_tier::set_tier),
            TAG,
            "Put an organisation on a tier (platform admin)",
        )
        .access(Access::User)
        .body(body::<set_tier::SetTier>()),
    ]
}
