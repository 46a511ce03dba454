//! Configuration of tokenguard, read once in `main`: the server settings every service shares
//! ([`ServerConfig`], `CG_*`), the storage settings ([`StorageConfig`]) and its own:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `TOKENGUARD_DEFAULT_MODEL` | `gpt-4o` | model assumed when a request names none (picks encoding and price) |
//! | `TOKENGUARD_PRICES` | — | JSON `{model: {input, output}}` in USD per million tokens, over the built-in table |
//! | `TOKENGUARD_LONG_TEXT_TOKENS` | 2000 | above this many tokens `/scan` recommends pruning |
//! | `TOKENGUARD_CONFIDENCE_THRESHOLD` | 0.7 | below this confidence `/scan` recommends pruning |

use std::collections::BTreeMap;

use cg_service_kit::ServerConfig;
use cg_service_kit::config::{ConfigError, from_env_prefixed};
use cg_storage::StorageConfig;
use serde::Deserialize;

use crate::analysis::{Encoding, Price, PriceTable};

const DEFAULT_MODEL: &str = "gpt-4o";
const DEFAULT_LONG_TEXT_TOKENS: usize = 2000;
const DEFAULT_CONFIDENCE_THRESHOLD: f64 = 0.7;

/// Everything tokenguard reads from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub tokenguard: Settings,
}

/// `TOKENGUARD_*`, as read.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Settings {
    #[serde(default)]
    pub default_model: Option<String>,
    #[serde(default)]
    pub prices: Option<String>,
    #[serde(default)]
    pub long_text_tokens: Option<usize>,
    #[serde(default)]
    pub confidence_threshold: Option<f64>,
}

impl Config {
    /// Read and validate; the error names the variable at fault.
    pub fn from_env() -> anyhow::Result<Self> {
        let config = Self {
            server: ServerConfig::from_env()?,
            storage: StorageConfig::from_env()?,
            tokenguard: from_env_prefixed("TOKENGUARD_")?,
        };
        config.tokenguard.prices()?;
        config.tokenguard.threshold()?;
        Ok(config)
    }
}

impl Settings {
    pub fn default_model(&self) -> String {
        self.default_model
            .clone()
            .filter(|m| Encoding::for_model(m).is_some())
            .unwrap_or_else(|| DEFAULT_MODEL.to_owned())
    }

    /// The price table with `TOKENGUARD_PRICES` applied.
    pub fn prices(&self) -> anyhow::Result<PriceTable> {
        let overrides: BTreeMap<String, Price> = match &self.prices {
            Some(json) if !json.trim().is_empty() => serde_json::from_str(json).map_err(|e| {
                ConfigError::err(format!(
                    "TOKENGUARD_PRICES is not {{model: {{input, output}}}} JSON: {e}"
                ))
            })?,
            _ => BTreeMap::new(),
        };
        PriceTable::with_overrides(overrides)
            .map_err(|e| ConfigError::err(format!("TOKENGUARD_PRICES: {e}")))
    }

    pub fn long_text_tokens(&self) -> usize {
        self.long_text_tokens
            .unwrap_or(DEFAULT_LONG_TEXT_TOKENS)
            .max(1)
    }

    /// The confidence below which pruning is recommended.
    pub fn threshold(&self) -> anyhow::Result<f64> {
        match self.confidence_threshold {
            None => Ok(DEFAULT_CONFIDENCE_THRESHOLD),
            Some(t) if (0.0..=1.0).contains(&t) => Ok(t),
            Some(_) => Err(ConfigError::err(
                "TOKENGUARD_CONFIDENCE_THRESHOLD must be between 0 and 1",
            )),
        }
    }
}
