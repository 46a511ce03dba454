//! `payload.file_id` in `/api/v1/guards/process`: the file's text replaces the id, so the guards
//! check a stored file like inline text. A JSON Lines file also becomes HealthGuard `samples`.

use cg_storage::models::StoredFile;
use cg_storage::sql_types::Id;
use serde_json::{Map, Value, json};

use super::owned;
use crate::error::{GatewayError, Result};
use crate::state::AppState;

fn invalid(message: String) -> GatewayError {
    GatewayError::BadRequest {
        code: "invalid_payload",
        message,
        details: json!({"field": "payload.file_id"}),
    }
}

/// Replace `payload.file_id` (when present) by the file's text: `text`, and `samples` for a
/// JSON Lines file, unless the payload already has them.
pub async fn expand_file_id(
    state: &AppState,
    organization_id: Id,
    payload: &mut Value,
) -> Result<()> {
    let Some(map) = payload.as_object_mut() else {
        return Ok(());
    };
    let Some(raw) = map.remove("file_id") else {
        return Ok(());
    };
    let id: Id = raw
        .as_str()
        .and_then(|s| s.trim().parse().ok())
        .ok_or_else(|| invalid("payload.file_id must be a file's id (a UUID)".into()))?;
    let file = owned(state, organization_id, id).await?;
    let text = state.files.read_text(&file).await?;
    if is_json_lines(&file) && !map.contains_key("samples") {
        map.insert("samples".into(), Value::Array(samples(&text)?));
    }
    if !map.contains_key("text") && !map.contains_key("content") {
        map.insert("text".into(), Value::String(text));
    }
    Ok(())
}

fn is_json_lines(file: &StoredFile) -> bool {
    file.content_type == "application/x-ndjson"
}

/// One sample per non-empty line: an object's `content` (or `text`) and `id`, or a string.
fn samples(text: &str) -> Result<Vec<Value>> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(line).map_err(|e| {
            invalid(format!(
                "line {} of the JSON Lines file is not JSON: {e}",
                n + 1
            ))
        })?;
        let id = value
            .get("id")
            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
            .unwrap_or_else(|| n.to_string());
        let content = match &value {
            Value::String(s) => s.clone(),
            Value::Object(o) => match o.get("content").or_else(|| o.get("text")) {
                Some(Value::String(s)) => s.clone(),
                _ => {
                    return Err(invalid(format!(
                        "line {} of the JSON Lines file has no string content or text",
                        n + 1
                    )));
                }
            },
            _ => {
                return Err(invalid(format!(
                    "line {} of the JSON Lines file is neither an object nor a string",
                    n + 1
                )));
            }
        };
        let mut sample = Map::new();
        sample.insert("id".into(), Value::String(id));
        sample.insert("content".into(), Value::String(content));
        out.push(Value::Object(sample));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::samples;

    #[test]
    fn json_lines_become_samples() {
        let got = samples(
            "{\"id\": \"a\", \"content\": \"x\"}\n\n\"plain\"\n{\"text\": \"y\", \"id\": 7}\n",
        )
        .expect("valid");
        assert_eq!(
            serde_json::Value::Array(got),
            serde_json::json!([
                {"id": "a", "content": "x"},
                {"id": "2", "content": "plain"},
                {"id": "7", "content": "y"},
            ])
        );
        assert!(samples("{\"id\": 1}\n").is_err());
        assert!(samples("not json\n").is_err());
    }
}
