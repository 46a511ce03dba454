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

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test};
    use futures::future::BoxFuture;
    use secrecy::SecretString;

    use super::*;
    use crate::health::{HealthReport, Readiness};
    use crate::observe::observe;

    struct AlwaysReady;
    impl Readiness for AlwaysReady {
        fn check(&self) -> BoxFuture<'_, HealthReport> {
            Box::pin(async { HealthReport::default() })
        }
    }

    #[actix_web::test]
    async fn guard_routes_need_the_exact_token() {
        let kit = Kit::new(
            "test",
            "0",
            Arc::new(AlwaysReady),
            SecretString::from("s3cret-token-0123456789"),
        );
        let app = test::init_service(
            App::new()
                .app_data(web::Data::new(kit))
                .service(
                    web::scope("/guarded")
                        .wrap(from_fn(require_internal_token))
                        .route("", web::get().to(HttpResponse::Ok)),
                )
                .wrap(from_fn(observe)),
        )
        .await;
        for token in [
            None,
            Some("wrong"),
            Some("s3cret-token-012345678"),
            Some(""),
        ] {
            let mut req = test::TestRequest::get()
                .uri("/guarded")
                .insert_header(("x-request-id", "r-1"));
            if let Some(t) = token {
                req = req.insert_header((INTERNAL_TOKEN_HEADER, t));
            }
            let resp = test::call_service(&app, req.to_request()).await;
            assert_eq!(resp.status().as_u16(), 401, "{token:?}");
            let body: serde_json::Value = test::read_body_json(resp).await;
            assert_eq!(body["error"]["code"], "unauthorized");
            assert_eq!(body["error"]["request_id"], "r-1");
        }
        let req = test::TestRequest::get()
            .uri("/guarded")
            .insert_header((INTERNAL_TOKEN_HEADER, "s3cret-token-0123456789"))
            .to_request();
        assert_eq!(test::call_service(&app, req).await.status().as_u16(), 200);
    }
}
