//! Configuration of trustguard, read once in `main`: the server settings every service shares
//! ([`ServerConfig`], `CG_*`), the storage settings ([`StorageConfig`]) and its own:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `TRUSTGUARD_STORE_TEXT` | false | keep the analysed content in the audit log (a hash is always kept) |
//! | `TRUSTGUARD_CACHE_TTL_SECS` | 3600 | how long a result is reused for identical input |

use std::time::Duration;

use cg_service_kit::ServerConfig;
use cg_service_kit::config::from_env_prefixed;
use cg_storage::StorageConfig;
use serde::Deserialize;

const DEFAULT_CACHE_TTL_SECS: u64 = 3600;

/// Everything trustguard reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub trustguard: Settings,
}

/// `TRUSTGUARD_*`, as read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub store_text: Option<bool>,
    #[serde(default)]
    pub cache_ttl_secs: Option<u64>,
}

impl Settings {
    pub fn store_text(&self) -> bool {
        self.store_text.unwrap_or(false)
    }

    pub fn cache_ttl(&self) -> Duration {
        Duration::from_secs(self.cache_ttl_secs.unwrap_or(DEFAULT_CACHE_TTL_SECS))
    }
}

impl Config {
    /// Read and validate; the error names the variable at fault.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            server: ServerConfig::from_env()?,
            storage: StorageConfig::from_env()?,
            trustguard: from_env_prefixed("TRUSTGUARD_")?,
        })
    }
}
