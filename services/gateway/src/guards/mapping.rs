//! The generic payload of `/api/v1/guards/process` mapped to each guard's own request, and the
//! path it is sent to. `text` and `content` are aliases; each guard gets the name it expects.

use cg_guard_api::GuardKind;
use serde_json::{Map, Value, json};

/// Fields that carry the caller's input (or who it belongs to) in some guard's request: an A/B
/// variant's guard options may not set them, so a variant changes how a guard judges the text,
/// never which text it judges.
pub const INPUT_FIELDS: [&str; 20] = [
    "text",
    "content",
    "response",
    "answer",
    "prompt",
    "query",
    "context",
    "sources",
    "documents",
    "samples",
    "current_code",
    "previous_code",
    "code",
    "messages",
    "turns",
    "conversation",
    "session_id",
    "conversation_id",
    "user_id",
    "organization_id",
];

/// The guard endpoint that analyses a payload.
pub fn path(kind: GuardKind) -> &'static str {
    match kind {
        GuardKind::TokenGuard => "/scan",
        GuardKind::TrustGuard => "/v1/validate",
        GuardKind::ContextGuard => "/analyze",
        GuardKind::BiasGuard => "/process",
        GuardKind::HealthGuard => "/analyze",
    }
}

fn alias(map: &mut Map<String, Value>, want: &str, from: &[&str]) {
    if map.contains_key(want) {
        return;
    }
    for name in from {
        if let Some(v) = map.get(*name).cloned() {
            map.insert(want.to_owned(), v);
            return;
        }
    }
}

/// The request body for `kind`, built from the caller's payload (an object; validated before).
pub fn request(kind: GuardKind, payload: Map<String, Value>) -> Value {
    let mut map = payload;
    match kind {
        GuardKind::TokenGuard => alias(&mut map, "content", &["text"]),
        GuardKind::TrustGuard => {
            alias(&mut map, "content", &["text", "response", "answer"]);
            let kind = if map.contains_key("context") {
                "grounding"
            } else {
                "general"
            };
            map.entry("validation_type")
                .or_insert_with(|| Value::String(kind.into()));
        }
        GuardKind::ContextGuard => alias(&mut map, "current_code", &["text", "content"]),
        GuardKind::BiasGuard => {
            alias(&mut map, "text", &["content"]);
            map.entry("operation")
                .or_insert_with(|| Value::String("detect_bias".into()));
        }
        GuardKind::HealthGuard => {
            if !map.contains_key("samples")
                && let Some(text) = map.get("text").or_else(|| map.get("content")).cloned()
            {
                map.insert("samples".into(), json!([{"id": "0", "content": text}]));
            }
        }
    }
    Value::Object(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn aliases_and_defaults() {
        let p = obj(json!({"text": "hello"}));
        assert_eq!(
            request(GuardKind::TokenGuard, p.clone())["content"],
            "hello"
        );
        assert_eq!(
            request(GuardKind::BiasGuard, p.clone())["operation"],
            "detect_bias"
        );
        assert_eq!(
            request(GuardKind::ContextGuard, p.clone())["current_code"],
            "hello"
        );
        assert_eq!(
            request(GuardKind::HealthGuard, p.clone())["samples"][0]["content"],
            "hello"
        );
        let t = request(
            GuardKind::TrustGuard,
            obj(json!({"text": "x", "context": "y"})),
        );
        assert_eq!(
            (t["content"].as_str(), t["validation_type"].as_str()),
            (Some("x"), Some("grounding"))
        );
        // What the caller set is kept.
        let b = request(
            GuardKind::BiasGuard,
            obj(json!({"content": "a", "text": "b", "operation": "mitigate"})),
        );
        assert_eq!(
            (b["text"].as_str(), b["operation"].as_str()),
            (Some("b"), Some("mitigate"))
        );
    }
}
