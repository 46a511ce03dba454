use actix_web::{HttpResponse, web};
use cg_storage::Conn;
use cg_storage::models::{Member, Role, User, UserUpdate};
use cg_storage::sql_types::{Id, Timestamp};
use serde::Deserialize;

use super::UserView;
use crate::auth::{AuthUser, limits, password};
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

/// Change one's name or password. A new password ends every session of the account, this one
/// included (its access and refresh tokens stop working on every replica): log in again.
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
            limits::count_password_check(
                &state.cache,
                user.id,
                state.settings.login_attempts_per_account(),
            )
            .await?;
            if !password::verify(current, Some(user.password_hash.clone())).await? {
                return Err(GatewayError::Forbidden("current_password is wrong"));
            }
            Some(password::hash(p).await?)
        }
        None => None,
    };
    if new_hash.is_some() {
        // Before the change: if the sessions cannot be ended, the password stays as it was.
        state.sessions.end_all_of(user.id).await?;
    }
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
    Ok(HttpResponse::Ok().json(UserView::from(&updated)))
}

/// `DELETE /api/v1/users/me`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct DeleteMe {
    /// The account's password: a stolen access token alone cannot delete the account.
    pub password: String,
}

/// `DELETE /api/v1/users/me`: delete one's account (its password required). Organisations where
/// the caller is the only member go with it; being the last owner of an organisation others
/// belong to is a conflict (transfer ownership first). Every session of the account ends.
pub async fn delete(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: web::Json<DeleteMe>,
) -> Result<HttpResponse> {
    let mut pooled = state.db.get().await?;
    let user = User::find(&mut pooled.conn(), caller.user_id).await?;
    limits::count_password_check(
        &state.cache,
        user.id,
        state.settings.login_attempts_per_account(),
    )
    .await?;
    if !password::verify(&body.password, Some(user.password_hash.clone())).await? {
        return Err(GatewayError::Forbidden("password is wrong"));
    }
    // Checked before the sessions end, so a refusal changes nothing; checked again in the
    // transaction, which is what counts if memberships change meanwhile.
    sole_memberships(&mut pooled.conn(), caller.user_id).await?;
    state.sessions.end_all_of(caller.user_id).await?;
    pooled
        .conn()
        .transaction(async |tx: &mut Conn<'_>| {
            for org in sole_memberships(tx, caller.user_id).await? {
                cg_storage::models::Organization::delete(tx, org).await?;
            }
            User::delete(tx, caller.user_id).await?;
            Ok::<_, GatewayError>(())
        })
        .await?;
    state.memberships.changed(caller.user_id).await;
    Ok(HttpResponse::NoContent().finish())
}

/// The organisations `user` is the only member of (they go with the account); a conflict if
/// the user is the last owner of one that others belong to.
async fn sole_memberships(conn: &mut Conn<'_>, user: Id) -> Result<Vec<Id>> {
    let mut sole = Vec::new();
    for (member, org) in Member::organizations_of(conn, user).await? {
        let others = Member::list(conn, org.id).await?.len() > 1;
        if member.role()? == Role::Owner && others && Member::count_owners(conn, org.id).await? == 1
        {
            return Err(GatewayError::Conflict(format!(
                "you are the last owner of {:?}; make someone else owner first",
                org.name
            )));
        }
        if !others {
            sole.push(org.id);
        }
    }
    Ok(sole)
}
