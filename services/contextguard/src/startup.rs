//! Assembling contextguard: its memory store (Redis when configured, with the in-process fallback
//! and write-back; the in-process store alone in embedded mode), the background tasks, then the
//! HTTP server.

use std::sync::{Arc, RwLock};

use actix_web::web;
use cg_service_kit::health::HealthReport;
use cg_service_kit::{Application, Readiness, ServiceSpec};
use cg_storage::config::Needs;
use futures::future::BoxFuture;
use serde_json::{Map, json};

use crate::config::Config;
use crate::routes;
use crate::state::ContextState;
use crate::store::Store;
use crate::{DEFAULT_PORT, SERVICE};

/// What contextguard is at start-up. Its store is its own (see [`Store`]): the kit connects
/// nothing, so a Redis that is away at start-up does not stop it.
pub const SPEC: ServiceSpec = ServiceSpec {
    name: SERVICE,
    version: env!("CARGO_PKG_VERSION"),
    default_port: DEFAULT_PORT,
    needs: Needs {
        database: false,
        cache: false,
        blobs: false,
    },
};

/// Build the store, start its upkeep and bind the listener (`CG_PORT=0` picks a free port).
pub async fn build(config: Config) -> anyhow::Result<Application> {
    let limits = config.contextguard.limits();
    let target = config
        .storage
        .resolve(Needs {
            database: false,
            cache: true,
            blobs: false,
        })?
        .cache
        .ok_or_else(|| anyhow::anyhow!("no memory store configured"))?;
    let journal = config.storage.data_dir().join("contextguard-journal.db");
    let store = Arc::new(
        Store::open(
            target,
            &journal,
            limits.fallback_max_bytes,
            limits.journal_max_writes,
        )
        .await?,
    );
    let default_ttl = config.storage.contextguard_default_ttl();
    Application::build(
        &SPEC,
        &config.server,
        &config.storage,
        move |_storage, kit| {
            let state = Arc::new(ContextState {
                store: store.clone(),
                limits,
                default_ttl,
                drift: RwLock::new(Default::default()),
            });
            kit.readiness = Arc::new(StoreReadiness {
                store: store.clone(),
            });
            tokio::spawn(store.clone().maintain(limits.probe, kit.shutdown.clone()));
            tokio::spawn(
                state
                    .clone()
                    .follow_drift_config(limits.config_refresh, kit.shutdown.clone()),
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

/// Ready whenever a store serves; degraded while the fallback stands in for Redis.
struct StoreReadiness {
    store: Arc<Store>,
}

impl Readiness for StoreReadiness {
    fn check(&self) -> BoxFuture<'_, HealthReport> {
        Box::pin(async move {
            let h = self.store.health().await;
            metrics::gauge!("cg_backend_up", "backend" => h.backend).set(if h.ok {
                1.0
            } else {
                0.0
            });
            let mut dependencies = Map::new();
            dependencies.insert(
                "redis".into(),
                json!({
                    "status": if h.ok { "ok" } else { "error" },
                    "backend": h.backend,
                    "mode": if h.backend == "redis" { "centralized" } else { "embedded" },
                    "latency_ms": h.latency_ms,
                    "error": h.error,
                    "fallback": if h.fallback { Some("memory") } else { None },
                    "pending_writes": h.pending_writes,
                    "down_for_seconds": h.down_for_seconds,
                }),
            );
            HealthReport {
                dependencies,
                ready: true,
                degraded: !h.ok,
                extra: Map::new(),
            }
        })
    }
}
