//! Confidence of a model's answer from its log-probabilities: over the last tokens, the share of
//! the probability mass listed for each position that the chosen token holds (its probability over
//! itself plus its listed alternatives), averaged. A position listing no alternatives contributes
//! the chosen token's own probability.

use serde::Deserialize;
use serde_json::Value;

/// Positions considered, counted from the end of the answer.
pub const LAST_TOKENS: usize = 20;

/// One position of a log-probability stream, in OpenAI's shape or as a bare log-probability.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Position {
    Bare(f64),
    Detailed {
        #[serde(default)]
        token: Option<String>,
        logprob: f64,
        #[serde(default)]
        top_logprobs: Vec<Alternative>,
    },
}

/// An alternative at one position.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Alternative {
    #[serde(default)]
    pub token: Option<String>,
    pub logprob: f64,
}

/// Parse a `logprobs_stream` value: an array of positions, or OpenAI's `{"content": [...]}`.
pub fn parse(stream: &Value) -> Result<Vec<Position>, String> {
    let array = match stream {
        Value::Array(_) => stream.clone(),
        Value::Object(o) if o.get("content").is_some_and(Value::is_array) => o["content"].clone(),
        _ => return Err("logprobs_stream must be an array of positions".into()),
    };
    serde_json::from_value(array).map_err(|e| format!("logprobs_stream: {e}"))
}

/// Confidence in 0–1, or `None` for an empty stream.
pub fn from_logprobs(positions: &[Position]) -> Option<f64> {
    let tail = &positions[positions.len().saturating_sub(LAST_TOKENS)..];
    if tail.is_empty() {
        return None;
    }
    let share = |p: &Position| -> f64 {
        match p {
            Position::Bare(lp) => lp.exp(),
            Position::Detailed {
                token,
                logprob,
                top_logprobs,
            } => {
                let chosen = logprob.exp();
                let alternatives: f64 = top_logprobs
                    .iter()
                    .filter(|a| a.token.is_none() || a.token != *token)
                    .map(|a| a.logprob.exp())
                    .sum();
                if alternatives > 0.0 {
                    chosen / (chosen + alternatives)
                } else {
                    chosen
                }
            }
        }
    };
    let mean = tail.iter().map(|p| share(p).clamp(0.0, 1.0)).sum::<f64>() / tail.len() as f64;
    Some(mean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn certain_and_torn_answers() {
        let certain = parse(&json!([0.0, 0.0, 0.0])).unwrap();
        assert_eq!(from_logprobs(&certain), Some(1.0));
        // Chosen 0.5, one alternative 0.5: share 0.5.
        let torn = parse(
            &json!({"content": [{"token": "a", "logprob": 0.5f64.ln(), "top_logprobs": [
            {"token": "a", "logprob": 0.5f64.ln()}, {"token": "b", "logprob": 0.5f64.ln()}]}]}),
        )
        .unwrap();
        assert!((from_logprobs(&torn).unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(from_logprobs(&[]), None);
        assert!(parse(&json!("nope")).is_err());
    }

    #[test]
    fn only_the_last_tokens_count() {
        let mut stream = vec![Position::Bare(f64::NEG_INFINITY); 100];
        stream.extend(std::iter::repeat_n(Position::Bare(0.0), LAST_TOKENS));
        assert_eq!(from_logprobs(&stream), Some(1.0));
    }
}
