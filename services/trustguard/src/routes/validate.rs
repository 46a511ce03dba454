//! `POST /validate` and `/v1/validate`: the full verdict; `/v1/detect`: the detectors only. Results
//! are cached by a hash of the input; every validation is audited.

use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
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

    fn cache_key(&self, content: &str) -> String {
        let mut h = Sha256::new();
        for part in [
            self.validation_type.as_deref().unwrap_or(""),
            self.task.as_deref().unwrap_or(""),
            content,
            self.context.as_deref().unwrap_or(""),
            self.question.as_deref().unwrap_or(""),
        ] {
            h.update((part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        format!("result:v1:{}", hex::encode(h.finalize()))
    }
}

/// Run (or reuse) the analysis; returns the verdict as JSON and whether it came from the cache.
pub(crate) async fn verdict(
    state: &TrustState,
    body: &ValidateRequest,
) -> Result<(Value, bool), ApiError> {
    let content = body.content()?.to_owned();
    let task = body.task()?;
    let key = body.cache_key(&content);
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
    let (mut v, cached) = verdict(&state, &body).await?;
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
    let (v, cached) = verdict(&state, &body).await?;
    let elapsed = started.elapsed().as_secs_f64();
    state.audit(&req, &body, &v, cached, elapsed).await;
    Ok(HttpResponse::Ok().json(json!({
        "pattern_detections": v["pattern_detections"],
        "evidence": v["evidence"],
        "risk_level": v["risk_level"],
        "processing_time": elapsed,
    })))
}
