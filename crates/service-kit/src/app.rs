//! The assembly every service shares: open the storage it needs, then serve the kit's routes and
//! its own around that storage.

use std::sync::Arc;

use actix_web::web;
use cg_storage::config::Needs;
use cg_storage::{Storage, StorageConfig};

use crate::ServerConfig;
use crate::health::StorageReadiness;
use crate::server::{Kit, ServiceServer};
use crate::startup::open_storage;

/// What distinguishes one service from another at start-up.
#[derive(Debug, Clone, Copy)]
pub struct ServiceSpec {
    /// Name in logs, metrics and `/health`.
    pub name: &'static str,
    pub version: &'static str,
    /// Port unless `CG_PORT` says otherwise.
    pub default_port: u16,
    /// Backends it uses; only these are connected and probed.
    pub needs: Needs,
}

/// A built, bound, not yet running service.
#[derive(Debug)]
pub struct Application {
    server: ServiceServer,
    storage: Storage,
}

impl Application {
    /// Connect storage, then bind the listeners (`CG_PORT=0` picks free ports; see
    /// [`Self::port`] and [`Self::admin_port`]). `routes` receives the connected storage and the [`Kit`] (whose
    /// `shutdown` token stops background tasks, and whose `readiness` a service may wrap to report
    /// more), and returns the function that registers the service's own routes on every worker.
    pub async fn build<R, F>(
        spec: &ServiceSpec,
        server: &ServerConfig,
        storage: &StorageConfig,
        routes: R,
    ) -> anyhow::Result<Self>
    where
        R: FnOnce(&Storage, &mut Kit) -> anyhow::Result<F>,
        F: Fn(&mut web::ServiceConfig) + Send + Clone + 'static,
    {
        let storage = open_storage(spec.name, storage, spec.needs).await?;
        let readiness = Arc::new(StorageReadiness {
            storage: storage.clone(),
        });
        let mut kit = Kit::new(spec.name, spec.version, readiness, server.internal_token());
        let configure = routes(&storage, &mut kit)?;
        let server = ServiceServer::build(server, spec.default_port, kit, configure)?;
        Ok(Self { server, storage })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// The admin port actually bound (`/metrics`, detailed `/health`; `CG_ADMIN_PORT`).
    pub fn admin_port(&self) -> u16 {
        self.server.admin_port()
    }

    /// Stop the server from elsewhere (tests that kill a service).
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// The connected storage.
    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    /// Serve until SIGTERM or SIGINT.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        Ok(self.server.run_until_stopped().await?)
    }
}

/// For a service that serves only the kit's routes (health, readiness, metrics).
pub fn kit_routes_only(_: &Storage, _: &mut Kit) -> anyhow::Result<fn(&mut web::ServiceConfig)> {
    Ok(|_| {})
}
