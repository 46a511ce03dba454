//! Assembling healthguard: its database (`HEALTHGUARD_DATABASE_URL` when set) and outbox, the
//! replay and health-sampling tasks, then the HTTP server.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::Instant;

use actix_web::web;
use cg_service_kit::health::HealthReport;
use cg_service_kit::{Application, Readiness, ServiceSpec, StorageReadiness};
use cg_storage::Outbox;
use cg_storage::config::Needs;
use futures::future::BoxFuture;

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

/// The database may be away while the outbox keeps records: ready but degraded.
struct OutboxReadiness {
    storage: StorageReadiness,
    outbox: Outbox,
}

impl Readiness for OutboxReadiness {
    fn check(&self) -> BoxFuture<'_, HealthReport> {
        Box::pin(async move {
            let mut report = self.storage.check().await;
            let depth = self.outbox.depth().await;
            let outbox_ok = depth.is_ok();
            if !report.ready && outbox_ok {
                report.ready = true;
                report.degraded = true;
            }
            if depth.as_ref().is_ok_and(|d| *d > 0) {
                report.degraded = true;
            }
            report
                .extra
                .insert("outbox_depth".into(), serde_json::json!(depth.ok()));
            report
        })
    }

    fn refresh_metrics(&self) {
        self.storage.refresh_metrics();
    }
}
