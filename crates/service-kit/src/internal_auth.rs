//! The internal-token check on guard routes: only the gateway, which holds `CG_INTERNAL_TOKEN`,
//! may call a guard. Compared in constant time.

use actix_web::ResponseError;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::server::Kit;

/// `X-Internal-Token`.
pub const INTERNAL_TOKEN_HEADER: &str = "x-internal-token";

/// Middleware (install with `actix_web::middleware::from_fn` on the guard's routes).
pub async fn require_internal_token(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let expected = req
        .app_data::<web::Data<Kit>>()
        .map(|kit| kit.internal_token.expose_secret().as_bytes().to_vec())
        .unwrap_or_default();
    let given = req
        .headers()
        .get(INTERNAL_TOKEN_HEADER)
        .map(|v| v.as_bytes())
        .unwrap_or_default();
    let matches = !expected.is_empty() && bool::from(expected.as_slice().ct_eq(given));
    if !matches {
        let response = ApiError::unauthorized("missing or invalid internal token").error_response();
        return Ok(req.into_response(response).map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}
