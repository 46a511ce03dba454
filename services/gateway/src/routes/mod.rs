//! The gateway's routes, one module per resource, one file per action. Each resource lists its
//! endpoints; they are registered and documented from that one list.

pub mod ab_testing;
pub mod api_keys;
pub mod auth;
pub mod biasguard;
pub mod config;
pub mod fields;
pub mod files;
pub mod guards;
pub mod organizations;
pub mod query;
pub mod subscriptions;
pub mod usage;
pub mod users;

use actix_web::web;

use crate::api_doc::{self, Endpoint};

/// Every endpoint of the gateway (besides the kit's health and metrics routes).
pub fn endpoints() -> Vec<Endpoint> {
    // The guarded path first: routes are matched in this order, and it is the busiest.
    [
        guards::endpoints(),
        auth::endpoints(),
        users::endpoints(),
        organizations::endpoints(),
        api_keys::endpoints(),
        subscriptions::endpoints(),
        usage::endpoints(),
        config::endpoints(),
        biasguard::endpoints(),
        ab_testing::endpoints(),
        files::endpoints(),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Register every route, `/openapi.json` and `/docs`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    api_doc::register(cfg, endpoints());
}
