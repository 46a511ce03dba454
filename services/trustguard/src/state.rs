//! What trustguard's handlers share, and the audit trail.

use std::time::Duration;

use actix_web::HttpRequest;
use cg_guard_api::{ORGANIZATION_HEADER, REQUEST_ID_HEADER};
use cg_storage::models::TrustAudit;
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::{Cache, Db, Storage};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::config::Settings;
use crate::routes::ValidateRequest;

/// Per-process state.
#[derive(Debug)]
pub struct TrustState {
    pub db: Db,
    pub cache: Cache,
    pub cache_ttl: Duration,
    pub store_text: bool,
}

impl TrustState {
    pub fn new(storage: &Storage, settings: &Settings) -> anyhow::Result<Self> {
        Ok(Self {
            db: storage.db()?.clone(),
            cache: storage.cache()?.with_prefix("trustguard:"),
            cache_ttl: settings.cache_ttl(),
            store_text: settings.store_text(),
        })
    }

    /// Record a validation: scores, evidence counts and a hash of the content (the content only
    /// when `TRUSTGUARD_STORE_TEXT` is on). A failure is logged and counted, never the caller's.
    pub async fn audit(
        &self,
        req: &HttpRequest,
        body: &ValidateRequest,
        verdict: &Value,
        cached: bool,
        seconds: f64,
    ) {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let content = body.content().unwrap_or_default();
        let evidence_counts: serde_json::Map<String, Value> = verdict["evidence"]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), json!(v.as_array().map_or(0, Vec::len))))
                    .collect()
            })
            .unwrap_or_default();
        let row = TrustAudit {
            id: Id::new(),
            created_at: Timestamp::now(),
            organization_id: header(ORGANIZATION_HEADER).and_then(|o| o.parse().ok()),
            request_id: header(REQUEST_ID_HEADER),
            validation_type: body
                .validation_type
                .clone()
                .unwrap_or_else(|| "general".into()),
            task: verdict["grounding"]["task"].as_str().map(str::to_owned),
            overall_score: verdict["overall_score"].as_f64().unwrap_or(0.0),
            trust_score: verdict["trust_score"].as_f64().unwrap_or(1.0),
            risk_level: verdict["risk_level"].as_str().unwrap_or("low").to_owned(),
            pattern_detections: verdict["pattern_detections"].clone(),
            evidence_counts: Value::Object(evidence_counts),
            content_sha256: hex::encode(Sha256::digest(content.as_bytes())),
            content_chars: i64::try_from(content.chars().count()).unwrap_or(i64::MAX),
            analyzed_text: self.store_text.then(|| content.to_owned()),
            cached,
            processing_time_ms: seconds * 1000.0,
        };
        let written = async {
            let mut pooled = self.db.get().await?;
            row.insert_or_ignore(&mut pooled.conn()).await
        };
        if let Err(e) = written.await {
            metrics::counter!("cg_trustguard_audit_failures_total").increment(1);
            tracing::warn!(error = %e, "writing the audit record failed");
        }
    }
}
