//! `POST /api/v1/guards/process` (alias `/scan`): send a payload to one guard, or to several in
//! parallel under one deadline with one verdict.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use cg_guard_api::{CallContext, GuardError, GuardKind};
use cg_service_kit::observe::{current_request_id, outgoing_trace_headers};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use super::parse_guard;
use crate::auth::Caller;
use crate::error::{GatewayError, Result};
use crate::experiments::{Routing, valid_user_id};
use crate::guards::CallFailure;
use crate::guards::mapping;
use crate::guards::verdict::{Thresholds, Verdict, risk};
use crate::orgs::OrgProfile;
use crate::state::AppState;
use crate::traffic::Sample;
use crate::traffic::budget::PreReserved;
use crate::traffic::usage::GUARD_CALL_ENDPOINT;
use cg_storage::models::Role;

const MAX_DEPTH: usize = 10;
const DEFAULT_TIMEOUT_SECS: f64 = 30.0;
const MAX_TIMEOUT_SECS: f64 = 300.0;
const CLIENT_TYPES: [&str; 4] = ["web", "vscode", "chrome", "api"];

/// The request body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct ProcessRequest {
    /// A guard name, or `all`. Optional when `services` lists the guards.
    #[serde(default)]
    pub service_type: Option<String>,
    /// Several guards at once (instead of `service_type`).
    #[serde(default)]
    pub services: Option<Vec<String>>,
    /// The guard's input: a non-empty JSON object (`text`/`content` are aliases).
    #[schema(value_type = Object)]
    pub payload: Value,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub priority: Option<i64>,
    /// Seconds; capped at 300; default 30.
    #[serde(default)]
    pub timeout: Option<f64>,
    /// With several guards: answer with the guards that did answer when others fail.
    #[serde(default = "yes")]
    pub fallback_enabled: bool,
    /// web, vscode, chrome or api (default api).
    #[serde(default)]
    pub client_type: Option<String>,
    #[serde(default)]
    pub client_version: Option<String>,
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub request_metadata: Option<Value>,
}

fn yes() -> bool {
    true
}

/// The answer (the shape existing clients read).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProcessResponse {
    pub request_id: String,
    pub service_type: String,
    pub success: bool,
    #[schema(value_type = Object)]
    pub data: Value,
    pub error: Option<String>,
    /// Seconds.
    pub processing_time: f64,
    pub service_used: String,
    pub fallback_used: bool,
    pub client_type: String,
    pub confidence_score: Option<f64>,
    #[schema(value_type = Vec<Object>)]
    pub warnings: Vec<Value>,
    #[schema(value_type = Vec<Object>)]
    pub recommendations: Vec<Value>,
    #[schema(value_type = Object)]
    pub metadata: Value,
}

fn bad(code: &'static str, message: impl Into<String>) -> GatewayError {
    GatewayError::BadRequest {
        code,
        message: message.into(),
        details: Value::Object(Map::new()),
    }
}

fn depth(v: &Value) -> usize {
    match v {
        Value::Object(m) => 1 + m.values().map(depth).max().unwrap_or(0),
        Value::Array(a) => 1 + a.iter().map(depth).max().unwrap_or(0),
        _ => 0,
    }
}

/// The guards a request names, in port order, without repeats.
fn requested(body: &ProcessRequest) -> Result<Vec<GuardKind>> {
    let names: Vec<&str> = match (&body.services, body.service_type.as_deref()) {
        (Some(list), _) if !list.is_empty() => list.iter().map(String::as_str).collect(),
        (_, Some("all")) => return Ok(GuardKind::ALL.to_vec()),
        (_, Some(one)) => vec![one],
        _ => {
            return Err(bad(
                "missing_service",
                "service_type (or services) is required",
            ));
        }
    };
    let mut kinds = names
        .into_iter()
        .map(parse_guard)
        .collect::<Result<Vec<_>>>()?;
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// Check everything about the request that does not need a guard.
fn validate(body: &ProcessRequest) -> Result<(Vec<GuardKind>, Duration, String)> {
    let payload = body
        .payload
        .as_object()
        .ok_or_else(|| bad("invalid_payload", "payload must be a JSON object"))?;
    if payload.is_empty() {
        return Err(bad("invalid_payload", "payload must not be empty"));
    }
    if depth(&body.payload) > MAX_DEPTH {
        return Err(bad(
            "payload_too_deep",
            format!("payload nests deeper than {MAX_DEPTH} levels"),
        ));
    }
    let timeout = match body.timeout {
        None => DEFAULT_TIMEOUT_SECS,
        Some(t) if t.is_finite() && t > 0.0 => t.min(MAX_TIMEOUT_SECS),
        Some(_) => {
            return Err(bad(
                "invalid_timeout",
                "timeout must be a positive number of seconds",
            ));
        }
    };
    let client_type = body.client_type.clone().unwrap_or_else(|| "api".into());
    if !CLIENT_TYPES.contains(&client_type.as_str()) {
        return Err(bad(
            "invalid_client_type",
            format!("client_type must be one of {}", CLIENT_TYPES.join(", ")),
        ));
    }
    Ok((
        requested(body)?,
        Duration::from_secs_f64(timeout),
        client_type,
    ))
}

/// A failed call as the API reports it.
/// What the caller is told about a failed guard call: which guard and what kind of failure, never
/// where the guard lives or what the transport said (that goes to the log, under the request id
/// the answer carries).
fn public_message(kind: GuardKind, err: &CallFailure) -> String {
    let guard = kind.name();
    match err {
        CallFailure::CircuitOpen(_) => {
            format!("{guard} is unavailable (failing repeatedly); retry later")
        }
        CallFailure::Guard(GuardError::Timeout { .. }) => {
            format!("{guard} did not answer in time; retry later")
        }
        CallFailure::Guard(GuardError::Unreachable { .. }) => {
            format!("{guard} is unavailable; retry later")
        }
        CallFailure::Guard(GuardError::Status { status, .. }) if *status < 500 => {
            format!("{guard} refused the request")
        }
        CallFailure::Guard(_) => format!("{guard} failed; retry later"),
    }
}

fn failure(kind: GuardKind, err: &CallFailure) -> GatewayError {
    tracing::warn!(guard = kind.name(), error = %err, "guard call failed");
    let (status, code) = match err {
        CallFailure::CircuitOpen(_) => (StatusCode::SERVICE_UNAVAILABLE, "guard_unavailable"),
        CallFailure::Guard(GuardError::Timeout { .. }) => {
            (StatusCode::GATEWAY_TIMEOUT, "guard_timeout")
        }
        CallFailure::Guard(GuardError::Unreachable { .. }) => {
            (StatusCode::SERVICE_UNAVAILABLE, "guard_unavailable")
        }
        CallFailure::Guard(GuardError::Status { status, .. }) if *status < 500 => (
            StatusCode::from_u16(*status).unwrap_or(StatusCode::BAD_REQUEST),
            "guard_rejected",
        ),
        CallFailure::Guard(_) => (StatusCode::BAD_GATEWAY, "guard_failed"),
    };
    let mut details = json!({"service": kind.name()});
    if let CallFailure::Guard(GuardError::Status { body, .. }) = err {
        details["guard_error"] = body["error"].clone();
    }
    if matches!(err, CallFailure::CircuitOpen(_)) {
        details["circuit"] = json!("open");
    }
    GatewayError::Upstream {
        status,
        code,
        message: public_message(kind, err),
        details,
    }
}

fn lift_list(data: &Value, keys: &[&str]) -> Vec<Value> {
    for key in keys {
        match &data[*key] {
            Value::Array(a) => return a.clone(),
            Value::Null => {}
            other => return vec![other.clone()],
        }
    }
    Vec::new()
}

/// What one guard call adds to usage: its latency, whether it failed, and the tokens and cost
/// TokenGuard reported.
fn guard_sample(data: Option<&Value>, seconds: f64) -> Sample {
    let tokens = data.and_then(|d| d["token_count"].as_i64()).unwrap_or(0);
    let cost = data
        .and_then(|d| d["cost"]["usd"].as_f64())
        .map_or(0, |usd| (usd * 1e6).round() as i64);
    Sample {
        error: data.is_none(),
        tokens_input: tokens,
        tokens_output: 0,
        cost_usd_micros: cost,
        latency_ms: (seconds * 1000.0).round() as i64,
    }
}

/// Seconds until the next calendar month (UTC), when a quota renews.
fn seconds_to_next_month() -> u64 {
    use chrono::{Datelike, TimeZone, Utc};
    let now = Utc::now();
    let (y, m) = if now.month() == 12 {
        (now.year() + 1, 1)
    } else {
        (now.year(), now.month() + 1)
    };
    Utc.with_ymd_and_hms(y, m, 1, 0, 0, 0)
        .single()
        .map_or(3600, |next| {
            u64::try_from((next - now).num_seconds())
                .unwrap_or(1)
                .max(1)
        })
}

/// The running experiments' say on this request: only for a request naming a user (1 to 256
/// printable characters) of an organisation whose tier includes A/B testing. Reading the
/// experiments failing is logged and the request routed as if there were none.
async fn experiment_routing(
    state: &AppState,
    caller: &Caller,
    profile: &OrgProfile,
    body: &ProcessRequest,
    client_type: &str,
) -> Routing {
    let Some(user) = body.user_id.as_deref() else {
        return Routing::default();
    };
    if !valid_user_id(user) || !profile.has_feature(crate::routes::ab_testing::FEATURE) {
        return Routing::default();
    }
    let running = match state.experiments.running(caller.organization_id).await {
        Ok(running) if running.is_empty() => return Routing::default(),
        Ok(running) => running,
        Err(e) => {
            tracing::warn!(error = %e, "reading running experiments failed; routing without them");
            return Routing::default();
        }
    };
    Routing::for_user(&running, user, client_type)
}

/// The request for `kind`, with the variant's options for that guard set.
fn guard_request(routing: &Routing, kind: GuardKind, payload: Map<String, Value>) -> Value {
    let mut request = mapping::request(kind, payload);
    routing.apply_options(kind, &mut request);
    request
}

/// The organisation's verdict thresholds, or the variant's.
fn routing_thresholds(routing: &Routing, settings: &Value) -> Thresholds {
    let mut t = Thresholds::from_settings(settings);
    if let Some(block) = routing.thresholds.block {
        t.block = block;
    }
    if let Some(flag) = routing.thresholds.flag {
        t.flag = flag;
    }
    t.flag = t.flag.min(t.block);
    t
}

/// `metadata` with the experiments the request was routed by, when there were any.
fn with_experiments(mut metadata: Value, routing: &Routing) -> Value {
    if let (Value::Object(m), Some(experiments)) = (&mut metadata, routing.describe()) {
        m.insert("experiments".into(), experiments);
    }
    metadata
}

pub async fn process(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Json<ProcessRequest>,
) -> Result<HttpResponse> {
    let started = Instant::now();
    // Processing spends the organisation's quota and budget and writes memory and audit rows:
    // viewers read, they do not process.
    caller.require(Role::Member)?;
    let mut body = body.into_inner();
    let (mut kinds, deadline, client_type) = validate(&body)?;
    if body.payload.get("policy_ids").is_some() && !caller.role.at_least(Role::Admin) {
        // Naming BiasGuard policies narrows what is enforced: only those who manage the
        // policies may (checked whatever the guards named: experiments can reroute the call).
        return Err(GatewayError::Forbidden(
            "only admins may choose which BiasGuard policies apply (payload.policy_ids)",
        ));
    }
    // Looked up by the `Caller` extractor for the rate limit.
    let cached = req.extensions().get::<Arc<OrgProfile>>().cloned();
    let profile = match cached {
        Some(profile) => profile,
        None => state.org_profiles.get(caller.organization_id).await?,
    };
    let multi =
        kinds.len() > 1 || body.service_type.as_deref() == Some("all") || body.services.is_some();
    let routing = experiment_routing(&state, &caller, &profile, &body, &client_type).await;
    if multi && let Some(services) = &routing.services {
        kinds.clone_from(services);
    }
    let refused: Vec<&str> = kinds
        .iter()
        .map(|k| k.name())
        .filter(|g| !profile.allows(g))
        .collect();
    if !refused.is_empty() {
        return Err(GatewayError::ForbiddenWith {
            code: "guard_not_in_plan",
            message: format!(
                "your plan ({}) does not include {}",
                profile.tier.as_deref().unwrap_or("none"),
                refused.join(", ")
            ),
            details: json!({"guards": refused, "allowed": profile.guards_allowed}),
        });
    }
    if profile.requests_per_month > 0 {
        let used = state.usage.month_requests(caller.organization_id).await;
        if used >= i64::try_from(profile.requests_per_month).unwrap_or(i64::MAX) {
            return Err(GatewayError::QuotaExceeded {
                quota: profile.requests_per_month,
                used,
                retry_after_secs: seconds_to_next_month(),
            });
        }
    }
    // A file named by `payload.file_id` is read only for a call the plan and quota allow.
    crate::routes::files::scan::expand_file_id(&state, caller.organization_id, &mut body.payload)
        .await?;
    // The first guard's reservation was made with the rate-limit check (see `Caller`).
    let pre = req.extensions_mut().remove::<PreReserved>();
    let reservation = state
        .budgets
        .reserve(
            caller.organization_id,
            kinds.len(),
            profile.monthly_budget_usd_micros,
            pre,
        )
        .await?;
    state.usage.count_quota(caller.organization_id);
    // Counted as taking part only once the request is going to the guards.
    if let Some(user) = body.user_id.as_deref() {
        for (live, variant) in &routing.variants {
            state
                .experiments
                .note_exposure(caller.organization_id, live.id, user, variant);
        }
    }
    // Validated as an object; moved, not copied (it may be megabytes).
    let payload = match std::mem::take(&mut body.payload) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    let ctx = CallContext {
        request_id: current_request_id(),
        organization_id: Some(caller.organization_id.to_string()),
        trace_headers: outgoing_trace_headers(),
        deadline,
    };

    if !multi {
        let kind = kinds[0];
        let t = Instant::now();
        let outcome = state
            .guards
            .call(kind, &guard_request(&routing, kind, payload), &ctx)
            .await;
        let sample = guard_sample(outcome.as_ref().ok(), t.elapsed().as_secs_f64());
        state.usage.record(
            caller.organization_id,
            GUARD_CALL_ENDPOINT,
            kind.name(),
            &sample,
        );
        state
            .budgets
            .settle(reservation, sample.cost_usd_micros)
            .await;
        let data = outcome.map_err(|e| failure(kind, &e))?;
        return Ok(HttpResponse::Ok().json(ProcessResponse {
            request_id: ctx.request_id,
            service_type: kind.name().into(),
            success: true,
            confidence_score: data["confidence_score"]
                .as_f64()
                .or_else(|| data["confidence"].as_f64()),
            warnings: lift_list(&data, &["warnings"]),
            recommendations: lift_list(&data, &["recommendations", "recommendation"]),
            metadata: with_experiments(
                data.get("metadata").cloned().unwrap_or_else(|| json!({})),
                &routing,
            ),
            data,
            error: None,
            processing_time: started.elapsed().as_secs_f64(),
            service_used: kind.name().into(),
            fallback_used: false,
            client_type,
        }));
    }

    let calls = kinds.iter().map(|&kind| {
        let body = guard_request(&routing, kind, payload.clone());
        let (state, ctx) = (&state, &ctx);
        async move {
            let t = Instant::now();
            (
                kind,
                state.guards.call(kind, &body, ctx).await,
                t.elapsed().as_secs_f64(),
            )
        }
    });
    let outcomes = futures::future::join_all(calls).await;
    let thresholds = routing_thresholds(&routing, &profile.settings);
    let mut results = Map::new();
    let mut failed = Vec::new();
    let mut warnings = Vec::new();
    let mut highest = 0.0_f64;
    let mut first_failure = None;
    let mut cost = 0;
    for (kind, outcome, took) in &outcomes {
        let sample = guard_sample(outcome.as_ref().ok(), *took);
        cost += sample.cost_usd_micros;
        state.usage.record(
            caller.organization_id,
            GUARD_CALL_ENDPOINT,
            kind.name(),
            &sample,
        );
    }
    state.budgets.settle(reservation, cost).await;
    for (kind, outcome, took) in outcomes {
        match outcome {
            Ok(data) => {
                let r = risk(kind, &data);
                highest = highest.max(r);
                results.insert(kind.name().into(), json!({"success": true, "risk": r, "data": data, "error": null, "processing_time": took}));
            }
            Err(e) => {
                let failed_call = failure(kind, &e);
                let message = public_message(kind, &e);
                warnings.push(json!(message));
                results.insert(kind.name().into(), json!({"success": false, "risk": null, "data": null, "error": message, "processing_time": took}));
                failed.push(kind.name());
                first_failure.get_or_insert(failed_call);
            }
        }
    }
    if let Some(err) = first_failure
        && (!body.fallback_enabled || failed.len() == kinds.len())
    {
        return Err(err);
    }
    let verdict: Verdict = thresholds.verdict(highest);
    Ok(HttpResponse::Ok().json(ProcessResponse {
        request_id: ctx.request_id,
        service_type: body
            .service_type
            .clone()
            .unwrap_or_else(|| "multiple".into()),
        success: failed.is_empty(),
        data: json!({
            "verdict": verdict,
            "risk": highest,
            "thresholds": {"flag": thresholds.flag, "block": thresholds.block},
            "results": results,
            "services_failed": failed,
        }),
        error: None,
        processing_time: started.elapsed().as_secs_f64(),
        service_used: kinds.iter().map(|k| k.name()).collect::<Vec<_>>().join(","),
        fallback_used: !failed.is_empty(),
        client_type,
        confidence_score: None,
        warnings,
        recommendations: Vec::new(),
        metadata: with_experiments(json!({"services": kinds.len()}), &routing),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(v: Value) -> ProcessRequest {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn validation_rules() {
        let ok = validate(&req(
            json!({"service_type": "biasguard", "payload": {"text": "x"}, "timeout": 900}),
        ))
        .unwrap();
        assert_eq!(
            (ok.0, ok.1),
            (vec![GuardKind::BiasGuard], Duration::from_secs(300))
        );
        let all = validate(&req(
            json!({"service_type": "all", "payload": {"text": "x"}}),
        ))
        .unwrap();
        assert_eq!(all.0.len(), 5);
        let some = validate(&req(
            json!({"services": ["trustguard", "tokenguard", "trustguard"], "payload": {"t": 1}}),
        ))
        .unwrap();
        assert_eq!(some.0, vec![GuardKind::TokenGuard, GuardKind::TrustGuard]);

        let mut deep = json!(1);
        for _ in 0..10 {
            deep = json!({"d": deep});
        }
        assert!(
            validate(&req(
                json!({"service_type": "biasguard", "payload": deep.clone()})
            ))
            .is_ok()
        );
        let too_deep = json!({"d": deep});
        for body in [
            json!({"service_type": "biasguard", "payload": {}}),
            json!({"service_type": "biasguard", "payload": "text"}),
            json!({"service_type": "nope", "payload": {"text": "x"}}),
            json!({"payload": {"text": "x"}}),
            json!({"service_type": "biasguard", "payload": {"text": "x"}, "timeout": -1}),
            json!({"service_type": "biasguard", "payload": {"text": "x"}, "client_type": "fax"}),
            json!({"service_type": "biasguard", "payload": too_deep}),
        ] {
            assert!(validate(&req(body.clone())).is_err(), "{body} accepted");
        }
    }
}
