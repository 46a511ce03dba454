//! Assembling the gateway: storage, shared state, background tasks, routes.

use std::time::Duration;

use actix_web::web;
use cg_service_kit::{Application, ServiceSpec};
use cg_storage::config::Needs;

use crate::config::Config;
use crate::state::AppState;
use crate::{DEFAULT_PORT, SERVICE, routes};

/// What the gateway is at start-up.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: SERVICE,
    version: env!("CARGO_PKG_VERSION"),
    default_port: DEFAULT_PORT,
    needs: Needs::ALL,
};

/// How often API-key `last_used_at` times are written.
const LAST_USED_FLUSH: Duration = Duration::from_secs(30);

/// Connect storage, start the background tasks and bind the listener (`CG_PORT=0` picks a free
/// port).
pub async fn build(config: Config) -> anyhow::Result<Application> {
    let cleanup_every = config.storage.session_cleanup_interval();
    Application::build(
        &SPEC,
        &config.server,
        &config.storage,
        |storage, shutdown| {
            let state = web::Data::new(AppState::new(storage, &config)?);
            tokio::spawn(
                state
                    .sessions
                    .clone()
                    .clean_up_every(cleanup_every, shutdown.clone()),
            );
            tokio::spawn(state.api_keys.clone().follow_revocations(shutdown.clone()));
            tokio::spawn(
                state
                    .api_keys
                    .clone()
                    .flush_last_used_every(LAST_USED_FLUSH, shutdown.clone()),
            );
            Ok(move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(state.clone());
                routes::configure(cfg);
            })
        },
    )
    .await
}
