use actix_web::{HttpRequest, HttpResponse, web};
use cg_storage::models::{User, UserUpdate};
use cg_storage::sql_types::Timestamp;
use serde::Deserialize;

use super::tokens;
use crate::auth::{limits, password};
use crate::client::client_info;
use crate::domain::Email;
use crate::error::{GatewayError, Result};
use crate::state::AppState;

/// `POST /api/v1/auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct LoginBody {
    pub email: String,
    pub password: String,
}

const BAD_CREDENTIALS: GatewayError = GatewayError::Unauthorized("invalid email or password");

/// Exchange email and password for an access token and a refresh token. Unknown email and wrong
/// password get the same answer in the same time.
#[tracing::instrument(skip_all)]
pub async fn login(
    req: HttpRequest,
    state: web::Data<AppState>,
    body: web::Json<LoginBody>,
) -> Result<HttpResponse> {
    let email = Email::parse(&body.email).map_err(|_| BAD_CREDENTIALS)?;
    let client = client_info(&req, &state.settings);
    limits::count_login_attempt(
        &state.cache,
        client.ip_address.as_deref().unwrap_or("unknown"),
        &email,
        state.settings.login_attempts_per_ip(),
        state.settings.login_attempts_per_account(),
    )
    .await?;

    let user = {
        let mut pooled = state.db.get().await?;
        User::find_by_email(&mut pooled.conn(), email.as_str()).await?
    };
    let matches = password::verify(
        &body.password,
        user.as_ref().map(|u| u.password_hash.clone()),
    )
    .await?;
    let user = match user {
        Some(u) if matches => u,
        _ => {
            limits::login_failed(
                &state.cache,
                &email,
                state.settings.login_attempts_per_account(),
            )
            .await;
            return Err(BAD_CREDENTIALS);
        }
    };
    limits::login_succeeded(&state.cache, &email).await;
    if !user.is_active {
        return Err(GatewayError::Forbidden("this account is deactivated"));
    }
    let issued = state.sessions.create(user.id, &client).await?;
    let now = Timestamp::now();
    let recorded = async {
        let mut pooled = state.db.get().await?;
        User::update(
            &mut pooled.conn(),
            user.id,
            &UserUpdate {
                last_login_at: Some(Some(now)),
                ..UserUpdate::default()
            },
        )
        .await
    };
    if let Err(e) = recorded.await {
        tracing::warn!(error = %e, "recording last_login_at failed");
    }
    tracing::info!(user.id = %user.id, "logged in");
    Ok(HttpResponse::Ok().json(tokens(&state, issued)?))
}
