//! What tokenguard's handlers share.

use crate::analysis::PriceTable;
use crate::config::Settings;

/// Per-process state.
#[derive(Debug)]
pub struct TokenState {
    pub prices: PriceTable,
    pub default_model: String,
    pub long_text_tokens: usize,
    pub confidence_threshold: f64,
}

impl TokenState {
    pub fn new(settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            prices: settings.prices()?,
            default_model: settings.default_model(),
            long_text_tokens: settings.long_text_tokens(),
            confidence_threshold: settings.threshold()?,
        })
    }
}
