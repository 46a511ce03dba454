//! The gateway's routes, one module per resource, one file per action.

pub mod api_keys;
pub mod auth;
pub mod organizations;
pub mod subscriptions;
pub mod users;

use actix_web::web;

/// Register every route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::scope("/api/v1/auth").configure(auth::configure))
        .service(web::scope("/api/v1/users").configure(users::configure))
        .service(web::scope("/api/v1/organizations").configure(organizations::configure))
        .service(web::scope("/api/v1/api-keys").configure(api_keys::configure))
        .service(web::scope("/api/v1/subscriptions").configure(subscriptions::configure));
}
