//! What client applications send per end user: `POST /assign-user` (which variant is this user
//! in), `GET /users/{id}/variants` (every variant the user is in) and `POST /results` (what a
//! variant achieved for a user or session).

use actix_web::{HttpResponse, web};
use cg_storage::models::{Assignment, Experiment, ExperimentResult, Recorded, Role};
use cg_storage::sql_types::{Id, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::experiments::find;
use super::require_feature;
use crate::auth::Caller;
use crate::error::{GatewayError, Result};
use crate::experiments::design::{CLIENT_TYPES, MetricKind};
use crate::experiments::{Live, MAX_USER_ID_CHARS, assign, valid_user_id};
use crate::state::AppState;

const MAX_SESSION_ID_CHARS: usize = 256;
/// The largest metric value taken: running sums of squares must stay finite and meaningful.
const MAX_METRIC_MAGNITUDE: f64 = 1e12;
/// Results are taken while an experiment runs or is paused.
const ACCEPTING: &[&str] = &["running", "paused"];

fn check_user_id(user_id: &str) -> Result<()> {
    if !valid_user_id(user_id) {
        return Err(GatewayError::Invalid(format!(
            "user_id must be 1 to {MAX_USER_ID_CHARS} printable characters"
        )));
    }
    Ok(())
}

/// `POST /api/v1/ab-testing/assign-user`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AssignUser {
    /// The end user's id in the client application.
    pub user_id: String,
    #[schema(value_type = String, format = Uuid)]
    pub experiment_id: Id,
    /// When the audience names client types: the client asking (default: any).
    #[serde(default)]
    pub client_type: Option<String>,
}

/// The user's variant in a running experiment, the same on every replica and every call
/// (member). Outside the audience: `variant: null`.
#[tracing::instrument(skip_all, fields(org.id = %caller.organization_id))]
pub async fn assign_user(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<AssignUser>,
) -> Result<HttpResponse> {
    caller.require(Role::Member)?;
    require_feature(&state, &caller).await?;
    let body = body.into_inner();
    check_user_id(&body.user_id)?;
    if let Some(client) = &body.client_type
        && !CLIENT_TYPES.contains(&client.as_str())
    {
        return Err(GatewayError::Invalid(format!(
            "client_type must be one of {}",
            CLIENT_TYPES.join(", ")
        )));
    }
    let org = caller.organization_id;
    let experiment = find(&state, org, body.experiment_id).await?;
    if experiment.status != "running" {
        return Err(GatewayError::Conflict(format!(
            "the experiment is {}; users are assigned only while it runs",
            experiment.status
        )));
    }
    let live = Live::from_row(&experiment)?;
    let variant = state
        .experiments
        .assignment(org, &live, &body.user_id, body.client_type.as_deref())
        .await?;
    let overrides = variant
        .as_deref()
        .and_then(|v| live.design.variant(v))
        .map(|v| v.overrides.clone());
    Ok(HttpResponse::Ok().json(json!({
        "experiment_id": live.id,
        "experiment": live.name,
        "user_id": body.user_id,
        "variant": variant,
        "in_experiment": variant.is_some(),
        "overrides": overrides,
    })))
}

/// `GET /api/v1/ab-testing/users/{user_id}/variants`: the user's recorded assignments in the
/// organisation's experiments, with each experiment's name and status.
pub async fn user_variants(
    state: web::Data<AppState>,
    caller: Caller,
    user_id: web::Path<String>,
) -> Result<HttpResponse> {
    require_feature(&state, &caller).await?;
    let user_id = user_id.into_inner();
    check_user_id(&user_id)?;
    let org = caller.organization_id;
    let mut pooled = state.db.get().await?;
    let conn = &mut pooled.conn();
    let assignments = Assignment::for_user(conn, org, &user_id).await?;
    let ids: Vec<Id> = assignments.iter().map(|a| a.experiment_id).collect();
    let experiments: std::collections::HashMap<Id, Experiment> =
        Experiment::find_many(conn, org, &ids)
            .await?
            .into_iter()
            .map(|e| (e.id, e))
            .collect();
    let variants: Vec<Value> = assignments
        .iter()
        .filter_map(|a| {
            let e = experiments.get(&a.experiment_id)?;
            Some(json!({
                "experiment_id": e.id,
                "experiment": e.name,
                "status": e.status,
                "variant": a.variant_name,
                "assigned_at": a.assigned_at,
            }))
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({"user_id": user_id, "variants": variants})))
}

/// `POST /api/v1/ab-testing/results`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordResult {
    #[schema(value_type = String, format = Uuid)]
    pub experiment_id: Id,
    pub variant_name: String,
    #[serde(default)]
    pub session_id: Option<String>,
    /// When given, must be in `variant_name`.
    #[serde(default)]
    pub user_id: Option<String>,
    /// Metric name → number (a `conversion` metric takes 0, 1, false or true). Only the
    /// experiment's metrics.
    #[schema(value_type = Object)]
    pub metrics: Map<String, Value>,
    /// The client's id for this result: sending it again (a retry) records it once.
    #[serde(default)]
    #[schema(value_type = Option<String>, format = Uuid)]
    pub result_id: Option<Id>,
}

/// Record a result of a running or paused experiment (member). 201 when recorded, 200 with
/// `duplicate: true` when a result with this `result_id` already was.
#[tracing::instrument(skip_all, fields(org.id = %caller.organization_id))]
pub async fn record(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<RecordResult>,
) -> Result<HttpResponse> {
    caller.require(Role::Member)?;
    require_feature(&state, &caller).await?;
    let body = body.into_inner();
    if let Some(user) = &body.user_id {
        check_user_id(user)?;
    }
    if let Some(session) = &body.session_id
        && (session.chars().count() > MAX_SESSION_ID_CHARS || session.chars().any(char::is_control))
    {
        return Err(GatewayError::Invalid(format!(
            "session_id must be at most {MAX_SESSION_ID_CHARS} printable characters"
        )));
    }
    let org = caller.organization_id;
    let experiment = find(&state, org, body.experiment_id).await?;
    if !ACCEPTING.contains(&experiment.status.as_str()) {
        return Err(not_accepting(&experiment.status));
    }
    let live = Live::from_row(&experiment)?;
    let design = &live.design;
    if design.variant(&body.variant_name).is_none() {
        return Err(GatewayError::Invalid(format!(
            "variant_name must be one of {}",
            design
                .variants
                .iter()
                .map(|v| v.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    if let Some(user) = &body.user_id {
        let theirs = assign(live.id, design, user, None).map(|v| v.name.as_str());
        if theirs != Some(body.variant_name.as_str()) {
            return Err(GatewayError::Invalid(format!(
                "user {user} is in {}, not in {}",
                theirs.map_or_else(|| "no variant".to_owned(), |v| format!("variant {v}")),
                body.variant_name
            )));
        }
    }
    if body.metrics.is_empty() {
        return Err(GatewayError::Invalid(
            "metrics must name at least one of the experiment's metrics".into(),
        ));
    }
    let mut values = Vec::with_capacity(body.metrics.len());
    for (name, raw) in &body.metrics {
        let Some(metric) = design.metric(name) else {
            return Err(GatewayError::Invalid(format!(
                "`{name}` is not a metric of this experiment ({})",
                design
                    .metrics()
                    .map(|m| m.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let value = match raw {
            Value::Bool(b) => f64::from(u8::from(*b)),
            Value::Number(n) => n
                .as_f64()
                .filter(|v| v.abs() <= MAX_METRIC_MAGNITUDE)
                .ok_or_else(|| {
                    GatewayError::Invalid(format!(
                        "metric `{name}` must be a number between -{MAX_METRIC_MAGNITUDE:e} and {MAX_METRIC_MAGNITUDE:e}"
                    ))
                })?,
            _ => {
                return Err(GatewayError::Invalid(format!(
                    "metric `{name}` must be a number or a boolean"
                )));
            }
        };
        if metric.kind == MetricKind::Conversion && value != 0.0 && value != 1.0 {
            return Err(GatewayError::Invalid(format!(
                "metric `{name}` is a conversion: 0, 1, false or true"
            )));
        }
        values.push((name.clone(), value));
    }
    #[expect(
        clippy::unwrap_or_default,
        reason = "Id::default() is the nil id; a result without one needs a fresh id"
    )]
    let id = body.result_id.unwrap_or_else(Id::new);
    let result = ExperimentResult {
        id,
        experiment_id: live.id,
        organization_id: org,
        variant_name: body.variant_name,
        user_id: body.user_id,
        session_id: body.session_id,
        metrics: Value::Object(body.metrics),
        recorded_at: Timestamp::now(),
    };
    let mut pooled = state.db.get().await?;
    let outcome = result
        .record(&mut pooled.conn(), &values, ACCEPTING)
        .await?;
    let answer = |duplicate: bool| json!({"result_id": result.id, "experiment_id": live.id, "variant_name": result.variant_name, "duplicate": duplicate});
    match outcome {
        Recorded::New => Ok(HttpResponse::Created().json(answer(false))),
        Recorded::Duplicate => Ok(HttpResponse::Ok().json(answer(true))),
        Recorded::IdTaken => Err(GatewayError::Conflict(
            "this result_id already holds a different result of the experiment".into(),
        )),
        // Stopped (or deleted) since it was read.
        Recorded::NotAccepting => Err(not_accepting("no longer running")),
    }
}

fn not_accepting(status: &str) -> GatewayError {
    GatewayError::Conflict(format!(
        "the experiment is {status}; results are recorded only while it runs or is paused"
    ))
}
