//! Configuration of healthguard, read once in `main`: the server settings every service shares
//! ([`ServerConfig`], `CG_*`), the storage settings ([`StorageConfig`]; `HEALTHGUARD_DATABASE_URL`
//! picks its own database) and its own:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `HEALTHGUARD_MAX_SAMPLES` | 10000 | samples accepted in one request |
//! | `HEALTHGUARD_METRICS_INTERVAL_SECS` | 60 | how often its own health is recorded |
//! | `HEALTHGUARD_OUTBOX_REPLAY_SECS` | 5 | how often records kept while the database was away are retried |
//!
//! Records that cannot reach the database go to `$CG_DATA_DIR/outbox-healthguard.db` (keep that
//! folder on a persistent volume).

use std::time::Duration;

use cg_service_kit::ServerConfig;
use cg_service_kit::config::from_env_prefixed;
use cg_storage::StorageConfig;
use serde::Deserialize;

/// Everything healthguard reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub healthguard: Settings,
}

/// `HEALTHGUARD_*`, as read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub max_samples: Option<usize>,
    #[serde(default)]
    pub metrics_interval_secs: Option<f64>,
    #[serde(default)]
    pub outbox_replay_secs: Option<f64>,
}

impl Settings {
    pub fn max_samples(&self) -> usize {
        self.max_samples.unwrap_or(10_000).max(1)
    }

    pub fn metrics_interval(&self) -> Duration {
        Duration::from_secs_f64(
            self.metrics_interval_secs
                .filter(|s| *s > 0.0)
                .unwrap_or(60.0),
        )
    }

    pub fn outbox_replay(&self) -> Duration {
        Duration::from_secs_f64(self.outbox_replay_secs.filter(|s| *s > 0.0).unwrap_or(5.0))
    }
}

impl Config {
    /// Read and validate; the error names the variable at fault.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            server: ServerConfig::from_env()?,
            storage: StorageConfig::from_env()?.for_healthguard(),
            healthguard: from_env_prefixed("HEALTHGUARD_")?,
        })
    }
}
