//! `/api/v1/biasguard/audit`: BiasGuard's audit log of the organisation (one row per analysis).

use actix_web::{HttpResponse, web};
use cg_storage::models::{AuditLog, Role};
use cg_storage::sql_types::{Id, Timestamp};
use serde::{Deserialize, Serialize};

use crate::auth::Caller;
use crate::error::Result;
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 500;

/// An audit row as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Id,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    pub request_id: Option<String>,
    pub operation: String,
    /// allow, deny or review_required.
    pub decision: String,
    pub bias_score: f64,
    pub bias_level: String,
    #[schema(value_type = Object)]
    pub bias_types: serde_json::Value,
    #[schema(value_type = Object)]
    pub policy_ids: serde_json::Value,
    #[schema(value_type = Object)]
    pub violations: serde_json::Value,
    #[schema(value_type = Object)]
    pub warnings: serde_json::Value,
    #[schema(value_type = Object)]
    pub fairness_metrics: serde_json::Value,
    #[schema(value_type = Object)]
    pub request_context: serde_json::Value,
    /// The analysed text, only when BiasGuard is configured to keep it.
    pub analyzed_text: Option<String>,
    pub processing_time_ms: f64,
}

impl From<&AuditLog> for AuditView {
    fn from(a: &AuditLog) -> Self {
        Self {
            id: a.id,
            created_at: a.created_at,
            request_id: a.request_id.clone(),
            operation: a.operation.clone(),
            decision: a.decision.clone(),
            bias_score: a.bias_score,
            bias_level: a.bias_level.clone(),
            bias_types: a.bias_types.clone(),
            policy_ids: a.policy_ids.clone(),
            violations: a.violations.clone(),
            warnings: a.warnings.clone(),
            fairness_metrics: a.fairness_metrics.clone(),
            request_context: a.request_context.clone(),
            analyzed_text: a.analyzed_text.clone(),
            processing_time_ms: a.processing_time_ms,
        }
    }
}

/// `?limit=` (default 50, at most 500).
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub limit: Option<i64>,
}

/// `GET /api/v1/biasguard/audit` (admin): the organisation's rows, newest first.
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    let (limit, _) = crate::routes::query::page(query.limit, None, DEFAULT_LIMIT, MAX_LIMIT);
    let mut pooled = state.db.get().await?;
    let rows = AuditLog::list_for_org(&mut pooled.conn(), caller.organization_id, limit).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "audit_logs": rows.iter().map(AuditView::from).collect::<Vec<_>>(),
        "limit": limit,
    })))
}
