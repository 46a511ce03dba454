use std::time::Instant;

use actix_web::{HttpResponse, web};
use cg_guard_api::tokenguard::TextInput;
use cg_service_kit::ApiError;
use serde_json::json;

use super::{off_thread, resolve, text_of};
use crate::analysis::Encoding;
use crate::analysis::text::{sentence_key, sentences, word_count};
use crate::state::TokenState;

/// `POST /v1/analyze`: counts in both encodings, words, sentences, repetition, and the cost.
pub async fn analyze(
    state: web::Data<TokenState>,
    body: web::Json<TextInput>,
) -> Result<HttpResponse, ApiError> {
    let started = Instant::now();
    let text = text_of(&body)?;
    let (model, encoding) = resolve(&state, &body)?;
    let figures = off_thread(text.len(), move || {
        let parts = sentences(&text);
        let mut seen = std::collections::HashSet::new();
        let repeated = parts
            .iter()
            .filter(|s| !seen.insert(sentence_key(s.text)))
            .count();
        (
            Encoding::Cl100kBase.count(&text),
            Encoding::O200kBase.count(&text),
            text.chars().count(),
            word_count(&text),
            parts.len(),
            repeated,
        )
    })
    .await?;
    let (cl100k, o200k, chars, words, sentence_count, repeated) = figures;
    let tokens = if encoding == Encoding::Cl100kBase {
        cl100k
    } else {
        o200k
    };
    let price = state.prices.get(&model);
    Ok(HttpResponse::Ok().json(json!({
        "model": model,
        "encoding": encoding.name(),
        "token_count": tokens,
        "token_counts": {"cl100k_base": cl100k, "o200k_base": o200k},
        "character_count": chars,
        "word_count": words,
        "sentence_count": sentence_count,
        "repeated_sentences": repeated,
        "tokens_per_word": if words == 0 { 0.0 } else { tokens as f64 / words as f64 },
        "cost": {"model": model, "input_tokens": tokens, "usd": price.map(|(_, p)| p.usd(tokens, 0))},
        "processing_time_ms": started.elapsed().as_secs_f64() * 1000.0,
    })))
}
