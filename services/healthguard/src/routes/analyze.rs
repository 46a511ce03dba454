//! `POST /analyze`, `/mitigate` and `/report`: a batch of samples through the detectors.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use actix_web::{HttpRequest, HttpResponse, web};
use cg_guard_api::{ORGANIZATION_HEADER, REQUEST_ID_HEADER};
use cg_service_kit::ApiError;
use cg_storage::models::PoisonResult;
use cg_storage::sql_types::{Id, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::analysis::{Action, Sample, SampleResult, analyze as run, mitigate as clean};
use crate::state::HealthState;

/// One sample; `id` may be a string or a number.
#[derive(Debug, Clone, Deserialize)]
pub struct SampleIn {
    pub id: Value,
    pub content: String,
    #[serde(default)]
    pub label: Option<Value>,
    /// Accepted as the contract allows; the detectors do not read it.
    #[serde(default)]
    #[expect(
        dead_code,
        reason = "part of the request contract, unused by the detectors"
    )]
    pub metadata: Option<Value>,
}

/// The request body of all three routes.
#[derive(Debug, Clone, Deserialize)]
pub struct Batch {
    pub samples: Vec<SampleIn>,
    /// `/mitigate` only: none, flag, sanitize or redact (default sanitize).
    #[serde(default)]
    pub action: Option<Action>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Validate and run the detectors (on the blocking pool).
async fn detect(state: &HealthState, batch: &Batch) -> Result<Vec<SampleResult>, ApiError> {
    if batch.samples.is_empty() {
        return Err(ApiError::bad_request("samples must not be empty"));
    }
    if batch.samples.len() > state.max_samples {
        return Err(ApiError::payload_too_large(format!(
            "{} samples exceed the limit of {} per request",
            batch.samples.len(),
            state.max_samples
        )));
    }
    let owned: Vec<(String, String, Option<String>)> = batch
        .samples
        .iter()
        .map(|s| (text(&s.id), s.content.clone(), s.label.as_ref().map(text)))
        .collect();
    state.in_flight.fetch_add(1, Ordering::Relaxed);
    state.requests.fetch_add(1, Ordering::Relaxed);
    let results = web::block(move || {
        let samples: Vec<Sample<'_>> = owned
            .iter()
            .map(|(id, content, label)| Sample {
                id,
                content,
                label: label.as_deref(),
            })
            .collect();
        run(&samples)
    })
    .await;
    state.in_flight.fetch_sub(1, Ordering::Relaxed);
    results.map_err(ApiError::internal)
}

fn summary(results: &[SampleResult]) -> Value {
    let mut by_kind: BTreeMap<&str, usize> = BTreeMap::new();
    for r in results {
        if let Some(k) = r.kind {
            *by_kind.entry(k).or_default() += 1;
        }
    }
    json!({
        "samples": results.len(),
        "poisoned": results.iter().filter(|r| r.is_poisoned).count(),
        "by_kind": by_kind,
    })
}

fn view(r: &SampleResult) -> Value {
    json!({
        "sample_id": r.sample_id,
        "is_poisoned": r.is_poisoned,
        "confidence": r.confidence,
        "kind": r.kind,
        "details": {
            "reasons": r.findings.iter().map(|f| format!("{}: {}", f.kind, f.reason)).collect::<Vec<_>>(),
            "spans": r.findings.iter().flat_map(|f| f.spans.iter().map(move |s| json!({"kind": f.kind, "start": s.start, "end": s.end, "text": s.text}))).collect::<Vec<_>>(),
            "findings": r.findings,
        },
    })
}

/// Rows to store for a batch.
fn rows(
    req: &HttpRequest,
    batch_id: Id,
    batch: &Batch,
    results: &[SampleResult],
    mitigation: Option<&str>,
) -> Vec<PoisonResult> {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let organization_id = header(ORGANIZATION_HEADER).and_then(|o| o.parse().ok());
    let request_id = header(REQUEST_ID_HEADER);
    let now = Timestamp::now();
    batch
        .samples
        .iter()
        .zip(results)
        .map(|(s, r)| PoisonResult {
            id: Id::new(),
            created_at: now,
            organization_id,
            request_id: request_id.clone(),
            batch_id,
            sample_id: r.sample_id.clone(),
            is_poisoned: r.is_poisoned,
            confidence: r.confidence,
            label: s.label.as_ref().map(text),
            reasons: json!(
                r.findings
                    .iter()
                    .map(
                        |f| json!({"kind": f.kind, "reason": f.reason, "confidence": f.confidence})
                    )
                    .collect::<Vec<_>>()
            ),
            spans: json!(
                r.findings
                    .iter()
                    .flat_map(|f| f
                        .spans
                        .iter()
                        .map(move |sp| json!({"kind": f.kind, "start": sp.start, "end": sp.end})))
                    .collect::<Vec<_>>()
            ),
            detector_scores: json!(
                r.findings
                    .iter()
                    .map(|f| (f.kind, f.confidence))
                    .collect::<BTreeMap<_, _>>()
            ),
            content_sha256: hex::encode(Sha256::digest(s.content.as_bytes())),
            mitigation: mitigation.map(str::to_owned),
        })
        .collect()
}

pub async fn analyze(
    req: HttpRequest,
    state: web::Data<HealthState>,
    body: web::Json<Batch>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let results = detect(&state, &body).await?;
    let batch_id = Id::new();
    let stored = state
        .persist_results(&rows(&req, batch_id, &body, &results, None))
        .await;
    Ok(HttpResponse::Ok().json(json!({
        "batch_id": batch_id,
        "results": results.iter().map(view).collect::<Vec<_>>(),
        "summary": summary(&results),
        "stored": stored,
        "processing_time_ms": started.elapsed().as_secs_f64() * 1000.0,
    })))
}

pub async fn mitigate(
    req: HttpRequest,
    state: web::Data<HealthState>,
    body: web::Json<Batch>,
) -> Result<HttpResponse, ApiError> {
    let action = body.action.unwrap_or(Action::Sanitize);
    let results = detect(&state, &body).await?;
    let name = serde_json::to_value(action)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned));
    let batch_id = Id::new();
    let stored = state
        .persist_results(&rows(&req, batch_id, &body, &results, name.as_deref()))
        .await;
    let out: Vec<Value> = body
        .samples
        .iter()
        .zip(&results)
        .map(|(s, r)| {
            let mut v = view(r);
            v["action"] = json!(action);
            v["content"] = json!(if action == Action::Flag || action == Action::None {
                s.content.clone()
            } else {
                clean(&s.content, r, action)
            });
            v["flagged"] = json!(action == Action::Flag && r.is_poisoned);
            v
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"batch_id": batch_id, "results": out, "summary": summary(&results), "stored": stored})))
}

pub async fn report(
    state: web::Data<HealthState>,
    body: web::Json<Batch>,
) -> Result<HttpResponse, ApiError> {
    let results = detect(&state, &body).await?;
    let s = summary(&results);
    let poisoned = s["poisoned"].as_u64().unwrap_or(0) as f64;
    let ratio = poisoned / results.len().max(1) as f64;
    let mut recommendations = Vec::new();
    let by_kind = s["by_kind"].as_object().cloned().unwrap_or_default();
    for (kind, advice) in [
        (
            "zero_width",
            "strip invisible characters before training or indexing (/mitigate with sanitize)",
        ),
        (
            "bidi_control",
            "strip bidirectional controls; they can make text read differently to people and machines",
        ),
        (
            "tag_character",
            "strip Unicode tag characters; they can carry hidden instructions",
        ),
        (
            "homoglyph",
            "map look-alike letters back to Latin (/mitigate with sanitize) and review the sources",
        ),
        (
            "embedded_instruction",
            "remove samples with instructions to models before they reach training data or retrieval",
        ),
        (
            "backdoor_trigger",
            "drop the samples carrying the trigger tokens and audit where they came from",
        ),
        (
            "conflicting_duplicate",
            "resolve relabelled duplicates; one label is wrong",
        ),
    ] {
        if by_kind.contains_key(kind) {
            recommendations.push(advice);
        }
    }
    Ok(HttpResponse::Ok().json(json!({
        "summary": s,
        "poisoned_ratio": ratio,
        "risk_level": if ratio >= 0.2 { "high" } else if ratio > 0.0 { "medium" } else { "low" },
        "recommendations": recommendations,
        "poisoned_samples": results.iter().filter(|r| r.is_poisoned).map(view).collect::<Vec<_>>(),
    })))
}
