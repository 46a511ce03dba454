use actix_web::{HttpResponse, web};
use cg_storage::models::{NewUser, User, UserUpdate};
use cg_storage::sql_types::{Id, Timestamp};
use serde::Deserialize;

use super::UserView;
use crate::auth::{AuthUser, password};
use crate::domain::{Email, FullName, Password};
use crate::error::{GatewayError, Result};
use crate::state::AppState;

const MAX_PAGE: i64 = 200;

pub(crate) async fn require_superuser(state: &AppState, caller: &AuthUser) -> Result<()> {
    let mut pooled = state.db.get().await?;
    let user = User::find(&mut pooled.conn(), caller.user_id).await?;
    if user.is_superuser && user.is_active {
        Ok(())
    } else {
        Err(GatewayError::Forbidden("requires a platform administrator"))
    }
}

/// `?limit=&offset=`.
#[derive(Debug, Deserialize)]
pub struct Page {
    #[serde(default)]
    pub limit: Option<i64>,
    #[serde(default)]
    pub offset: Option<i64>,
}

/// `GET /api/v1/users` (platform admin).
pub async fn list(
    state: web::Data<AppState>,
    caller: AuthUser,
    page: web::Query<Page>,
) -> Result<HttpResponse> {
    require_superuser(&state, &caller).await?;
    let (limit, offset) = crate::routes::query::page(page.limit, page.offset, 50, MAX_PAGE);
    let mut pooled = state.db.get().await?;
    let users = User::list(&mut pooled.conn(), limit, offset).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "users": users.iter().map(UserView::from).collect::<Vec<_>>(),
        "limit": limit,
        "offset": offset,
    })))
}

/// `POST /api/v1/users` (platform admin).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct CreateUser {
    pub email: String,
    pub password: String,
    #[serde(default)]
    pub full_name: String,
}

/// Create an account without an organisation (invite it into one afterwards).
pub async fn create(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: web::Json<CreateUser>,
) -> Result<HttpResponse> {
    require_superuser(&state, &caller).await?;
    let email = Email::parse(&body.email)?;
    let password = Password::parse(&body.password)?;
    let full_name = FullName::parse(&body.full_name)?;
    let hash = password::hash(&password).await?;
    let mut pooled = state.db.get().await?;
    let user = NewUser::new(email.as_str(), &hash, full_name.as_str())
        .insert(&mut pooled.conn())
        .await
        .map_err(|e| match e {
            cg_storage::Error::Conflict(_) => {
                GatewayError::Conflict("this email is already registered".into())
            }
            other => other.into(),
        })?;
    Ok(HttpResponse::Created().json(UserView::from(&user)))
}

/// `GET /api/v1/users/{id}` (platform admin, or oneself).
pub async fn get(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    let id = id.into_inner();
    if id != caller.user_id {
        require_superuser(&state, &caller).await?;
    }
    let mut pooled = state.db.get().await?;
    let user = User::find(&mut pooled.conn(), id)
        .await
        .map_err(|_| GatewayError::NotFound("user"))?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

async fn set_active(
    state: &AppState,
    caller: &AuthUser,
    id: Id,
    active: bool,
) -> Result<HttpResponse> {
    require_superuser(state, caller).await?;
    if id == caller.user_id && !active {
        return Err(GatewayError::Conflict(
            "you cannot deactivate yourself".into(),
        ));
    }
    if !active {
        // Before the change: if the sessions cannot be ended, the account stays as it was.
        state.sessions.end_all_of(id).await?;
    }
    let now = Timestamp::now();
    let mut pooled = state.db.get().await?;
    let user = User::update(
        &mut pooled.conn(),
        id,
        &UserUpdate {
            is_active: Some(active),
            updated_at: Some(now),
            ..UserUpdate::default()
        },
    )
    .await
    .map_err(|e| match e {
        cg_storage::Error::NotFound => GatewayError::NotFound("user"),
        other => other.into(),
    })?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

/// `POST /api/v1/users/{id}/activate` (platform admin).
pub async fn activate(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    set_active(&state, &caller, id.into_inner(), true).await
}

/// `POST /api/v1/users/{id}/deactivate` (platform admin): the account can no longer log in or
/// refresh, and every session ends (its access tokens stop working on every replica).
pub async fn deactivate(
    state: web::Data<AppState>,
    caller: AuthUser,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    set_active(&state, &caller, id.into_inner(), false).await
}
