//! `/api/v1/biasguard/violations`: the policy violations BiasGuard recorded for the organisation,
//! and their resolution.

use actix_web::{HttpResponse, web};
use cg_storage::models::biasguard::SEVERITIES;
use cg_storage::models::{Resolution, Role, Violation, ViolationFilter};
use cg_storage::sql_types::{Id, Timestamp};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::{GatewayError, Result};
use crate::routes::query::{invalid_query, parse_time};
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 20;
const MAX_LIMIT: i64 = 100;
const MAX_NOTES_CHARS: usize = 2000;

/// A violation as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ViolationView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Id,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    /// The policy that failed; null once that policy is deleted.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub policy_id: Option<Id>,
    /// The BiasGuard audit row of the analysis.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub audit_log_id: Option<Id>,
    pub request_id: Option<String>,
    pub violation_type: String,
    /// low, medium, high or critical.
    pub severity: String,
    pub impact_score: f64,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub requires_remediation: bool,
    pub resolved: bool,
    #[schema(value_type = Option<String>)]
    pub resolved_at: Option<Timestamp>,
    /// The user who resolved it.
    #[schema(value_type = Option<String>, format = Uuid)]
    pub resolved_by: Option<Id>,
    pub resolution_notes: Option<String>,
}

impl From<&Violation> for ViolationView {
    fn from(v: &Violation) -> Self {
        Self {
            id: v.id,
            created_at: v.created_at,
            policy_id: v.policy_id,
            audit_log_id: v.audit_log_id,
            request_id: v.request_id.clone(),
            violation_type: v.violation_type.clone(),
            severity: v.severity.clone(),
            impact_score: v.impact_score,
            details: v.details.clone(),
            requires_remediation: v.requires_remediation,
            resolved: v.resolved,
            resolved_at: v.resolved_at,
            resolved_by: v.resolved_by,
            resolution_notes: v.resolution_notes.clone(),
        }
    }
}

/// `?resolved=&severity=&policy_id=&since=&until=&limit=&offset=`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub resolved: Option<bool>,
    #[serde(default)]
    pub severity: Option<String>,
    #[serde(default)]
    pub policy_id: Option<Id>,
    /// Created at or after (RFC 3339).
    #[serde(default)]
    pub since: Option<String>,
    /// Created before (RFC 3339).
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub offset: Option<i64>,
}

impl ListQuery {
    fn filter(&self) -> Result<ViolationFilter> {
        let severity = match self.severity.as_deref() {
            None => None,
            Some(s) if SEVERITIES.contains(&s) => Some(s.to_owned()),
            Some(s) => {
                return Err(invalid_query(
                    format!("severity {s:?} is not one of: {}", SEVERITIES.join(", ")),
                    serde_json::json!({"parameter": "severity", "allowed": SEVERITIES}),
                ));
            }
        };
        let since = self
            .since
            .as_deref()
            .map(|s| parse_time("since", s).map(Timestamp::from))
            .transpose()?;
        let until = self
            .until
            .as_deref()
            .map(|s| parse_time("until", s).map(Timestamp::from))
            .transpose()?;
        if let (Some(since), Some(until)) = (since, until)
            && since >= until
        {
            return Err(invalid_query(
                "since must be earlier than until".into(),
                serde_json::json!({"parameter": "since"}),
            ));
        }
        Ok(ViolationFilter {
            resolved: self.resolved,
            severity,
            policy_id: self.policy_id,
            since,
            until,
        })
    }
}

/// `GET /api/v1/biasguard/violations`: newest first, a page at a time, with the total matching.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let filter = query.filter()?;
    let (limit, offset) =
        crate::routes::query::page(query.limit, query.offset, DEFAULT_LIMIT, MAX_LIMIT);
    let mut pooled = state.db.get().await?;
    let (rows, total) = Violation::list(
        &mut pooled.conn(),
        caller.organization_id,
        &filter,
        limit,
        offset,
    )
    .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "violations": rows.iter().map(ViolationView::from).collect::<Vec<_>>(),
        "total": total,
        "limit": limit,
        "offset": offset,
    })))
}

/// `GET /api/v1/biasguard/violations/{id}`.
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    let mut pooled = state.db.get().await?;
    let violation = Violation::find(&mut pooled.conn(), caller.organization_id, id.into_inner())
        .await?
        .ok_or(GatewayError::NotFound("violation"))?;
    Ok(HttpResponse::Ok().json(ViolationView::from(&violation)))
}

/// `POST /api/v1/biasguard/violations/{id}/resolve`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Resolve {
    /// What was done about it (1 to 2000 characters).
    pub notes: String,
}

/// Resolve a violation (admin, as a person: the row records who resolved it). A violation is
/// resolved once; a second attempt is a conflict.
#[tracing::instrument(skip_all, fields(org.id = %caller.organization_id))]
pub async fn resolve(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: web::Json<Resolve>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    let user = caller.user()?;
    let notes = body.notes.trim();
    if notes.is_empty() || notes.chars().count() > MAX_NOTES_CHARS {
        return Err(GatewayError::Invalid(format!(
            "notes must be 1 to {MAX_NOTES_CHARS} characters"
        )));
    }
    let (org, id) = (caller.organization_id, id.into_inner());
    let mut pooled = state.db.get().await?;
    let resolved = match Violation::resolve(&mut pooled.conn(), org, id, user, notes).await? {
        Resolution::Resolved(v) => v,
        Resolution::AlreadyResolved(_) => {
            return Err(GatewayError::Conflict(
                "this violation is already resolved".into(),
            ));
        }
        Resolution::NotFound => return Err(GatewayError::NotFound("violation")),
    };
    tracing::info!(violation.id = %id, "BiasGuard violation resolved");
    Ok(HttpResponse::Ok().json(ViolationView::from(&resolved)))
}
