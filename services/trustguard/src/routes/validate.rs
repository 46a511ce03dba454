//! `POST /validate` and `/v1/validate`: the full verdict; `/v1/detect`: the detectors only. Results
//! are cached by a hash of the input and the calling organisation (so an answer's `cached` never
//! tells one organisation what another validated); every validation is audited.

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use cg_guard_api::ORGANIZATION_HEADER;
use cg_service_kit::ApiError;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::analysis::{Input, Task, Validation, validate as analyse};
use crate::state::TrustState;

/// The request body.
#[derive(Debug, Clone, Deserialize)]
pub struct ValidateRequest {
    /// general, grounding, … (recorded; grounding runs whenever `context` is given).
    #[serde(default)]
    pub validation_type: Option<String>,
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub question: Option<String>,
    /// qa, dialogue or summarization; detected from the input's shape when absent.
    #[serde(default)]
    pub task: Option<String>,
    #[serde(default)]
    pub validation_level: Option<String>,
}

impl ValidateRequest {
    pub fn content(&self) -> Result<&str, ApiError> {
        self.content
            .as_deref()
            .or(self.text.as_deref())
            .ok_or_else(|| ApiError::unprocessable("content (or text) is required"))
    }

    pub fn task(&self) -> Result<Option<Task>, ApiError> {
        self.task
            .as_deref()
            .map(|t| t.parse().map_err(ApiError::unprocessable))
            .transpose()
    }

    fn cache_key(&self, organization: &str, content: &str) -> String {
        let mut h = Sha256::new();
        for part in [
            organization,
            self.validation_type.as_deref().unwrap_or(""),
            self.task.as_deref().unwrap_or(""),
            content,
            self.context.as_deref().unwrap_or(""),
            self.question.as_deref().unwrap_or(""),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        format!("result:v2:{}", hex::encode(h.finalize()))
    }
}

/// Run (or reuse) the analysis; returns the verdict as JSON and whether it came from the cache.
pub(crate) async fn verdict(
    req: &HttpRequest,
    state: &TrustState,
    body: &ValidateRequest,
) -> Result<(Value, bool), ApiError> {
    let content = body.content()?.to_owned();
    let task = body.task()?;
    // Set by the gateway on every call it makes for an organisation; none for direct calls.
    let organization = req
        .headers()
        .get(ORGANIZATION_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let key = body.cache_key(organization, &content);
    match state.cache.get(&key).await {
        Ok(Some(raw)) => {
            if let Ok(v) = serde_json::from_slice::<Value>(&raw) {
                metrics::counter!("cg_trustguard_cache_total", "result" => "hit").increment(1);
                return Ok((v, true));
            }
        }
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, "result cache unavailable"),
    }
    metrics::counter!("cg_trustguard_cache_total", "result" => "miss").increment(1);
    let (context, question) = (body.context.clone(), body.question.clone());
    let validation: Validation = web::block(move || {
        analyse(&Input {
            content: &content,
            context: context.as_deref(),
            question: question.as_deref(),
            task,
        })
    })
    .await
    .map_err(ApiError::internal)?;
    let value = serde_json::to_value(&validation).map_err(ApiError::internal)?;
    if let Ok(raw) = serde_json::to_vec(&value)
        && let Err(e) = state.cache.set(&key, &raw, Some(state.cache_ttl)).await
    {
        tracing::warn!(error = %e, "caching a result failed");
    }
    Ok((value, false))
}

pub async fn validate(
    req: HttpRequest,
    state: web::Data<TrustState>,
    body: web::Json<ValidateRequest>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let (mut v, cached) = verdict(&req, &state, &body).await?;
    let elapsed = started.elapsed().as_secs_f64();
    state.audit(&req, &body, &v, cached, elapsed).await;
    v["processing_time"] = json!(elapsed);
    v["cached"] = json!(cached);
    v["validation_type"] = json!(body.validation_type.as_deref().unwrap_or("general"));
    Ok(HttpResponse::Ok().json(v))
}

pub async fn detect(
    req: HttpRequest,
    state: web::Data<TrustState>,
    body: web::Json<ValidateRequest>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let (v, cached) = verdict(&req, &state, &body).await?;
    let elapsed = started.elapsed().as_secs_f64();
    state.audit(&req, &body, &v, cached, elapsed).await;
    Ok(HttpResponse::Ok().json(json!({
        "pattern_detections": v["pattern_detections"],
        "evidence": v["evidence"],
        "risk_level": v["risk_level"],
        "processing_time": elapsed,
    })))
}
