//! ContextGuard's routes; every one needs the internal token.

mod conversation;
mod memory;

pub use conversation::{Turn, window};

use actix_web::middleware::from_fn;
use actix_web::web;
use cg_service_kit::internal_auth::require_internal_token;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let guarded = || from_fn(require_internal_token);
    cfg.service(
        web::resource("/memory")
            .wrap(guarded())
            .route(web::post().to(memory::put))
            .route(web::get().to(memory::list)),
    )
    .service(
        web::resource("/memory/{key:.+}")
            .wrap(guarded())
            .route(web::get().to(memory::get))
            .route(web::delete().to(memory::delete)),
    )
    .service(
        web::resource("/analyze")
            .wrap(guarded())
            .route(web::post().to(conversation::analyze)),
    )
    .service(
        web::resource("/v1/drift")
            .wrap(guarded())
            .route(web::post().to(conversation::drift)),
    )
    .service(
        web::resource("/v1/conversations/{session}")
            .wrap(guarded())
            .route(web::get().to(conversation::show))
            .route(web::delete().to(conversation::forget)),
    )
    .service(
        web::resource("/v1/conversations/{session}/relevant")
            .wrap(guarded())
            .route(web::get().to(conversation::relevant)),
    )
    .service(
        web::resource("/v1/config/drift")
            .wrap(guarded())
            .route(web::get().to(conversation::get_thresholds))
            .route(web::put().to(conversation::put_thresholds)),
    );
}
