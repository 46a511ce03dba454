//! `/api/v1/ab-testing/experiments`: create, list, read, change, delete, start and stop.
//!
//! Life cycle: `draft` → (start) `running` ⇄ (stop `paused` / start) `paused` → (stop)
//! `completed` or `cancelled`. Only a draft's variants and audience may change (so a user's
//! variant never moves once users are assigned); name, description, metrics and confidence level
//! may change until the experiment ends. A running experiment cannot be deleted.

use actix_web::{HttpResponse, web};
use cg_storage::Conn;
use cg_storage::models::experiments::STATUSES;
use cg_storage::models::{Experiment, ExperimentChanges, Role};
use cg_storage::sql_types::{Id, Timestamp};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::{check_plan, require_feature};
use crate::auth::Caller;
use crate::error::{GatewayError, Result};
use crate::experiments::design::{
    Audience, MetricSpec, Variant, check_audience, check_confidence, check_metrics, check_variants,
};
use crate::experiments::split::{TrafficSplit, variants_of};
use crate::state::AppState;

const MAX_NAME_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 2000;
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;
const DEFAULT_CONFIDENCE: f64 = 0.95;

/// An experiment as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ExperimentView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Id,
    pub name: String,
    pub description: String,
    /// draft, running, paused, completed or cancelled.
    pub status: String,
    /// The first is the control.
    #[schema(value_type = Vec<Object>)]
    pub variants: Value,
    #[schema(value_type = Object)]
    pub primary_metric: Value,
    #[schema(value_type = Vec<Object>)]
    pub secondary_metrics: Value,
    #[schema(value_type = Object)]
    pub audience: Value,
    pub confidence_level: f64,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub created_by: Option<Id>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
    #[schema(value_type = Option<String>)]
    pub started_at: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub ended_at: Option<Timestamp>,
}

impl From<&Experiment> for ExperimentView {
    fn from(e: &Experiment) -> Self {
        Self {
            id: e.id,
            name: e.name.clone(),
            description: e.description.clone(),
            status: e.status.clone(),
            variants: e.variants.clone(),
            primary_metric: e.primary_metric.clone(),
            secondary_metrics: e.secondary_metrics.clone(),
            audience: e.audience.clone(),
            confidence_level: e.confidence_level,
            created_by: e.created_by,
            created_at: e.created_at,
            updated_at: e.updated_at,
            started_at: e.started_at,
            ended_at: e.ended_at,
        }
    }
}

fn parse_name(raw: &str) -> Result<String> {
    crate::routes::fields::name(raw, MAX_NAME_CHARS)
}

fn parse_description(raw: &str) -> Result<String> {
    crate::routes::fields::description(raw, MAX_DESCRIPTION_CHARS)
}

fn to_json<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| GatewayError::Internal(e.into()))
}

/// The names of an organisation's experiments are unique.
fn name_taken(e: cg_storage::Error) -> GatewayError {
    match e {
        cg_storage::Error::Conflict(_) => GatewayError::Conflict(
            "the organisation already has an experiment with this name".into(),
        ),
        other => other.into(),
    }
}

/// `?status=&limit=&offset=`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub offset: Option<i64>,
}

/// `GET /api/v1/ab-testing/experiments`: newest first, a page at a time.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    require_feature(&state, &caller).await?;
    if let Some(status) = &query.status
        && !STATUSES.contains(&status.as_str())
    {
        return Err(crate::routes::query::invalid_query(
            format!("status must be one of {}", STATUSES.join(", ")),
            json!({"parameter": "status"}),
        ));
    }
    let (limit, offset) =
        crate::routes::query::page(query.limit, query.offset, DEFAULT_LIMIT, MAX_LIMIT);
    let mut pooled = state.db.get().await?;
    let (rows, total) = Experiment::list(
        &mut pooled.conn(),
        caller.organization_id,
        query.status.as_deref(),
        limit,
        offset,
    )
    .await?;
    Ok(HttpResponse::Ok().json(json!({
        "experiments": rows.iter().map(ExperimentView::from).collect::<Vec<_>>(),
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}

/// `POST /api/v1/ab-testing/experiments`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateExperiment {
    /// Unique within the organisation.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// 2 to 10; the first is the control. `traffic_split` fractions add up to 1 (or
    /// percentages to 100); `overrides` may set `services`, `thresholds` and `guard_options`.
    /// Required unless the `traffic_split` shorthand is given instead.
    #[serde(default)]
    pub variants: Option<Vec<Variant>>,
    /// Shorthand for `variants`: `{"control": 50, "treatment": 50}`, one variant per key (a key
    /// named `control` is the control; otherwise the first).
    #[serde(default)]
    pub traffic_split: Option<TrafficSplit>,
    /// A name (a mean) or `{name, type: conversion|mean}`.
    pub primary_metric: MetricSpec,
    #[serde(default)]
    pub secondary_metrics: Vec<MetricSpec>,
    /// `{percentage (default 100), client_types (default all)}`.
    #[serde(default)]
    pub audience: Option<Audience>,
    /// Of the intervals and the significance threshold (default 0.95).
    #[serde(default)]
    pub confidence_level: Option<f64>,
}

/// Create an experiment, as a draft (admin).
#[tracing::instrument(skip_all, fields(org.id = %caller.organization_id))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateExperiment>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    let profile = require_feature(&state, &caller).await?;
    let body = body.into_inner();
    let name = parse_name(&body.name)?;
    let description = parse_description(body.description.as_deref().unwrap_or_default())?;
    let variants = variants_of(body.variants, body.traffic_split)?
        .ok_or_else(|| GatewayError::Invalid("variants (or traffic_split) is required".into()))?;
    let variants = check_variants(variants)?;
    check_plan(&profile, &variants)?;
    let (primary, secondary) = check_metrics(body.primary_metric, body.secondary_metrics)?;
    let audience = check_audience(body.audience.unwrap_or_default())?;
    let confidence_level = check_confidence(body.confidence_level.unwrap_or(DEFAULT_CONFIDENCE))?;
    let now = Timestamp::now();
    let experiment = Experiment {
        id: Id::new(),
        organization_id: caller.organization_id,
        name,
        description,
        status: "draft".into(),
        variants: to_json(&variants)?,
        primary_metric: to_json(&primary)?,
        secondary_metrics: to_json(&secondary)?,
        audience: to_json(&audience)?,
        confidence_level,
        created_by: caller.user_id,
        created_at: now,
        updated_at: now,
        started_at: None,
        ended_at: None,
    };
    let mut pooled = state.db.get().await?;
    experiment
        .insert(&mut pooled.conn())
        .await
        .map_err(name_taken)?;
    tracing::info!(experiment.id = %experiment.id, "experiment created");
    Ok(HttpResponse::Created().json(ExperimentView::from(&experiment)))
}

/// One experiment of the caller's organisation, or 404.
pub(super) async fn find(state: &AppState, org: Id, id: Id) -> Result<Experiment> {
    let mut pooled = state.db.get().await?;
    Experiment::find(&mut pooled.conn(), org, id)
        .await?
        .ok_or(GatewayError::NotFound("experiment"))
}

/// `GET /api/v1/ab-testing/experiments/{id}`.
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    require_feature(&state, &caller).await?;
    let experiment = find(&state, caller.organization_id, id.into_inner()).await?;
    Ok(HttpResponse::Ok().json(ExperimentView::from(&experiment)))
}

/// `PUT` or `PATCH /api/v1/ab-testing/experiments/{id}`: any subset of the fields.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateExperiment {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// Drafts only.
    #[serde(default)]
    pub variants: Option<Vec<Variant>>,
    /// Drafts only: the shorthand for `variants` (see creation).
    #[serde(default)]
    pub traffic_split: Option<TrafficSplit>,
    #[serde(default)]
    pub primary_metric: Option<MetricSpec>,
    #[serde(default)]
    pub secondary_metrics: Option<Vec<MetricSpec>>,
    /// Drafts only.
    #[serde(default)]
    pub audience: Option<Audience>,
    #[serde(default)]
    pub confidence_level: Option<f64>,
}

/// Change an experiment (admin). Read, checked and written against the status it was read
/// with, so a concurrent start cannot let a variant change slip into a running experiment.
#[tracing::instrument(skip_all, fields(org.id = %caller.organization_id))]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: web::Json<UpdateExperiment>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    let profile = require_feature(&state, &caller).await?;
    let (org, id) = (caller.organization_id, id.into_inner());
    let body = body.into_inner();
    let name = body.name.as_deref().map(parse_name).transpose()?;
    let description = body
        .description
        .as_deref()
        .map(parse_description)
        .transpose()?;
    let variants = variants_of(body.variants, body.traffic_split)?
        .map(check_variants)
        .transpose()?;
    if let Some(variants) = &variants {
        check_plan(&profile, variants)?;
    }
    let audience = body.audience.map(check_audience).transpose()?;
    let confidence_level = body.confidence_level.map(check_confidence).transpose()?;
    let mut pooled = state.db.get().await?;
    let experiment = pooled
        .conn()
        .transaction(async |tx: &mut Conn<'_>| {
            let current = Experiment::find(tx, org, id)
                .await?
                .ok_or(GatewayError::NotFound("experiment"))?;
            if matches!(current.status.as_str(), "completed" | "cancelled") {
                return Err(GatewayError::Conflict(format!(
                    "the experiment is {}; it can no longer change",
                    current.status
                )));
            }
            if current.status != "draft" && (variants.is_some() || audience.is_some()) {
                return Err(GatewayError::Conflict(
                    "variants and audience can change only while the experiment is a draft (users are assigned by them)".into(),
                ));
            }
            let (primary, secondary) = match (body.primary_metric, body.secondary_metrics) {
                (None, None) => (None, None),
                (primary, secondary) => {
                    let design = crate::experiments::Live::from_row(&current)?.design;
                    let primary =
                        primary.unwrap_or_else(|| MetricSpec::Full(design.primary_metric.clone()));
                    let secondary = secondary.unwrap_or_else(|| {
                        design
                            .secondary_metrics
                            .iter()
                            .cloned()
                            .map(MetricSpec::Full)
                            .collect()
                    });
                    let (p, s) = check_metrics(primary, secondary)?;
                    // Results are totalled by metric name: once the experiment has started, the
                    // metrics it counts stay as they are (more may be added).
                    if current.status != "draft"
                        && (p != design.primary_metric
                            || design.secondary_metrics.iter().any(|m| !s.contains(m)))
                    {
                        return Err(GatewayError::Conflict(
                            "once started, an experiment's metrics keep their names and types; secondary metrics may only be added".into(),
                        ));
                    }
                    (Some(to_json(&p)?), Some(to_json(&s)?))
                }
            };
            let changes = ExperimentChanges {
                name,
                description,
                variants: variants.as_ref().map(to_json).transpose()?,
                primary_metric: primary,
                secondary_metrics: secondary,
                audience: audience.as_ref().map(to_json).transpose()?,
                confidence_level,
                updated_at: Some(Timestamp::now()),
                ..Default::default()
            };
            Experiment::update_if_status(tx, org, id, &current.status, &changes)
                .await
                .map_err(name_taken)?
                .ok_or_else(|| GatewayError::Conflict("the experiment changed meanwhile; retry".into()))
        })
        .await?;
    if experiment.status == "running" {
        state.experiments.changed(org).await;
    }
    tracing::info!(experiment.id = %id, "experiment changed");
    Ok(HttpResponse::Ok().json(ExperimentView::from(&experiment)))
}

/// `DELETE /api/v1/ab-testing/experiments/{id}` (admin): with its assignments and results. A
/// running experiment must be stopped first (409).
#[tracing::instrument(skip_all, fields(org.id = %caller.organization_id))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    require_feature(&state, &caller).await?;
    let (org, id) = (caller.organization_id, id.into_inner());
    let current = find(&state, org, id).await?;
    if current.status == "running" {
        return Err(GatewayError::Conflict(
            "a running experiment cannot be deleted; stop it first".into(),
        ));
    }
    let mut pooled = state.db.get().await?;
    if !Experiment::delete_if_status(&mut pooled.conn(), org, id, &current.status).await? {
        return Err(GatewayError::Conflict(
            "the experiment changed meanwhile; retry".into(),
        ));
    }
    tracing::info!(experiment.id = %id, "experiment deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// Move an experiment from one of `from` to `to`, stamping start or end.
async fn transition(
    state: &AppState,
    org: Id,
    id: Id,
    from: &[&str],
    to: &str,
) -> Result<Experiment> {
    let current = find(state, org, id).await?;
    if !from.contains(&current.status.as_str()) {
        return Err(GatewayError::Conflict(format!(
            "a {} experiment cannot become {to} (only from {})",
            current.status,
            from.join(" or ")
        )));
    }
    let now = Timestamp::now();
    let changes = ExperimentChanges {
        status: Some(to.to_owned()),
        updated_at: Some(now),
        started_at: (to == "running" && current.started_at.is_none()).then_some(Some(now)),
        ended_at: matches!(to, "completed" | "cancelled").then_some(Some(now)),
        ..Default::default()
    };
    let mut pooled = state.db.get().await?;
    let updated =
        Experiment::update_if_status(&mut pooled.conn(), org, id, &current.status, &changes)
            .await?
            .ok_or_else(|| {
                GatewayError::Conflict("the experiment changed meanwhile; retry".into())
            })?;
    state.experiments.changed(org).await;
    tracing::info!(experiment.id = %id, from = %current.status, to, "experiment status changed");
    Ok(updated)
}

/// `POST /api/v1/ab-testing/experiments/{id}/start` (admin): a draft or paused experiment starts
/// routing its users' requests by their variant.
#[tracing::instrument(skip_all, fields(org.id = %caller.organization_id))]
pub async fn start(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    let profile = require_feature(&state, &caller).await?;
    let id = id.into_inner();
    // The plan may have changed since the experiment was defined.
    let current = find(&state, caller.organization_id, id).await?;
    check_plan(
        &profile,
        &crate::experiments::Live::from_row(&current)?
            .design
            .variants,
    )?;
    let e = transition(
        &state,
        caller.organization_id,
        id,
        &["draft", "paused"],
        "running",
    )
    .await?;
    Ok(HttpResponse::Ok().json(ExperimentView::from(&e)))
}

/// `POST /api/v1/ab-testing/experiments/{id}/stop` body (optional).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stop {
    /// paused, completed (default) or cancelled.
    #[serde(default)]
    pub status: Option<String>,
}

/// Stop an experiment (admin): `paused` (it can start again), `completed` or `cancelled`.
#[tracing::instrument(skip_all, fields(org.id = %caller.organization_id))]
pub async fn stop(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: web::Bytes,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    require_feature(&state, &caller).await?;
    // The body is optional, but a body that is there must be right.
    let stop: Stop = if body.iter().all(u8::is_ascii_whitespace) {
        Stop::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| GatewayError::BadRequest {
            code: "invalid_json",
            message: format!("the body is not a valid stop request: {e}"),
            details: json!({}),
        })?
    };
    let to = stop.status.unwrap_or_else(|| "completed".into());
    let from: &[&str] = match to.as_str() {
        "paused" => &["running"],
        "completed" => &["running", "paused"],
        "cancelled" => &["draft", "running", "paused"],
        _ => {
            return Err(GatewayError::Invalid(
                "status must be paused, completed or cancelled".into(),
            ));
        }
    };
    let e = transition(&state, caller.organization_id, id.into_inner(), from, &to).await?;
    Ok(HttpResponse::Ok().json(ExperimentView::from(&e)))
}
