//! Configuration of contextguard, read once in `main`: the server settings every service shares
//! ([`ServerConfig`], `CG_*`), the storage settings ([`StorageConfig`]: `CONTEXTGUARD_USE_REDIS`,
//! `CONTEXTGUARD_REDIS_URL`, `CONTEXTGUARD_KEY_PREFIX`, `CONTEXTGUARD_DEFAULT_TTL`) and its own:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `CONTEXTGUARD_MAX_VALUE_BYTES` | 1048576 | largest memory value (JSON, 413 beyond) |
//! | `CONTEXTGUARD_MAX_ITEMS` | 10000 | memory items per organisation |
//! | `CONTEXTGUARD_MAX_TURNS` | 200 | turns kept per conversation (oldest dropped) |
//! | `CONTEXTGUARD_WINDOW_TURNS` | 50 | turns in a conversation's window |
//! | `CONTEXTGUARD_WINDOW_TOKENS` | 4000 | estimated tokens in a conversation's window |
//! | `CONTEXTGUARD_MAX_TURN_BYTES` | 65536 | largest turn (413 beyond) |
//! | `CONTEXTGUARD_FALLBACK_MAX_BYTES` | 67108864 | in-process store used while Redis is away |
//! | `CONTEXTGUARD_JOURNAL_MAX_WRITES` | 100000 | writes kept for write-back while Redis is away (503 beyond) |
//! | `CONTEXTGUARD_PROBE_SECS` | 1 | how often an absent Redis is probed |
//! | `CONTEXTGUARD_CONFIG_REFRESH_SECS` | 5 | how often replicas re-read the drift thresholds |
//!
//! Writes made while Redis is away wait in `$CG_DATA_DIR/contextguard-journal.db` until they are
//! written back (keep that folder on a volume that survives a container restart; one per replica).

use std::time::Duration;

use cg_service_kit::ServerConfig;
use cg_service_kit::config::from_env_prefixed;
use cg_storage::StorageConfig;
use serde::Deserialize;

/// Everything contextguard reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub contextguard: Settings,
}

/// `CONTEXTGUARD_*`, as read (storage ones aside).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub max_value_bytes: Option<usize>,
    #[serde(default)]
    pub max_items: Option<usize>,
    #[serde(default)]
    pub max_turns: Option<usize>,
    #[serde(default)]
    pub window_turns: Option<usize>,
    #[serde(default)]
    pub window_tokens: Option<usize>,
    #[serde(default)]
    pub max_turn_bytes: Option<usize>,
    #[serde(default)]
    pub fallback_max_bytes: Option<u64>,
    #[serde(default)]
    pub journal_max_writes: Option<usize>,
    #[serde(default)]
    pub probe_secs: Option<f64>,
    #[serde(default)]
    pub config_refresh_secs: Option<f64>,
}

/// The settings with defaults applied.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_value_bytes: usize,
    pub max_items: usize,
    pub max_turns: usize,
    pub window_turns: usize,
    pub window_tokens: usize,
    pub max_turn_bytes: usize,
    pub fallback_max_bytes: u64,
    pub journal_max_writes: usize,
    pub probe: Duration,
    pub config_refresh: Duration,
}

fn secs(v: Option<f64>, default: f64) -> Duration {
    Duration::from_secs_f64(v.filter(|s| s.is_finite() && *s > 0.0).unwrap_or(default))
}

impl Settings {
    pub fn limits(&self) -> Limits {
        let max_turns = self.max_turns.unwrap_or(200).max(1);
        Limits {
            max_value_bytes: self.max_value_bytes.unwrap_or(1024 * 1024).max(1),
            max_items: self.max_items.unwrap_or(10_000).max(1),
            max_turns,
            window_turns: self.window_turns.unwrap_or(50).clamp(1, max_turns),
            window_tokens: self.window_tokens.unwrap_or(4000).max(1),
            max_turn_bytes: self.max_turn_bytes.unwrap_or(64 * 1024).max(1),
            fallback_max_bytes: self
                .fallback_max_bytes
                .unwrap_or(64 * 1024 * 1024)
                .max(1024 * 1024),
            journal_max_writes: self.journal_max_writes.unwrap_or(100_000).max(1),
            probe: secs(self.probe_secs, 1.0),
            config_refresh: secs(self.config_refresh_secs, 5.0),
        }
    }
}

impl Config {
    /// Read and validate; the error names the variable at fault.
    pub fn from_env() -> anyhow::Result<Self> {
        Ok(Self {
            server: ServerConfig::from_env()?,
            storage: StorageConfig::from_env()?.for_contextguard(),
            contextguard: from_env_prefixed("CONTEXTGUARD_")?,
        })
    }
}
