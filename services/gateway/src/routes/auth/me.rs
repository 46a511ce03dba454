use actix_web::{HttpResponse, web};
use cg_storage::models::{Member, User};

use crate::auth::AuthUser;
use crate::error::{GatewayError, Result};
use crate::routes::users::UserView;
use crate::state::AppState;

/// `GET /api/v1/auth/me`: the caller and the organisations they belong to.
pub async fn me(state: web::Data<AppState>, caller: AuthUser) -> Result<HttpResponse> {
    let mut pooled = state.db.get().await?;
    let conn = &mut pooled.conn();
    let user = User::find(conn, caller.user_id)
        .await
        .map_err(|e| match e {
            cg_storage::Error::NotFound => {
                GatewayError::Unauthorized("this account no longer exists")
            }
            other => other.into(),
        })?;
    let organizations: Vec<_> = Member::organizations_of(conn, user.id)
        .await?
        .into_iter()
        .map(|(m, o)| {
            serde_json::json!({
                "id": o.id, "name": o.name, "slug": o.slug, "role": m.role,
            })
        })
        .collect();
    let mut view = serde_json::to_value(UserView::from(&user)).map_err(anyhow::Error::from)?;
    view["organizations"] = serde_json::Value::Array(organizations);
    Ok(HttpResponse::Ok().json(view))
}
