use actix_web::{HttpResponse, web};
use cg_storage::Conn;
use cg_storage::models::{Invitation, Member, NewMember, Role, User};
use cg_storage::sql_types::{Id, Timestamp};
use serde::Deserialize;

use crate::auth::secrets::{INVITATION_PREFIX, random_token, sha256_hex};
use crate::auth::{AuthUser, Caller};
use crate::domain::Email;
use crate::error::{GatewayError, Result};
use crate::state::AppState;

/// `POST /api/v1/organizations/members/invite`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Invite {
    pub email: String,
    /// admin, member or viewer (owners are made by promotion).
    #[schema(value_type = String)]
    pub role: Role,
}

/// Invite an address (admin). The answer carries the invitation token once; delivering it (by
/// email or otherwise) is up to the caller. The invitee accepts with
/// `POST /api/v1/organizations/invitations/accept`.
pub async fn invite(
    state: web::Data<AppState>,
    caller: Caller,
    body: web::Json<Invite>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    // Membership changes need a person, not a key.
    caller.user()?;
    let email = Email::parse(&body.email)?;
    if body.role == Role::Owner {
        return Err(GatewayError::Invalid(
            "invite as admin, member or viewer; promote to owner afterwards".into(),
        ));
    }
    if !caller.role.at_least(body.role) {
        return Err(GatewayError::Forbidden(
            "you cannot invite with a role above your own",
        ));
    }
    let now = Timestamp::now();
    let ttl = chrono::Duration::from_std(state.settings.invitation_ttl())
        .unwrap_or(chrono::Duration::days(3));
    let token = random_token(INVITATION_PREFIX);
    let invitation = Invitation {
        id: Id::new(),
        organization_id: caller.organization_id,
        email: email.as_str().to_owned(),
        role: body.role.as_str().to_owned(),
        token_hash: sha256_hex(&token),
        invited_by: caller.user_id,
        expires_at: Timestamp::from(*now + ttl),
        accepted_at: None,
        revoked_at: None,
        created_at: now,
    };
    let mut pooled = state.db.get().await?;
    let conn = &mut pooled.conn();
    if let Some(existing) = User::find_by_email(conn, email.as_str()).await?
        && Member::find(conn, caller.organization_id, existing.id)
            .await?
            .is_some()
    {
        return Err(GatewayError::Conflict(
            "this address is already a member".into(),
        ));
    }
    // An invitation that expired unaccepted no longer holds the address.
    Invitation::close_expired(conn, caller.organization_id, email.as_str(), now).await?;
    invitation.insert(conn).await.map_err(|e| match e {
        cg_storage::Error::Conflict(_) => {
            GatewayError::Conflict("this address already has an open invitation".into())
        }
        other => other.into(),
    })?;
    Ok(HttpResponse::Created().json(serde_json::json!({
        "invitation_id": invitation.id,
        "email": invitation.email,
        "role": invitation.role,
        "expires_at": invitation.expires_at,
        "token": token,
    })))
}

/// `DELETE /api/v1/organizations/invitations/{id}` (admin, logged in): revoke an open
/// invitation; its token stops working.
pub async fn revoke(
    state: web::Data<AppState>,
    caller: Caller,
    id: web::Path<Id>,
) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    // Membership changes need a person, not a key.
    caller.user()?;
    let mut pooled = state.db.get().await?;
    let revoked = Invitation::revoke(
        &mut pooled.conn(),
        caller.organization_id,
        id.into_inner(),
        Timestamp::now(),
    )
    .await?;
    if !revoked {
        return Err(GatewayError::NotFound("open invitation"));
    }
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/organizations/invitations` (admin): open invitations.
pub async fn list(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse> {
    caller.require(Role::Admin)?;
    let mut pooled = state.db.get().await?;
    let open =
        Invitation::list_open(&mut pooled.conn(), caller.organization_id, Timestamp::now()).await?;
    let view: Vec<_> = open
        .iter()
        .map(|i| serde_json::json!({"invitation_id": i.id, "email": i.email, "role": i.role, "expires_at": i.expires_at}))
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({"invitations": view})))
}

/// `POST /api/v1/organizations/invitations/accept`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct Accept {
    pub token: String,
}

/// Join the organisation an invitation names. It must have been sent to the caller's address.
pub async fn accept(
    state: web::Data<AppState>,
    caller: AuthUser,
    body: web::Json<Accept>,
) -> Result<HttpResponse> {
    let hash = sha256_hex(body.token.trim());
    let now = Timestamp::now();
    let mut pooled = state.db.get().await?;
    let member = pooled
        .conn()
        .transaction(async |tx: &mut Conn<'_>| {
            let invitation = Invitation::find_open(tx, &hash, now)
                .await?
                .ok_or(GatewayError::NotFound("invitation"))?;
            let user = User::find(tx, caller.user_id).await?;
            if user.email != invitation.email {
                return Err(GatewayError::NotFound("invitation"));
            }
            if !Invitation::accept(tx, invitation.id, now).await? {
                return Err(GatewayError::NotFound("invitation"));
            }
            let role: Role = invitation.role.parse()?;
            NewMember::new(
                invitation.organization_id,
                user.id,
                role,
                invitation.invited_by,
            )
            .insert(tx)
            .await
            .map_err(|e| match e {
                cg_storage::Error::Conflict(_) => GatewayError::Conflict("already a member".into()),
                other => other.into(),
            })
        })
        .await?;
    state.memberships.changed(caller.user_id).await;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "organization_id": member.organization_id, "role": member.role,
    })))
}
