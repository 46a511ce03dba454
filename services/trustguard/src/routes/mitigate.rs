//! `POST /v1/mitigate`: the content with the sentences that carry the problems taken out: those
//! with names or numbers the context does not support, repeats, and the later sentence of a
//! contradiction. Each removal is listed with its reason.

use actix_web::{HttpResponse, web};
use cg_service_kit::ApiError;
use serde_json::json;

use super::ValidateRequest;
use crate::analysis::{Input, detectors, grounding, validate};

pub async fn mitigate(body: web::Json<ValidateRequest>) -> Result<HttpResponse, ApiError> {
    let content = body.content()?.to_owned();
    let context = body.context.clone();
    let question = body.question.clone();
    let task = body.task()?;
    let answer = web::block(move || {
        let before = validate(&Input {
            content: &content,
            context: context.as_deref(),
            question: question.as_deref(),
            task,
        });
        let mut flagged: Vec<(std::ops::Range<usize>, &'static str)> = Vec::new();
        if let Some(ctx) = context.as_deref() {
            let g = grounding::measure(&content, ctx, question.as_deref().unwrap_or(""));
            for u in g.evidence.iter().filter(|u| u.kind != "word") {
                flagged.push((
                    u.span.clone(),
                    if u.kind == "number" {
                        "unsupported number"
                    } else {
                        "unsupported name"
                    },
                ));
            }
        }
        for s in detectors::duplication(&content).evidence {
            flagged.push((s.span, "repeated sentence"));
        }
        let contradiction = detectors::contradiction(&content).evidence;
        for pair in contradiction.chunks(2) {
            if let Some(later) = pair.get(1) {
                flagged.push((later.span.clone(), "contradicts an earlier sentence"));
            }
        }
        let mut kept = String::new();
        let mut removed = Vec::new();
        for s in detectors::sentence_spans(&content) {
            let reason = flagged
                .iter()
                .find(|(f, _)| f.start < s.end && s.start < f.end)
                .map(|(_, r)| *r);
            match reason {
                Some(r) => removed.push(json!({"text": content[s.clone()].trim(), "reason": r})),
                None => kept.push_str(&content[s]),
            }
        }
        let kept = kept.trim().to_owned();
        let after = validate(&Input {
            content: &kept,
            context: context.as_deref(),
            question: question.as_deref(),
            task,
        });
        json!({
            "mitigated_content": kept,
            "removed": removed,
            "overall_score_before": before.overall_score,
            "overall_score_after": after.overall_score,
            "risk_level_after": after.risk_level,
        })
    })
    .await
    .map_err(ApiError::internal)?;
    Ok(HttpResponse::Ok().json(answer))
}
