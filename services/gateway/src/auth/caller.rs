//! Extractors that authenticate a request.
//!
//! Credentials come as `Authorization: Bearer <token>` or `X-API-Key: <key>`. A bearer value that
//! looks like an API key (`cgk_…`) is treated as one; anything else must be an access token. A user
//! acts in their default organisation (the oldest membership) unless `X-Organization-ID` names
//! another one they belong to; an organisation they do not belong to is "not found".

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpMessage, HttpRequest, web};
use cg_storage::models::Role;
use cg_storage::sql_types::Id;

use super::api_keys::ApiKeys;
use super::scopes::Scope;
use super::tokens::AccessClaims;
use crate::error::{GatewayError, Result};
use crate::state::AppState;
use crate::traffic::{EndpointClass, RateLimiter};

/// `X-API-Key`.
pub const API_KEY_HEADER: &str = "x-api-key";
/// `X-Organization-ID`.
pub const ORGANIZATION_HEADER: &str = "x-organization-id";

/// How the caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Credential {
    /// An access token from a login session.
    User { session_id: Id },
    /// An organisation's API key.
    ApiKey { key_id: Id },
}

/// An authenticated caller acting in one organisation with one role.
#[derive(Debug, Clone)]
pub struct Caller {
    pub organization_id: Id,
    pub role: Role,
    /// The person behind the request; `None` for API keys.
    pub user_id: Option<Id>,
    pub credential: Credential,
}

impl Caller {
    /// Refuse unless the caller's role is at least `required`.
    pub fn require(&self, required: Role) -> Result<()> {
        if self.role.at_least(required) {
            Ok(())
        } else {
            Err(GatewayError::Forbidden(match required {
                Role::Owner => "requires the owner role",
                Role::Admin => "requires the admin role",
                Role::Member => "requires the member role",
                Role::Viewer => "requires the viewer role",
            }))
        }
    }

    /// The user behind the request, for actions only people may take.
    pub fn user(&self) -> Result<Id> {
        self.user_id.ok_or(GatewayError::Forbidden(
            "this action needs a user login, not an API key",
        ))
    }

    /// The key rate limits and usage are counted under: the API key, else the user.
    pub fn client_key(&self) -> String {
        match self.credential {
            Credential::ApiKey { key_id } => format!("key:{key_id}"),
            Credential::User { .. } => format!("user:{}", self.user_id.unwrap_or_default()),
        }
    }
}

/// The organisation an authenticated request is metered under (set by the [`Caller`] extractor).
#[derive(Debug, Clone, Copy)]
pub struct Metered(pub Id);

/// An authenticated user (access token only), before any organisation is chosen.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    pub user_id: Id,
    pub session_id: Id,
    /// The session family (one login and its rotations).
    pub family_id: Id,
}

enum Presented {
    AccessToken(String),
    ApiKey(String),
}

fn presented(req: &HttpRequest) -> Result<Presented> {
    if let Some(key) = req.headers().get(API_KEY_HEADER) {
        let key = key
            .to_str()
            .map_err(|_| GatewayError::Unauthorized("malformed X-API-Key header"))?;
        return Ok(Presented::ApiKey(key.trim().to_owned()));
    }
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .ok_or(GatewayError::Unauthorized(
            "missing credentials: send Authorization: Bearer or X-API-Key",
        ))?
        .to_str()
        .map_err(|_| GatewayError::Unauthorized("malformed Authorization header"))?;
    let (scheme, value) = header.split_once(' ').ok_or(GatewayError::Unauthorized(
        "Authorization must be Bearer <token>",
    ))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(GatewayError::Unauthorized(
            "Authorization must be Bearer <token>",
        ));
    }
    let value = value.trim().to_owned();
    Ok(if ApiKeys::is_api_key(&value) {
        Presented::ApiKey(value)
    } else {
        Presented::AccessToken(value)
    })
}

/// The claims of a valid access token whose session has not ended (memory only: no storage).
fn access_claims(state: &AppState, token: &str) -> Result<AccessClaims> {
    let claims = state.tokens.verify(token)?;
    state.revocations.check(&claims)?;
    Ok(claims)
}

fn state(req: &HttpRequest) -> Result<web::Data<AppState>> {
    req.app_data::<web::Data<AppState>>()
        .cloned()
        .ok_or_else(|| GatewayError::Internal(anyhow::anyhow!("gateway state missing")))
}

fn organization_header(req: &HttpRequest) -> Result<Option<Id>> {
    req.headers()
        .get(ORGANIZATION_HEADER)
        .map(|v| {
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<Id>().ok())
                .ok_or_else(|| GatewayError::Invalid("X-Organization-ID must be a UUID".into()))
        })
        .transpose()
}

impl FromRequest for AuthUser {
    type Error = GatewayError;
    type Future = Pin<Box<dyn Future<Output = Result<Self>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let checked = state(req).and_then(|state| match presented(req)? {
            Presented::AccessToken(token) => {
                let claims = access_claims(&state, &token)?;
                Ok(Self {
                    user_id: claims.sub,
                    session_id: claims.sid,
                    family_id: claims.fam,
                })
            }
            Presented::ApiKey(_) => Err(GatewayError::Forbidden(
                "this action needs a user login, not an API key",
            )),
        });
        Box::pin(async move { checked })
    }
}

/// `POST /api/v1/guards/process` or `/scan`: the requests that reserve budget.
fn is_guard_call(req: &HttpRequest) -> bool {
    req.method() == actix_web::http::Method::POST
        && matches!(req.path(), "/api/v1/guards/process" | "/api/v1/guards/scan")
}

impl FromRequest for Caller {
    type Error = GatewayError;
    type Future = Pin<Box<dyn Future<Output = Result<Self>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let prepared = state(req).and_then(|s| Ok((s, presented(req)?, organization_header(req)?)));
        let req = req.clone();
        Box::pin(async move {
            let (state, presented, org_header) = prepared?;
            let needed = Scope::needed(req.method(), req.path());
            let caller = Self::authenticate(&state, presented, org_header, needed).await?;
            // Every authenticated request counts against the caller's rate limits; the decision
            // rides along for the X-RateLimit-* headers.
            let profile = state.org_profiles.get(caller.organization_id).await?;
            let class = EndpointClass::of(req.method(), req.path());
            let per_minute = state
                .config
                .requests_per_minute(profile.tier.as_deref(), profile.requests_per_minute);
            // A guard call's first budget reservation comes from this replica's lease of the
            // organisation's budget, or else a new lease rides in the same Redis round trip as
            // the rate-limit check. That call runs in its own task: if this request is cancelled
            // meanwhile (the client went, its body failed to parse), the task still sees the
            // reply and the reservation gives itself back.
            let client = caller.client_key();
            let burst = state.config.burst_share();
            let (org, budget) = (caller.organization_id, profile.monthly_budget_usd_micros);
            let guard_call = is_guard_call(&req) && budget > 0;
            let leased = if guard_call {
                state.budgets.take_leased(org, 1, budget)
            } else {
                None
            };
            let (limit, pre) = if guard_call && leased.is_none() {
                let lease = state.budgets.lease_request(org, 1, budget);
                let (tx, rx) = tokio::sync::oneshot::channel();
                let task_state = state.clone();
                tokio::spawn(async move {
                    let counter = (lease.key.as_str(), lease.amount, lease.ttl);
                    let decided = task_state
                        .rate_limiter
                        .decide(&client, class, per_minute, burst, Some(counter))
                        .await;
                    let decided = match decided {
                        Ok((limit, Some(total))) => {
                            let budgets = &task_state.budgets;
                            Ok((
                                limit,
                                Some(budgets.accept(org, lease, total, budget, 1).await),
                            ))
                        }
                        // No total: the handler reserves on its own.
                        other => other.map(|(limit, _)| (limit, None)),
                    };
                    // Unsent (the request is gone): the reservation drops and gives itself back.
                    let _ = tx.send(decided);
                });
                rx.await.map_err(|_| {
                    GatewayError::Internal(anyhow::anyhow!(
                        "the rate-limit task ended without an answer"
                    ))
                })??
            } else {
                let (limit, _) = state
                    .rate_limiter
                    .decide(&client, class, per_minute, burst, None)
                    .await?;
                (limit, leased)
            };
            let limit = match RateLimiter::enforce(limit) {
                Ok(limit) => limit,
                Err(refused) => {
                    if let Some(pre) = pre {
                        state.budgets.give_back(pre).await;
                    }
                    return Err(refused);
                }
            };
            let replaced = {
                let mut ext = req.extensions_mut();
                ext.insert(limit);
                ext.insert(Metered(caller.organization_id));
                // The handler reads the same profile instead of looking it up again.
                ext.insert(profile);
                pre.and_then(|pre| ext.insert(pre))
            };
            // A second extraction of the caller in one request replaced the first reservation.
            if let Some(old) = replaced {
                state.budgets.give_back(old).await;
            }
            Ok(caller)
        })
    }
}

impl Caller {
    async fn authenticate(
        state: &AppState,
        presented: Presented,
        org_header: Option<Id>,
        needed: Scope,
    ) -> Result<Self> {
        {
            match presented {
                Presented::ApiKey(secret) => {
                    let key = state.api_keys.authenticate(&secret).await?;
                    if org_header.is_some_and(|org| org != key.organization_id) {
                        return Err(GatewayError::NotFound("organization"));
                    }
                    if !key.scopes.contains(&needed) {
                        return Err(GatewayError::ForbiddenWith {
                            code: "insufficient_scope",
                            message: format!("this API key lacks the {} scope", needed.as_str()),
                            details: serde_json::json!({
                                "needed": needed,
                                "granted": key.scopes,
                            }),
                        });
                    }
                    Ok(Self {
                        organization_id: key.organization_id,
                        role: key.role,
                        user_id: None,
                        credential: Credential::ApiKey { key_id: key.id },
                    })
                }
                Presented::AccessToken(token) => {
                    let claims = access_claims(state, &token)?;
                    // Cached per replica, dropped on every replica when they change.
                    let memberships = state.memberships.of(claims.sub).await?;
                    let (organization_id, role) = match org_header {
                        Some(org) => memberships
                            .iter()
                            .find(|(o, _)| *o == org)
                            .copied()
                            .ok_or(GatewayError::NotFound("organization"))?,
                        None => memberships
                            .first()
                            .copied()
                            .ok_or(GatewayError::Forbidden("you belong to no organisation"))?,
                    };
                    Ok(Self {
                        organization_id,
                        role,
                        user_id: Some(claims.sub),
                        credential: Credential::User {
                            session_id: claims.sid,
                        },
                    })
                }
            }
        }
    }
}
