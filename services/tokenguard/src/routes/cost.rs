use actix_web::{HttpResponse, web};
use cg_guard_api::tokenguard::CostEstimateRequest;
use cg_service_kit::ApiError;
use serde_json::json;

use super::{off_thread, resolve};
use crate::state::TokenState;

/// `POST /v1/cost-estimate`: the price of a call, from the text or a token count, plus the expected
/// answer length.
pub async fn estimate(
    state: web::Data<TokenState>,
    body: web::Json<CostEstimateRequest>,
) -> Result<HttpResponse, ApiError> {
    let (model, encoding) = resolve(&state, &body.input)?;
    let text = body
        .input
        .content
        .clone()
        .or_else(|| body.input.text.clone());
    let input_tokens = match (text, body.input_tokens) {
        (Some(t), _) => off_thread(t.len(), move || encoding.count(&t)).await?,
        (None, Some(n)) => n,
        (None, None) => {
            return Err(ApiError::unprocessable(
                "send content (or text) or input_tokens",
            ));
        }
    };
    let output_tokens = body.output_tokens.unwrap_or(0);
    let (priced_as, price) = state
        .prices
        .get(&model)
        .ok_or_else(|| ApiError::unprocessable(format!("no price known for model {model:?}")))?;
    Ok(HttpResponse::Ok().json(json!({
        "model": model,
        "priced_as": priced_as,
        "encoding": encoding.name(),
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "input_usd": price.usd(input_tokens, 0),
        "output_usd": price.usd(0, output_tokens),
        "total_usd": price.usd(input_tokens, output_tokens),
        "price_per_million": {"input": price.input, "output": price.output},
    })))
}
