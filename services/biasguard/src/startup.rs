//! Assembling biasguard: its storage and outbox, the replay, retention and policy-announcement
//! tasks, then the HTTP server.

use std::sync::Arc;

use actix_web::web;
use cg_service_kit::{Application, OutboxReadiness, ServiceSpec, StorageReadiness};
use cg_storage::Outbox;
use cg_storage::config::Needs;

use crate::config::Config;
use crate::routes;
use crate::state::BiasState;
use crate::{DEFAULT_PORT, SERVICE};

/// What biasguard is at start-up.
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

/// Connect storage, open the outbox, start the background tasks and bind the listener
/// (`CG_PORT=0` picks a free port).
pub async fn build(config: Config) -> anyhow::Result<Application> {
    let outbox = Outbox::open(&config.storage.data_dir().join("outbox-biasguard.db")).await?;
    let settings = config.biasguard.clone();
    Application::build(
        &SPEC,
        &config.server,
        &config.storage,
        move |storage, kit| {
            let state = Arc::new(BiasState::new(
                storage.db()?.clone(),
                storage.cache()?.clone(),
                outbox.clone(),
                settings.clone(),
            ));
            kit.readiness = Arc::new(OutboxReadiness {
                storage: StorageReadiness {
                    storage: storage.clone(),
                },
                outbox,
            });
            tokio::spawn(
                state
                    .clone()
                    .replay_every(settings.outbox_replay(), kit.shutdown.clone()),
            );
            tokio::spawn(
                state
                    .clone()
                    .retain_every(settings.retention_interval(), kit.shutdown.clone()),
            );
            tokio::spawn(state.clone().follow_policy_changes(kit.shutdown.clone()));
            let data = web::Data::from(state);
            Ok(move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(data.clone());
                routes::configure(cfg);
            })
        },
    )
    .await
}
