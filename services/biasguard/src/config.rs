//! Configuration of biasguard, read once in `main`: the server settings every service shares
//! ([`ServerConfig`], `CG_*`), the storage settings ([`StorageConfig`]) and its own:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `BIASGUARD_MAX_TEXT_BYTES` | 100000 | the longest `text` accepted (413 above) |
//! | `BIASGUARD_POLICY_TTL_SECS` | 30 | how long an organisation's policies and settings are cached (a change announced by the gateway drops them at once) |
//! | `BIASGUARD_RETENTION_DAYS` | 365 | audit rows and violations older than this are removed (monthly partitions dropped whole on PostgreSQL); 0 keeps everything |
//! | `BIASGUARD_RETENTION_INTERVAL_SECS` | 3600 | how often retention runs |
//! | `BIASGUARD_OUTBOX_REPLAY_SECS` | 5 | how often records kept while the database was away are retried |
//!
//! Whether the analysed text is stored in the audit log is the organisation's choice:
//! `settings.biasguard.store_text` (default false) in its settings.
//! Records that cannot reach the database go to `$CG_DATA_DIR/outbox-biasguard.db` (keep that
//! folder on a persistent volume).

use std::time::Duration;

use cg_service_kit::ServerConfig;
use cg_service_kit::config::from_env_prefixed;
use cg_storage::StorageConfig;
use serde::Deserialize;

/// Everything biasguard reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub biasguard: Settings,
}

/// `BIASGUARD_*`, as read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub max_text_bytes: Option<usize>,
    #[serde(default)]
    pub policy_ttl_secs: Option<f64>,
    #[serde(default)]
    pub retention_days: Option<u32>,
    #[serde(default)]
    pub retention_interval_secs: Option<f64>,
    #[serde(default)]
    pub outbox_replay_secs: Option<f64>,
}

fn seconds(value: Option<f64>, default: f64) -> Duration {
    Duration::from_secs_f64(
        value
            .filter(|s| s.is_finite() && *s > 0.0)
            .unwrap_or(default),
    )
}

impl Settings {
    pub fn max_text_bytes(&self) -> usize {
        self.max_text_bytes.unwrap_or(100_000).max(1)
    }

    pub fn policy_ttl(&self) -> Duration {
        seconds(self.policy_ttl_secs, 30.0)
    }

    /// `None`: keep everything.
    pub fn retention(&self) -> Option<chrono::Duration> {
        match self.retention_days.unwrap_or(365) {
            0 => None,
            days => Some(chrono::Duration::days(i64::from(days))),
        }
    }

    pub fn retention_interval(&self) -> Duration {
        seconds(self.retention_interval_secs, 3600.0)
    }

    pub fn outbox_replay(&self) -> Duration {
        seconds(self.outbox_replay_secs, 5.0)
    }
}

impl Config {
    /// Read and validate; the error names the variable at fault.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            server: ServerConfig::from_env()?,
            storage: StorageConfig::from_env()?,
            biasguard: from_env_prefixed("BIASGUARD_")?,
        })
    }
}
