use actix_web::{HttpResponse, web};
use cg_storage::Conn;
use cg_storage::models::{Member, Role, User};
use cg_storage::sql_types::{Id, Timestamp};
use serde::Deserialize;

use crate::auth::Caller;
use crate::error::{GatewayError, Result};
use crate::state::AppState;

/// `GET /api/v1/organizations/members`.
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    caller.require(Role::Viewer)?;
    let mut pooled = state.db.get().await?;
    let conn = &mut pooled.conn();
    let mut members = Vec::new();
    for m in Member::list(conn, caller.organization_id).await? {
        let user = User::find(conn, m.user_id).await?;
        members.push(serde_json::json!({
            "user_id": m.user_id, "email": user.email, "full_name": user.full_name,
            "role": m.role, "joined_at": m.created_at,
        }));
    }
    Ok(HttpResponse::Ok().json(serde_json::json!({"members": members})))
}

/// `PUT /api/v1/organizations/members/{user_id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SetRole {
    #[schema(value_type = String)]
    pub role: Role,
}

/// Change a member's role (admin). Only an owner grants or takes the owner role, and the last
/// owner stays an owner.
pub async fn set_role(
    state: web::Data<AppState>,
    caller: Caller,
    user_id: web::Path<Id>,
    body: web::Json<SetRole>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    // Membership changes need a person, not a key.
    caller.user()?;
    let (org, user_id, role) = (caller.organization_id, user_id.into_inner(), body.role);
    let mut pooled = state.db.get().await?;
    let member = pooled
        .conn()
        .transaction(async |tx: &mut Conn<'_>| {
            let current = Member::find(tx, org, user_id)
                .await?
                .ok_or(GatewayError::NotFound("member"))?
                .role()?;
            if (current == Role::Owner || role == Role::Owner) && caller.role != Role::Owner {
                return Err(GatewayError::Forbidden(
                    "only an owner grants or removes the owner role",
                ));
            }
            if current == Role::Owner
                && role != Role::Owner
                && Member::count_owners(tx, org).await? == 1
            {
                return Err(GatewayError::Conflict(
                    "the last owner cannot be demoted".into(),
                ));
            }
            Ok(Member::set_role(tx, org, user_id, role, Timestamp::now()).await?)
        })
        .await?;
    state.memberships.changed(user_id).await;
    Ok(
        HttpResponse::Ok()
            .json(serde_json::json!({"user_id": member.user_id, "role": member.role})),
    )
}

/// `DELETE /api/v1/organizations/members/{user_id}`: remove a member (admin), or leave (anyone,
/// for oneself). The last owner cannot go.
pub async fn remove(
    state: web::Data<AppState>,
    caller: Caller,
    user_id: web::Path<Id>,
) -> Result<HttpResponse> {
    let (org, user_id) = (caller.organization_id, user_id.into_inner());
    // Membership changes need a person, not a key.
    caller.user()?;
    if caller.user_id != Some(user_id) {
        caller.require(Role::Admin)?;
    }
    let mut pooled = state.db.get().await?;
    pooled
        .conn()
        .transaction(async |tx: &mut Conn<'_>| {
            let role = Member::find(tx, org, user_id)
                .await?
                .ok_or(GatewayError::NotFound("member"))?
                .role()?;
            if role == Role::Owner {
                if caller.role != Role::Owner {
                    return Err(GatewayError::Forbidden("only an owner removes an owner"));
                }
                if Member::count_owners(tx, org).await? == 1 {
                    return Err(GatewayError::Conflict("the last owner cannot leave".into()));
                }
            }
            Member::remove(tx, org, user_id).await?;
            Ok(())
        })
        .await?;
    state.memberships.changed(user_id).await;
    Ok(HttpResponse::NoContent().finish())
}
