//! Configuration of healthguard, read once in `main`: the server settings every service shares
//! ([`ServerConfig`], `CG_*` variables) and the storage settings ([`StorageConfig`]); each
//! module documents its variables.

use cg_service_kit::ServerConfig;
use cg_storage::StorageConfig;

/// Everything healthguard reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
}

impl Config {
    /// Read and validate; the error names the variable at fault.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            server: ServerConfig::from_env()?,
            storage: StorageConfig::from_env()?.for_healthguard(),
        })
    }
}
