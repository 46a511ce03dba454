//! What contextguard's handlers share: the memory store, the limits, and the drift thresholds
//! (read from the store every few seconds, so a change reaches every replica).

use std::sync::{Arc, RwLock};
use std::time::Duration;

use actix_web::HttpRequest;
use cg_guard_api::ORGANIZATION_HEADER;
use cg_service_kit::ApiError;
use tokio_util::sync::CancellationToken;

use crate::analysis::DriftSettings;
use crate::config::Limits;
use crate::store::{Store, StoreError};

/// The store key of the drift thresholds every replica follows.
pub const DRIFT_CONFIG_KEY: &str = "config:drift";

/// Per-process state.
#[derive(Debug)]
pub struct ContextState {
    pub store: Arc<Store>,
    pub limits: Limits,
    pub default_ttl: Duration,
    pub drift: RwLock<DriftSettings>,
}

impl ContextState {
    /// The thresholds in force.
    pub fn drift_settings(&self) -> DriftSettings {
        self.drift.read().map(|d| d.clone()).unwrap_or_default()
    }

    /// Re-read the shared thresholds now.
    pub async fn refresh_drift(&self) -> Result<(), StoreError> {
        let settings = match self.store.get(DRIFT_CONFIG_KEY).await? {
            Some(bytes) => match serde_json::from_slice::<DriftSettings>(&bytes) {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring unreadable drift thresholds");
                    return Ok(());
                }
            },
            None => DriftSettings::default(),
        };
        if let Ok(mut d) = self.drift.write() {
            *d = settings;
        }
        Ok(())
    }

    /// Re-read the thresholds every `every` until `shutdown`.
    pub async fn follow_drift_config(
        self: Arc<Self>,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            if let Err(e) = self.refresh_drift().await {
                tracing::debug!(error = %e, "drift thresholds not refreshed");
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }
}

/// The caller's namespace: the organisation the gateway names, or `_` for calls without one.
pub fn namespace(req: &HttpRequest) -> Result<String, ApiError> {
    match req.headers().get(ORGANIZATION_HEADER) {
        None => Ok("_".into()),
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| uuid::Uuid::parse_str(s).ok())
            .map(|u| u.hyphenated().to_string())
            .ok_or_else(|| ApiError::bad_request("X-Organization-ID must be a UUID")),
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::JournalFull(_) => ApiError::unavailable(e.to_string()),
            StoreError::Storage(inner) => ApiError::from_storage(&inner),
        }
    }
}
