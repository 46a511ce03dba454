//! Assembling tokenguard: its storage, then the HTTP server around it.

use actix_web::web;
use cg_service_kit::{Application, ServiceSpec};
use cg_storage::config::Needs;

use crate::analysis::Encoding;
use crate::config::Config;
use crate::routes;
use crate::state::TokenState;
use crate::{DEFAULT_PORT, SERVICE};

/// What tokenguard is at start-up.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: SERVICE,
    version: env!("CARGO_PKG_VERSION"),
    default_port: DEFAULT_PORT,
    needs: Needs {
        database: false,
        cache: true,
        blobs: false,
    },
};

/// Connect storage and bind the listener (`CG_PORT=0` picks a free port).
pub async fn build(config: Config) -> anyhow::Result<Application> {
    let state = web::Data::new(TokenState::new(&config.tokenguard)?);
    // Load both vocabularies now rather than on the first request.
    tokio::task::spawn_blocking(Encoding::warm_up).await?;
    Application::build(&SPEC, &config.server, &config.storage, move |_, _| {
        Ok(move |cfg: &mut web::ServiceConfig| {
            cfg.app_data(state.clone());
            routes::configure(cfg);
        })
    })
    .await
}
