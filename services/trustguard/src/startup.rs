//! Assembling trustguard: its storage, then the HTTP server around it.

use cg_service_kit::app::kit_routes_only;
use cg_service_kit::{Application, ServiceSpec};
use cg_storage::config::Needs;

use crate::config::Config;
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
    Application::build(&SPEC, &config.server, &config.storage, kit_routes_only).await
}
