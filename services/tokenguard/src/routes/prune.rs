use std::time::Instant;

use actix_web::{HttpResponse, web};
use cg_guard_api::tokenguard::PruneRequest;
use cg_service_kit::ApiError;
use serde_json::json;

use super::{off_thread, resolve, text_of};
use crate::analysis::prune::prune as prune_text;
use crate::state::TokenState;

/// `POST /v1/prune`: normalise, drop repetition, cut to `target_tokens` at a sentence boundary.
pub async fn prune(
    state: web::Data<TokenState>,
    body: web::Json<PruneRequest>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let text = text_of(&body.input)?;
    let (model, encoding) = resolve(&state, &body.input)?;
    let target = body.target_tokens;
    if target == Some(0) {
        return Err(ApiError::unprocessable("target_tokens must be positive"));
    }
    let pruned = off_thread(text.len(), move || prune_text(&text, encoding, target)).await?;
    let saved = pruned.original_tokens.saturating_sub(pruned.tokens);
    let price = state.prices.get(&model);
    Ok(HttpResponse::Ok().json(json!({
        "pruned_text": pruned.text,
        "original_tokens": pruned.original_tokens,
        "pruned_tokens": pruned.tokens,
        "tokens_saved": saved,
        "usd_saved": price.map(|(_, p)| p.usd(saved, 0)),
        "within_target": pruned.within_target,
        "target_tokens": target,
        "encoding": encoding.name(),
        "model": model,
        "steps": pruned.steps,
        "processing_time_ms": started.elapsed().as_secs_f64() * 1000.0,
    })))
}
