//! Assembling healthguard: its database (`HEALTHGUARD_DATABASE_URL` when set) and outbox, the
//! replay and health-sampling tasks, then the HTTP server.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Instant;

use actix_web::web;
use cg_service_kit::{Application, OutboxReadiness, ServiceSpec, StorageReadiness};
use cg_storage::Outbox;
use cg_storage::config::Needs;

use crate::config::Config;
use crate::routes;
use crate::state::HealthState;
use crate::{DEFAULT_PORT, SERVICE};

/// What healthguard is at start-up.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: SERVICE,
    version: env!("CARGO_PKG_VERSION"),
    default_port: DEFAULT_PORT,
    needs: Needs {
        database: true,
        cache: false,
        blobs: false,
    },
};

/// Connect storage, open the outbox, start the background tasks and bind the listener.
pub async fn build(config: Config) -> anyhow::Result<Application> {
    let outbox = Outbox::open(&config.storage.data_dir().join("outbox-healthguard.db")).await?;
    let settings = config.healthguard.clone();
    Application::build(
        &SPEC,
        &config.server,
        &config.storage,
        move |storage, kit| {
            let state = Arc::new(HealthState {
                db: storage.db()?.clone(),
                outbox: outbox.clone(),
                max_samples: settings.max_samples(),
                instance: std::env::var("HOSTNAME")
                    .unwrap_or_else(|_| format!("healthguard-{}", std::process::id())),
                in_flight: AtomicI64::new(0),
                requests: AtomicI64::new(0),
                started: Instant::now(),
            });
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
                    .sample_every(settings.metrics_interval(), kit.shutdown.clone()),
            );
            let data = web::Data::from(state);
            Ok(move |cfg: &mut web::ServiceConfig| {
                cfg.app_data(data.clone());
                routes::configure(cfg);
            })
        },
    )
    .await
}
