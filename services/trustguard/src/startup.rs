//! Assembling trustguard: its storage, then the HTTP server around it.

use actix_web::web;
use cg_service_kit::{Application, ServiceSpec};
use cg_storage::config::Needs;

use crate::config::Config;
use crate::routes;
use crate::state::TrustState;
use crate::{DEFAULT_PORT, SERVICE};

/// What trustguard is at start-up.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: SERVICE,
    version: env!("CARGO_PKG_VERSION"),
    default_port: DEFAULT_PORT,
    needs: Needs {
        database: true,
        cache: true,
        blobs: false,
    },
};

/// Connect storage and bind the listener (`CG_PORT=0` picks a free port).
pub async fn build(config: Config) -> anyhow::Result<Application> {
    Application::build(&SPEC, &config.server, &config.storage, |storage, _| {
        let state = web::Data::new(TrustState::new(storage, &config.trustguard)?);
        Ok(move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(state.clone());
            routes::configure(cfg);
        })
    })
    .await
}
