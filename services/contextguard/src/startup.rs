//! Assembling contextguard: storage, then the HTTP server around it.

use std::sync::Arc;

use cg_service_kit::startup::open_storage;
use cg_service_kit::{Kit, ServiceServer, StorageReadiness};
use cg_storage::Storage;
use cg_storage::config::Needs;

use crate::config::Config;
use crate::{DEFAULT_PORT, SERVICE};

/// The backends contextguard uses.
pub const NEEDS: Needs = Needs {
    database: false,
    cache: true,
    blobs: false,
};

/// A built, bound, not yet running contextguard.
#[derive(Debug)]
pub struct Application {
    server: ServiceServer,
    storage: Storage,
}

impl Application {
    /// Connect storage and bind the listener (`CG_PORT=0` picks a free port; see [`Self::port`]).
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let storage = open_storage(SERVICE, &config.storage, NEEDS).await?;
        let readiness = Arc::new(StorageReadiness {
            storage: storage.clone(),
        });
        let kit = Kit::new(
            SERVICE,
            env!("CARGO_PKG_VERSION"),
            readiness,
            config.server.internal_token(),
        );
        let server = ServiceServer::build(&config.server, DEFAULT_PORT, kit, |_| {})?;
        Ok(Self { server, storage })
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.server.port()
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
