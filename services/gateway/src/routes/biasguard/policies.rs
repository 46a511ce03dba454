//! `/api/v1/biasguard/policies`: an organisation's BiasGuard policies. Rules are checked with the
//! same [`PolicyRules::parse`] BiasGuard evaluates them with, so a stored policy is one BiasGuard
//! can apply.

use actix_web::{HttpResponse, web};
use cg_guard_api::biasguard::PolicyRules;
use cg_storage::Conn;
use cg_storage::models::biasguard::ENFORCEMENT_TYPES;
use cg_storage::models::{Policy, PolicyChanges, Role};
use cg_storage::sql_types::{Id, Timestamp};
use serde::{Deserialize, Serialize};

use super::announce_policy_change;
use crate::auth::Caller;
use crate::error::{GatewayError, Result};
use crate::state::AppState;

const MAX_NAME_CHARS: usize = 100;
const MAX_DESCRIPTION_CHARS: usize = 1000;
/// Evaluation order: lower first.
const DEFAULT_PRIORITY: i32 = 100;
const MAX_PRIORITY: i32 = 10_000;
/// Rules name a handful of known values; anything this large is a mistake.
const MAX_RULES_BYTES: usize = 16 * 1024;

/// A policy as the API shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Id,
    pub name: String,
    pub description: String,
    /// fairness_check, attribute_based, compliance or audit.
    pub enforcement_type: String,
    /// max_bias_score, blocked_bias_types, blocked_levels, protected_classes, min_confidence,
    /// action.
    #[schema(value_type = Object)]
    pub rules: serde_json::Value,
    /// Evaluation order, lower first.
    pub priority: i32,
    pub is_active: bool,
    #[schema(value_type = Option<String>, format = Uuid)]
    pub created_by: Option<Id>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
    #[schema(value_type = String)]
    pub updated_at: Timestamp,
}

impl From<&Policy> for PolicyView {
    fn from(p: &Policy) -> Self {
        Self {
            id: p.id,
            name: p.name.clone(),
            description: p.description.clone(),
            enforcement_type: p.enforcement_type.clone(),
            rules: p.rules.clone(),
            priority: p.priority,
            is_active: p.is_active,
            created_by: p.created_by,
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

fn parse_name(raw: &str) -> Result<String> {
    crate::routes::fields::name(raw, MAX_NAME_CHARS)
}

fn parse_description(raw: &str) -> Result<String> {
    crate::routes::fields::description(raw, MAX_DESCRIPTION_CHARS)
}

fn parse_enforcement_type(raw: &str) -> Result<&'static str> {
    ENFORCEMENT_TYPES
        .into_iter()
        .find(|t| *t == raw)
        .ok_or_else(|| {
            GatewayError::Invalid(format!(
                "enforcement_type must be one of: {}",
                ENFORCEMENT_TYPES.join(", ")
            ))
        })
}

fn check_priority(priority: i32) -> Result<i32> {
    if (0..=MAX_PRIORITY).contains(&priority) {
        Ok(priority)
    } else {
        Err(GatewayError::Invalid(format!(
            "priority must be 0 to {MAX_PRIORITY} (lower is evaluated first)"
        )))
    }
}

/// The rules must be an object BiasGuard can evaluate under `enforcement_type`.
fn check_rules(rules: &serde_json::Value, enforcement_type: &str) -> Result<()> {
    if !rules.is_object() {
        return Err(GatewayError::Invalid("rules must be a JSON object".into()));
    }
    if rules.to_string().len() > MAX_RULES_BYTES {
        return Err(GatewayError::Invalid(format!(
            "rules must be at most {MAX_RULES_BYTES} bytes of JSON"
        )));
    }
    PolicyRules::parse(rules, enforcement_type).map_err(GatewayError::Invalid)?;
    Ok(())
}

/// The names of an organisation's policies are unique.
fn name_taken(e: cg_storage::Error) -> GatewayError {
    match e {
        cg_storage::Error::Conflict(_) => {
            GatewayError::Conflict("the organisation already has a policy with this name".into())
        }
        other => other.into(),
    }
}

/// `?active=true|false`.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    pub active: Option<bool>,
}

/// `GET /api/v1/biasguard/policies`: in evaluation order (priority, then name).
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse> {
    let mut pooled = state.db.get().await?;
    let mut policies = Policy::list(
        &mut pooled.conn(),
        caller.organization_id,
        query.active == Some(true),
    )
    .await?;
    if query.active == Some(false) {
        policies.retain(|p| !p.is_active);
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "policies": policies.iter().map(PolicyView::from).collect::<Vec<_>>(),
    })))
}

/// `POST /api/v1/biasguard/policies`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePolicy {
    /// Unique within the organisation.
    pub name: String,
    #[serde(default)]
    pub description: Option<String>,
    /// fairness_check, attribute_based, compliance or audit.
    pub enforcement_type: String,
    /// `{max_bias_score?, blocked_bias_types?, blocked_levels?, protected_classes?,
    /// min_confidence?, action?}`, at least one of the first three.
    #[schema(value_type = Object)]
    pub rules: serde_json::Value,
    /// Evaluation order, lower first (default 100).
    #[serde(default)]
    pub priority: Option<i32>,
    /// Default true.
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// Create a policy (admin).
#[tracing::instrument(skip_all, fields(org.id = %caller.organization_id))]
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreatePolicy>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    let name = parse_name(&body.name)?;
    let description = parse_description(body.description.as_deref().unwrap_or_default())?;
    let enforcement_type = parse_enforcement_type(&body.enforcement_type)?;
    let priority = check_priority(body.priority.unwrap_or(DEFAULT_PRIORITY))?;
    check_rules(&body.rules, enforcement_type)?;
    let now = Timestamp::now();
    let policy = Policy {
        id: Id::new(),
        organization_id: caller.organization_id,
        name,
        description,
        enforcement_type: enforcement_type.to_owned(),
        rules: body.rules.clone(),
        priority,
        is_active: body.is_active.unwrap_or(true),
        created_by: caller.user_id,
        created_at: now,
        updated_at: now,
    };
    let mut pooled = state.db.get().await?;
    policy
        .insert(&mut pooled.conn())
        .await
        .map_err(name_taken)?;
    announce_policy_change(&state.cache, caller.organization_id).await;
    tracing::info!(policy.id = %policy.id, "BiasGuard policy created");
    Ok(HttpResponse::Created().json(PolicyView::from(&policy)))
}

/// `GET /api/v1/biasguard/policies/{id}`.
pub async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    let mut pooled = state.db.get().await?;
    let policy = Policy::find(&mut pooled.conn(), caller.organization_id, id.into_inner())
        .await?
        .ok_or(GatewayError::NotFound("policy"))?;
    Ok(HttpResponse::Ok().json(PolicyView::from(&policy)))
}

/// `PATCH /api/v1/biasguard/policies/{id}`: any subset of the fields of a policy.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdatePolicy {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub enforcement_type: Option<String>,
    /// Replaces the rules; checked against the resulting enforcement type.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub rules: Option<serde_json::Value>,
    #[serde(default)]
    pub priority: Option<i32>,
    #[serde(default)]
    pub is_active: Option<bool>,
}

/// Change a policy (admin). The resulting rules are checked against the resulting enforcement
/// type, and the pair is written together, so concurrent changes cannot leave a pair that was
/// never checked.
#[tracing::instrument(skip_all, fields(org.id = %caller.organization_id))]
pub async fn update(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
    body: web::Json<UpdatePolicy>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    let (org, id) = (caller.organization_id, id.into_inner());
    let body = body.into_inner();
    let name = body.name.as_deref().map(parse_name).transpose()?;
    let description = body
        .description
        .as_deref()
        .map(parse_description)
        .transpose()?;
    let enforcement_type = body
        .enforcement_type
        .as_deref()
        .map(parse_enforcement_type)
        .transpose()?;
    let priority = body.priority.map(check_priority).transpose()?;
    let mut pooled = state.db.get().await?;
    let policy = pooled
        .conn()
        .transaction(async |tx: &mut Conn<'_>| {
            let current = Policy::find(tx, org, id)
                .await?
                .ok_or(GatewayError::NotFound("policy"))?;
            let enforcement_type = enforcement_type.map_or(current.enforcement_type, str::to_owned);
            let rules = body.rules.unwrap_or(current.rules);
            check_rules(&rules, &enforcement_type)?;
            let changes = PolicyChanges {
                name,
                description,
                enforcement_type: Some(enforcement_type),
                rules: Some(rules),
                priority,
                is_active: body.is_active,
                updated_at: Timestamp::now(),
            };
            Policy::update(tx, org, id, &changes)
                .await
                .map_err(name_taken)?
                .ok_or(GatewayError::NotFound("policy"))
        })
        .await?;
    announce_policy_change(&state.cache, org).await;
    tracing::info!(policy.id = %id, "BiasGuard policy changed");
    Ok(HttpResponse::Ok().json(PolicyView::from(&policy)))
}

/// `DELETE /api/v1/biasguard/policies/{id}` (admin). Its violations stay, without the policy.
#[tracing::instrument(skip_all, fields(org.id = %caller.organization_id))]
pub async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    let id = id.into_inner();
    let mut pooled = state.db.get().await?;
    if !Policy::delete(&mut pooled.conn(), caller.organization_id, id).await? {
        return Err(GatewayError::NotFound("policy"));
    }
    announce_policy_change(&state.cache, caller.organization_id).await;
    tracing::info!(policy.id = %id, "BiasGuard policy deleted");
    Ok(HttpResponse::NoContent().finish())
}
