//! TokenGuard's routes; every one needs the internal token.

mod analyze;
mod cost;
mod prune;
mod scan;

use actix_web::middleware::from_fn;
use actix_web::web;
use cg_guard_api::tokenguard::TextInput;
use cg_service_kit::ApiError;
use cg_service_kit::internal_auth::require_internal_token;

use crate::analysis::Encoding;
use crate::state::TokenState;

/// Texts shorter than this are counted on the request thread; longer ones on the blocking pool.
const INLINE_BYTES: usize = 64 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Per resource, so an unknown path is still a plain 404.
    cfg.service(
        web::resource("/scan")
            .wrap(from_fn(require_internal_token))
            .route(web::post().to(scan::scan)),
    )
    .service(
        web::resource("/v1/analyze")
            .wrap(from_fn(require_internal_token))
            .route(web::post().to(analyze::analyze)),
    )
    .service(
        web::resource("/v1/prune")
            .wrap(from_fn(require_internal_token))
            .route(web::post().to(prune::prune)),
    )
    .service(
        web::resource("/v1/cost-estimate")
            .wrap(from_fn(require_internal_token))
            .route(web::post().to(cost::estimate)),
    );
}

/// The text of a request (`content`, else `text`); required.
fn text_of(input: &TextInput) -> Result<String, ApiError> {
    input
        .content
        .clone()
        .or_else(|| input.text.clone())
        .ok_or_else(|| ApiError::unprocessable("content (or text) is required"))
}

/// The model and the encoding a request resolves to.
fn resolve(state: &TokenState, input: &TextInput) -> Result<(String, Encoding), ApiError> {
    let model = input
        .model
        .clone()
        .filter(|m| !m.trim().is_empty())
        .unwrap_or_else(|| state.default_model.clone());
    let encoding = match &input.encoding {
        Some(e) => e.parse().map_err(ApiError::unprocessable)?,
        None => Encoding::for_model(&model).ok_or_else(|| {
            ApiError::unprocessable(format!(
                "unknown model {model:?}: name a known model or pass encoding (cl100k_base or o200k_base)"
            ))
        })?,
    };
    Ok((model, encoding))
}

/// Run CPU-heavy work on the blocking pool when the text is long.
async fn off_thread<T: Send + 'static>(
    len: usize,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    if len < INLINE_BYTES {
        Ok(work())
    } else {
        web::block(work).await.map_err(ApiError::internal)
    }
}
