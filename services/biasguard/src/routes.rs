//! `POST /process`: one text through the analysis, then the organisation's policies; every call
//! leaves an audit row, every failed policy a violation. Needs the internal token; the
//! organisation comes from `X-Organization-ID` (without it no policies apply and the audit row
//! has no organisation).

use std::time::Instant;

use actix_web::middleware::from_fn;
use actix_web::{HttpRequest, HttpResponse, web};
use cg_guard_api::{ORGANIZATION_HEADER, REQUEST_ID_HEADER};
use cg_service_kit::ApiError;
use cg_service_kit::internal_auth::require_internal_token;
use cg_storage::models::{AuditLog, Violation};
use cg_storage::sql_types::{Id, Timestamp};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::analysis::{BiasAnalysis, BiasRequest, analyze};
use crate::policy::{self, Decision, Evaluation};
use crate::state::{BiasState, Records, Stored};

/// Texts longer than this are analysed on the blocking pool.
const INLINE_BYTES: usize = 8 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/process")
            .wrap(from_fn(require_internal_token))
            .route(web::post().to(process)),
    );
}

/// What to do with the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Operation {
    DetectBias,
    Mitigate,
    PolicyCheck,
}

impl Operation {
    fn as_str(self) -> &'static str {
        match self {
            Self::DetectBias => "detect_bias",
            Self::Mitigate => "mitigate",
            Self::PolicyCheck => "policy_check",
        }
    }
}

/// The request body (other fields the gateway forwards are ignored).
#[derive(Debug, Clone, Deserialize)]
pub struct ProcessRequest {
    pub operation: Operation,
    pub text: String,
    #[serde(default)]
    pub context: Option<String>,
    #[serde(default)]
    pub detailed_analysis: Option<bool>,
    /// Evaluate only these of the organisation's policies (default: all of them).
    #[serde(default)]
    pub policy_ids: Option<Vec<Id>>,
}

fn header(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn run_analysis(body: &ProcessRequest) -> Result<BiasAnalysis, ApiError> {
    let detailed = body.detailed_analysis.unwrap_or(false);
    if body.text.len() + body.context.as_ref().map_or(0, String::len) <= INLINE_BYTES {
        return Ok(analyze(&BiasRequest {
            text: &body.text,
            context: body.context.as_deref(),
            detailed,
        }));
    }
    let (text, context) = (body.text.clone(), body.context.clone());
    web::block(move || {
        analyze(&BiasRequest {
            text: &text,
            context: context.as_deref(),
            detailed,
        })
    })
    .await
    .map_err(ApiError::internal)
}

/// How much the verdict depends on who the text is about: with `detailed_analysis`, the score
/// again with every group mention replaced by "people" (a second analysis, so only on request).
fn fairness_metrics(text: &str, analysis: &BiasAnalysis, detailed: bool) -> Value {
    let mut by_class = serde_json::Map::new();
    for p in &analysis.bias_patterns {
        if let Some(c) = p.group {
            let n = by_class
                .entry(c.as_str())
                .or_insert(json!(0))
                .as_u64()
                .unwrap_or(0);
            by_class.insert(c.as_str().into(), json!(n + 1));
        }
    }
    let explicit: Vec<_> = analysis
        .entities_detected
        .iter()
        .filter(|e| !e.implicit)
        .collect();
    let counterfactual = if !detailed || explicit.is_empty() || text.len() > INLINE_BYTES {
        Value::Null
    } else {
        let mut neutral = String::with_capacity(text.len());
        let mut at = 0;
        for e in explicit {
            if e.start < at {
                continue;
            }
            neutral.push_str(text.get(at..e.start).unwrap_or_default());
            neutral.push_str("people");
            at = e.end;
        }
        neutral.push_str(text.get(at..).unwrap_or_default());
        let score = analyze(&BiasRequest {
            text: &neutral,
            context: None,
            detailed: false,
        })
        .bias_score;
        json!({
            "neutralised_score": score,
            "group_dependence": ((analysis.bias_score - score) * 100.0).round() / 100.0,
        })
    };
    json!({
        "protected_classes": analysis.protected_classes,
        "patterns_by_class": by_class,
        "counterfactual": counterfactual,
        "confidence": analysis.confidence,
    })
}

fn evaluation_view(e: &Evaluation) -> Value {
    json!({
        "decision": e.decision,
        "policies_evaluated": e.policies_evaluated,
        "violations": e.failures,
        "warnings": e.warnings,
    })
}

pub async fn process(
    req: HttpRequest,
    state: web::Data<BiasState>,
    body: web::Json<ProcessRequest>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let body = body.into_inner();
    if body.text.trim().is_empty() {
        return Err(ApiError::bad_request("text must not be empty"));
    }
    let limit = state.settings.max_text_bytes();
    if body.text.len() > limit {
        return Err(ApiError::payload_too_large(format!(
            "text is {} bytes; the limit is {limit}",
            body.text.len()
        )));
    }
    let organization_id = match header(&req, ORGANIZATION_HEADER) {
        None => None,
        Some(raw) => Some(raw.parse::<Id>().map_err(|_| {
            ApiError::bad_request(format!("{ORGANIZATION_HEADER} is not a UUID: {raw:?}"))
        })?),
    };
    let request_id = header(&req, REQUEST_ID_HEADER);

    // Policies first: asking for a policy the organisation does not have is a client error.
    let mut warnings = Vec::new();
    let (policies, store_text) = match organization_id {
        None => (Vec::new(), false),
        Some(org) => match state.org_policies(org).await {
            Ok((p, stale)) => {
                if stale {
                    warnings.push(
                        "the policy store is unavailable: policies from a cached copy".to_owned(),
                    );
                }
                (p.policies.clone(), p.store_text)
            }
            Err(e) => {
                tracing::warn!(error = %e, "policies unavailable");
                warnings.push("the policy store is unavailable: no policy was evaluated".into());
                (Vec::new(), false)
            }
        },
    };
    let unavailable = warnings
        .iter()
        .any(|w| w.contains("no policy was evaluated"));
    let selected = match &body.policy_ids {
        None => policies,
        Some(ids) => {
            let missing: Vec<String> = ids
                .iter()
                .filter(|id| !policies.iter().any(|p| p.id == **id))
                .map(ToString::to_string)
                .collect();
            if !missing.is_empty() && !unavailable {
                return Err(ApiError::unprocessable(
                    "policy_ids names policies this organisation does not have",
                )
                .with_details(json!({"unknown_policy_ids": missing})));
            }
            policies
                .into_iter()
                .filter(|p| ids.contains(&p.id))
                .collect()
        }
    };

    let analysis = run_analysis(&body).await?;
    let mut evaluation = policy::evaluate(&analysis, &selected);
    if unavailable && evaluation.decision == Decision::Allow && organization_id.is_some() {
        // Policies could not be read: a person decides rather than letting it through unchecked.
        evaluation.decision = Decision::ReviewRequired;
    }
    evaluation.warnings.splice(0..0, warnings);

    let now = Timestamp::now();
    let audit_id = Id::new();
    let audit = AuditLog {
        id: audit_id,
        created_at: now,
        organization_id,
        request_id: request_id.clone(),
        operation: body.operation.as_str().into(),
        decision: evaluation.decision.as_str().into(),
        bias_score: analysis.bias_score,
        bias_level: analysis.bias_level.as_str().into(),
        bias_types: json!(analysis.bias_types),
        policy_ids: json!(evaluation.policies_evaluated),
        violations: json!(evaluation.failures),
        warnings: json!(evaluation.warnings),
        fairness_metrics: fairness_metrics(
            &body.text,
            &analysis,
            body.detailed_analysis.unwrap_or(false),
        ),
        request_context: json!({
            "text_sha256": hex::encode(Sha256::digest(body.text.as_bytes())),
            "text_bytes": body.text.len(),
            "context_bytes": body.context.as_ref().map(String::len),
            "detailed_analysis": body.detailed_analysis.unwrap_or(false),
            "policy_ids_requested": body.policy_ids,
            "model_threshold": crate::analysis::model::MODEL.threshold,
        }),
        analyzed_text: store_text.then(|| body.text.clone()),
        processing_time_ms: started.elapsed().as_secs_f64() * 1000.0,
    };
    let violations: Vec<Violation> = evaluation
        .failures
        .iter()
        .map(|f| Violation {
            id: Id::new(),
            created_at: now,
            organization_id,
            policy_id: Some(f.policy_id),
            audit_log_id: Some(audit_id),
            request_id: request_id.clone(),
            violation_type: f.violation_type.into(),
            severity: f.severity.into(),
            impact_score: f.impact_score,
            details: json!({
                "policy_name": f.policy_name,
                "enforcement_type": f.enforcement_type,
                "action": f.action,
                "reasons": f.reasons,
                "bias_score": analysis.bias_score,
                "bias_level": analysis.bias_level,
                "bias_types": analysis.bias_types,
                "protected_classes": analysis.protected_classes,
                "operation": body.operation.as_str(),
            }),
            requires_remediation: f.action != cg_guard_api::biasguard::PolicyAction::Warn,
            resolved: false,
            resolved_at: None,
            resolved_by: None,
            resolution_notes: None,
        })
        .collect();
    let violation_ids: Vec<Id> = violations.iter().map(|v| v.id).collect();
    let stored = state.persist(&Records { audit, violations }).await;
    if stored == Stored::Failed {
        return Err(ApiError::unavailable(
            "the analysis could not be recorded (database and local outbox both failed); nothing was accepted",
        ));
    }
    metrics::counter!("cg_biasguard_analyses_total", "decision" => evaluation.decision.as_str())
        .increment(1);

    let mut out = serde_json::to_value(&analysis).map_err(ApiError::internal)?;
    if let Value::Object(map) = &mut out {
        map.insert("operation".into(), json!(body.operation.as_str()));
        map.insert("decision".into(), json!(evaluation.decision));
        map.insert("policy_evaluation".into(), evaluation_view(&evaluation));
        map.insert("violation_ids".into(), json!(violation_ids));
        map.insert("audit_id".into(), json!(audit_id));
        map.insert("stored".into(), json!(stored));
        if body.operation == Operation::Mitigate {
            let changed = analysis.suggested_rewrite.is_some();
            map.insert(
                "mitigated_text".into(),
                json!(
                    analysis
                        .suggested_rewrite
                        .clone()
                        .unwrap_or_else(|| body.text.clone())
                ),
            );
            map.insert("changed".into(), json!(changed));
        }
        map.insert(
            "processing_time_ms".into(),
            json!(started.elapsed().as_secs_f64() * 1000.0),
        );
    }
    Ok(HttpResponse::Ok().json(out))
}
