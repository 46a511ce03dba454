use actix_web::{HttpResponse, web};
use cg_storage::Conn;
use cg_storage::models::{Member, Role, Session, User, UserUpdate};
use cg_storage::sql_types::Timestamp;
use serde::Deserialize;

use super::UserView;
use crate::auth::{AuthUser, password};
use crate::domain::{FullName, Password};
use crate::error::{GatewayError, Result};
use crate::state::AppState;

/// `GET /api/v1/users/me`.
pub async fn get(state: web::Data<AppState>, caller: AuthUser) -> Result<HttpResponse> {
    let mut pooled = state.db.get().await?;
    let user = User::find(&mut pooled.conn(), caller.user_id).await?;
    Ok(HttpResponse::Ok().json(UserView::from(&user)))
}

/// `PUT /api/v1/users/me`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct UpdateMe {
    #[serde(default)]
    pub full_name: Option<String>,
    /// A new password; needs `current_password`.
    #[serde(default)]
    pub password: Option<String>,
    #[serde(default)]
    pub current_password: Option<String>,
}

/// Change one's name or password. A new password ends every other session.
pub async fn update(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: web::Json<UpdateMe>,
) -> Result<HttpResponse> {
    let full_name = body.full_name.as_deref().map(FullName::parse).transpose()?;
    let new_password = body.password.as_deref().map(Password::parse).transpose()?;
    let mut pooled = state.db.get().await?;
    let user = User::find(&mut pooled.conn(), caller.user_id).await?;
    let new_hash = match &new_password {
        Some(p) => {
            let current = body.current_password.as_deref().ok_or_else(|| {
                GatewayError::Invalid("current_password is required to change the password".into())
            })?;
            if !password::verify(current, Some(user.password_hash.clone())).await? {
                return Err(GatewayError::Forbidden("current_password is wrong"));
            }
            Some(password::hash(p).await?)
        }
        None => None,
    };
    let now = Timestamp::now();
    let updated = User::update(
        &mut pooled.conn(),
        user.id,
        &UserUpdate {
            full_name: full_name.as_ref().map(FullName::as_str),
            password_hash: new_hash.as_deref(),
            updated_at: Some(now),
            ..UserUpdate::default()
        },
    )
    .await?;
    if new_hash.is_some() {
        Session::revoke_user(&mut pooled.conn(), user.id, now).await?;
    }
    Ok(HttpResponse::Ok().json(UserView::from(&updated)))
}

/// `DELETE /api/v1/users/me`: delete one's account. Organisations where the caller is the only
/// member go with it; being the last owner of an organisation others belong to is a conflict
/// (transfer ownership first).
pub async fn delete(state: web::Data<AppState>, caller: AuthUser) -> Result<HttpResponse> {
    let mut pooled = state.db.get().await?;
    pooled
        .conn()
        .transaction(async |tx: &mut Conn<'_>| {
            for (member, org) in Member::organizations_of(tx, caller.user_id).await? {
                let others = Member::list(tx, org.id).await?.len() > 1;
                if member.role()? == Role::Owner
                    && others
                    && Member::count_owners(tx, org.id).await? == 1
                {
                    return Err(GatewayError::Conflict(format!(
                        "you are the last owner of {:?}; make someone else owner first",
                        org.name
                    )));
                }
                if !others {
                    cg_storage::models::Organization::delete(tx, org.id).await?;
                }
            }
            User::delete(tx, caller.user_id).await?;
            Ok(())
        })
        .await?;
    state.memberships.changed(caller.user_id).await;
    Ok(HttpResponse::NoContent().finish())
}
