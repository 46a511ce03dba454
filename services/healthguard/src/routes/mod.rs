//! HealthGuard's routes; every one needs the internal token.

mod analyze;
mod audit;

use actix_web::middleware::from_fn;
use actix_web::web;
use cg_service_kit::internal_auth::require_internal_token;

pub fn configure(cfg: &mut web::ServiceConfig) {
    let routes: [(&str, actix_web::Route); 5] = [
        ("/analyze", web::post().to(analyze::analyze)),
        ("/mitigate", web::post().to(analyze::mitigate)),
        ("/report", web::post().to(analyze::report)),
        ("/audit/analysis", web::get().to(audit::analysis)),
        ("/audit/system", web::get().to(audit::system)),
    ];
    for (path, route) in routes {
        cfg.service(
            web::resource(path)
                .wrap(from_fn(require_internal_token))
                .route(route),
        );
    }
}
