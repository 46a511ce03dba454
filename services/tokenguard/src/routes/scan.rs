use std::time::Instant;

use actix_web::{HttpResponse, web};
use cg_guard_api::tokenguard::{Cost, Decision, ScanRequest, ScanResponse};
use cg_service_kit::ApiError;

use super::{off_thread, resolve, text_of};
use crate::analysis::confidence;
use crate::state::TokenState;

/// `POST /scan`: count, price, and decide whether the text should be pruned (the old rule: prune
/// when confidence is below the threshold or the text is long).
pub async fn scan(
    state: web::Data<TokenState>,
    body: web::Json<ScanRequest>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let text = text_of(&body.input)?;
    let (model, encoding) = resolve(&state, &body.input)?;
    let confidence = match (body.confidence, &body.logprobs_stream) {
        (Some(c), _) if (0.0..=1.0).contains(&c) => c,
        (Some(_), _) => {
            return Err(ApiError::unprocessable(
                "confidence must be between 0 and 1",
            ));
        }
        (None, Some(stream)) => {
            confidence::from_logprobs(&confidence::parse(stream).map_err(ApiError::unprocessable)?)
                .unwrap_or(1.0)
        }
        (None, None) => 1.0,
    };
    let chars = text.chars().count();
    let tokens = off_thread(text.len(), move || encoding.count(&text)).await?;

    let long = tokens > state.long_text_tokens;
    let unsure = confidence < state.confidence_threshold;
    let target = match body.target_tokens {
        Some(t) => t.min(tokens),
        None if long => state.long_text_tokens,
        None if unsure => ((tokens as f64) * confidence.max(0.3)).ceil() as usize,
        None => tokens,
    };
    let prune =
        (long || unsure || body.target_tokens.is_some_and(|t| t < tokens)) && target < tokens;
    let reason = match (long, unsure) {
        (true, true) => format!(
            "{tokens} tokens exceed {} and confidence {confidence:.2} is below {:.2}",
            state.long_text_tokens, state.confidence_threshold
        ),
        (true, false) => format!("{tokens} tokens exceed {}", state.long_text_tokens),
        (false, true) => format!(
            "confidence {confidence:.2} is below {:.2}",
            state.confidence_threshold
        ),
        (false, false) if prune => format!("{tokens} tokens exceed the requested {target}"),
        (false, false) => "within length and confidence limits".to_owned(),
    };
    let price = state.prices.get(&model);
    let savings = if prune { tokens - target } else { 0 };
    let recommendation = if prune {
        match price {
            Some((_, p)) => format!(
                "prune to about {target} tokens (saves {savings} tokens, ${:.6} per call)",
                p.usd(savings, 0)
            ),
            None => format!("prune to about {target} tokens (saves {savings} tokens)"),
        }
    } else {
        "keep as is".to_owned()
    };
    Ok(HttpResponse::Ok().json(ScanResponse {
        text_length: chars,
        token_count: tokens,
        encoding: encoding.name().to_owned(),
        confidence_score: confidence,
        decision: Decision {
            action: if prune { "prune" } else { "keep" }.to_owned(),
            confidence,
            reason,
            target_length: if prune { target } else { tokens },
            original_length: tokens,
            estimated_savings: savings,
        },
        cost: Cost {
            model,
            input_tokens: tokens,
            usd: price.map(|(_, p)| p.usd(tokens, 0)),
        },
        recommendation,
        processing_time_ms: started.elapsed().as_secs_f64() * 1000.0,
    }))
}
