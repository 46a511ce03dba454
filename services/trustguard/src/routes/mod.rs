//! TrustGuard's routes; every one needs the internal token.

mod mitigate;
mod validate;

use actix_web::middleware::from_fn;
use actix_web::web;
use cg_service_kit::internal_auth::require_internal_token;

pub use validate::ValidateRequest;

pub fn configure(cfg: &mut web::ServiceConfig) {
    for path in ["/validate", "/v1/validate"] {
        cfg.service(
            web::resource(path)
                .wrap(from_fn(require_internal_token))
                .route(web::post().to(validate::validate)),
        );
    }
    cfg.service(
        web::resource("/v1/detect")
            .wrap(from_fn(require_internal_token))
            .route(web::post().to(validate::detect)),
    )
    .service(
        web::resource("/v1/mitigate")
            .wrap(from_fn(require_internal_token))
            .route(web::post().to(mitigate::mitigate)),
    );
}
