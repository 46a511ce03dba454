//! TokenGuard's wire types (`POST /scan`, `/v1/analyze`, `/v1/prune`, `/v1/cost-estimate`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What every TokenGuard request carries: the text (`content` or `text`), and optionally the model
/// (which picks the encoding and the price) or the encoding itself.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TextInput {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub model: Option<String>,
    /// `cl100k_base` or `o200k_base`; wins over the model's.
    #[serde(default)]
    pub encoding: Option<String>,
}

/// `POST /scan`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ScanRequest {
    #[serde(flatten)]
    pub input: TextInput,
    /// The caller's confidence in the text, 0–1 (the old clients send it).
    #[serde(default)]
    pub confidence: Option<f64>,
    /// Log-probabilities of the answer: an array of positions (numbers, or OpenAI's
    /// `{token, logprob, top_logprobs}`), or OpenAI's `{"content": [...]}`.
    #[serde(default)]
    pub logprobs_stream: Option<Value>,
    #[serde(default)]
    pub target_tokens: Option<usize>,
}

/// Whether to prune, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// `prune` or `keep`.
    pub action: String,
    pub confidence: f64,
    pub reason: String,
    /// Tokens to keep.
    pub target_length: usize,
    /// Tokens now.
    pub original_length: usize,
    /// Tokens pruning to the target would save.
    pub estimated_savings: usize,
}

/// What the text costs as model input.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    pub model: String,
    pub input_tokens: usize,
    /// `null` when the model's price is unknown.
    pub usd: Option<f64>,
}

/// `POST /scan` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScanResponse {
    pub text_length: usize,
    pub token_count: usize,
    pub encoding: String,
    pub confidence_score: f64,
    pub decision: Decision,
    pub cost: Cost,
    pub recommendation: String,
    pub processing_time_ms: f64,
}

/// `POST /v1/prune`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PruneRequest {
    #[serde(flatten)]
    pub input: TextInput,
    #[serde(default)]
    pub target_tokens: Option<usize>,
}

/// `POST /v1/cost-estimate`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CostEstimateRequest {
    #[serde(flatten)]
    pub input: TextInput,
    /// Input tokens, when the text is not sent.
    #[serde(default)]
    pub input_tokens: Option<usize>,
    /// Expected answer length in tokens.
    #[serde(default)]
    pub output_tokens: Option<usize>,
}
