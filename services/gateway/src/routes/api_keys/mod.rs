//! `/api/v1/api-keys`: machine credentials of the caller's organisation (admin).

use actix_web::{HttpResponse, web};
use cg_storage::models::{ApiKey, Role};
use cg_storage::sql_types::{Id, Timestamp};
use serde::{Deserialize, Serialize};

use crate::api_doc::{Endpoint, body};
use crate::auth::Caller;
use crate::auth::api_keys::scopes_of;
use crate::auth::scopes::Scope;
use crate::error::{GatewayError, Result};
use crate::state::AppState;
use utoipa::openapi::path::HttpMethod;

const TAG: &str = "api-keys";

const MAX_NAME_CHARS: usize = 100;
const MAX_EXPIRY_DAYS: i64 = 3650;

/// This resource's routes.
pub fn endpoints() -> Vec<Endpoint> {
    vec![
        Endpoint::new(
            HttpMethod::Post,
            "/api/v1/api-keys",
            || web::post().to(create),
            TAG,
            "Create an API key (admin, logged in: not with a key); the secret is shown once",
        )
        .body(body::<CreateApiKey>())
        .ok(201),
        Endpoint::new(
            HttpMethod::Get,
            "/api/v1/api-keys",
            || web::get().to(list),
            TAG,
            "List API keys (admin)",
        ),
        Endpoint::new(
            HttpMethod::Delete,
            "/api/v1/api-keys/{id}",
            || web::delete().to(revoke),
            TAG,
            "Revoke an API key (admin, logged in: not with a key)",
        ),
    ]
}

/// A key as listings show it: never the secret.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiKeyView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Id,
    pub name: String,
    /// The first characters of the key, to tell keys apart.
    pub prefix: String,
    pub role: String,
    /// What the key may do (`process`, `read`, `admin`) within its role.
    pub scopes: Vec<Scope>,
    #[schema(value_type = Option<String>)]
    pub last_used_at: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub expires_at: Option<Timestamp>,
    #[schema(value_type = Option<String>)]
    pub revoked_at: Option<Timestamp>,
    #[schema(value_type = String)]
    pub created_at: Timestamp,
}

impl From<&ApiKey> for ApiKeyView {
    fn from(k: &ApiKey) -> Self {
        Self {
            id: k.id,
            name: k.name.clone(),
            prefix: k.prefix.clone(),
            role: k.role.clone(),
            scopes: k
                .role
                .parse()
                .map(|role| scopes_of(k, role))
                .unwrap_or_default(),
            last_used_at: k.last_used_at,
            expires_at: k.expires_at,
            revoked_at: k.revoked_at,
            created_at: k.created_at,
        }
    }
}

/// `POST /api/v1/api-keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateApiKey {
    pub name: String,
    /// Role the key acts with (default member); at most the creator's own.
    #[serde(default)]
    #[schema(value_type = Option<String>)]
    pub role: Option<Role>,
    /// What the key may do: `process` (the guards; member role or above), `read` (the
    /// organisation's resources), `admin` (its configuration; admin role). Default: `process`,
    /// or `read` for a viewer key.
    #[serde(default)]
    #[schema(inline)]
    pub scopes: Option<Vec<Scope>>,
    /// Days until the key stops working (default: never).
    #[serde(default)]
    pub expires_in_days: Option<i64>,
}

/// Create a key (admin). The secret is in this answer only.
pub async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<CreateApiKey>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    // A key never makes keys: what a leaked key could do ends with its revocation.
    let creator = caller.user()?;
    let name = body.name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(GatewayError::Invalid(format!(
            "name must be 1 to {MAX_NAME_CHARS} printable characters"
        )));
    }
    let role = body.role.unwrap_or(Role::Member);
    if !caller.role.at_least(role) {
        return Err(GatewayError::Forbidden(
            "a key cannot have a role above its creator's",
        ));
    }
    let mut scopes = body
        .scopes
        .clone()
        .unwrap_or_else(|| Scope::default_for(role));
    scopes.sort();
    scopes.dedup();
    if scopes.is_empty() {
        return Err(GatewayError::Invalid("scopes must not be empty".into()));
    }
    if let Some(scope) = scopes.iter().find(|s| !role.at_least(s.least_role())) {
        return Err(GatewayError::Invalid(format!(
            "the {} scope needs a key role of at least {}",
            scope.as_str(),
            scope.least_role().as_str()
        )));
    }
    let expires_at = match body.expires_in_days {
        None => None,
        Some(days) if (1..=MAX_EXPIRY_DAYS).contains(&days) => Some(Timestamp::from(
            *Timestamp::now() + chrono::Duration::days(days),
        )),
        Some(_) => {
            return Err(GatewayError::Invalid(format!(
                "expires_in_days must be 1 to {MAX_EXPIRY_DAYS}"
            )));
        }
    };
    let created = state
        .api_keys
        .create(
            caller.organization_id,
            Some(creator),
            name,
            role,
            &scopes,
            expires_at,
        )
        .await?;
    let mut view =
        serde_json::to_value(ApiKeyView::from(&created.key)).map_err(anyhow::Error::from)?;
    view["key"] = serde_json::Value::String(created.secret);
    Ok(HttpResponse::Created().json(view))
}

/// `GET /api/v1/api-keys` (admin): the organisation's keys, newest first.
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    let mut pooled = state.db.get().await?;
    let keys = ApiKey::list(&mut pooled.conn(), caller.organization_id).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "api_keys": keys.iter().map(ApiKeyView::from).collect::<Vec<_>>(),
    })))
}

/// `DELETE /api/v1/api-keys/{id}` (admin): revoke; every replica refuses it within a second.
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    caller.user()?;
    let key = state
        .api_keys
        .revoke(caller.organization_id, id.into_inner())
        .await?;
    Ok(HttpResponse::Ok().json(ApiKeyView::from(&key)))
}
