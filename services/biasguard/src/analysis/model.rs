//! The learned part: a logistic regression over the detectors' named features, the words and
//! word pairs of the text, and the same features keyed by the class of the group the text is
//! about (what marks bias against women differs from what marks it against Muslims). Every
//! weight has a readable name, so a verdict is explained by its largest contributions.
//!
//! Trained by `codeguardians train biasguard` on the RedditBias rows not held out plus, as
//! pairwise constraints, the CrowS-Pairs pairs not held out (the model should score the more
//! stereotyping sentence higher); shipped as `model/bias_model.json`, compiled in. Held out: rows
//! and pairs whose id ends in a number divisible by 3 ([`is_held_out`]).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{LazyLock, OnceLock};

use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};

use super::detect::Findings;
use super::text::Tokens;

const MODEL_JSON: &str = include_str!("../../model/bias_model.json");

/// Whether a RedditBias row or CrowS-Pairs pair is held out from training and tuning: its id
/// ends in a number divisible by 3 ("redditbias-…-123", "crows-42").
pub fn is_held_out(id: &str) -> bool {
    id.rsplit(['-', '_'])
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n % 3 == 0)
}

/// The shipped model.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ModelFile {
    pub version: u32,
    /// How the training rows were chosen.
    pub held_out: String,
    /// L2 penalty of the fit, chosen by cross-validation.
    pub l2: f64,
    /// The weight of one CrowS-Pairs constraint relative to a row, chosen by cross-validation.
    #[serde(default)]
    pub pair_weight: f64,
    /// The cross-validated balanced accuracy at `threshold` on the training rows.
    #[serde(default)]
    pub cv_balanced_accuracy: f64,
    /// The cross-validated pairwise accuracy on the training pairs.
    #[serde(default)]
    pub cv_pairwise_accuracy: f64,
    /// The logit at which a text counts as biased, tuned by cross-validation on the training
    /// rows for a false-positive rate of at most 20 %.
    pub threshold: f64,
    pub intercept: f64,
    /// Feature name → weight; absent features weigh 0.
    pub weights: BTreeMap<String, f64>,
    /// The same weights hashed, built on first use (scoring looks up every feature of a text).
    #[serde(skip)]
    pub(crate) lookup: OnceLock<HashMap<String, f64>>,
}

/// The model compiled into the binary; an unreadable file gives an empty model (every text
/// scores at the intercept), which the unit tests rule out.
pub static MODEL: LazyLock<ModelFile> =
    LazyLock::new(|| serde_json::from_str(MODEL_JSON).unwrap_or_default());

/// The complete feature vector: the detectors' features (among them the words said of a targeted
/// group, `p:`), the distinct words (`w:`) and adjacent word pairs (`b:`), and each of those again
/// keyed by the primary class (`race_ethnicity@…`).
pub fn features(findings: &Findings, tokens: &Tokens) -> BTreeMap<String, f64> {
    let mut out = findings.features.clone();
    let words: Vec<&str> = tokens.words.iter().map(|w| w.norm.as_str()).collect();
    let unique: BTreeSet<&str> = words.iter().copied().collect();
    for w in unique {
        out.insert(format!("w:{w}"), 1.0);
    }
    let pairs: BTreeSet<(&str, &str)> = words.windows(2).map(|p| (p[0], p[1])).collect();
    for (a, b) in pairs {
        out.insert(format!("b:{a}_{b}"), 1.0);
    }
    let class = findings.primary.map_or("none", |c| c.as_str());
    let keyed: Vec<(String, f64)> = out
        .iter()
        .filter(|(k, _)| !k.starts_with("class_") && k.as_str() != "len")
        .map(|(k, v)| (format!("{class}@{k}"), *v))
        .collect();
    out.extend(keyed);
    out
}

impl ModelFile {
    /// The logit and each feature's contribution to it (only features with a weight).
    pub fn score(&self, features: &BTreeMap<String, f64>) -> (f64, Vec<(String, f64)>) {
        let lookup = self
            .lookup
            .get_or_init(|| self.weights.iter().map(|(k, v)| (k.clone(), *v)).collect());
        let mut z = self.intercept;
        let mut parts = Vec::new();
        for (k, v) in features {
            if let Some(w) = lookup.get(k) {
                z += w * v;
                parts.push((k.clone(), w * v));
            }
        }
        (z, parts)
    }
}

pub use cg_learn::sparse::{Example, Fit, fit};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_rule() {
        assert!(is_held_out("redditbias-reddit_comments_gender_female-3"));
        assert!(!is_held_out("redditbias-reddit_comments_gender_female-4"));
        assert!(is_held_out("crows-6"));
        assert!(!is_held_out("crows-7"));
        assert!(!is_held_out("no-number"));
    }

    #[test]
    fn shipped_model_loads() {
        assert!(MODEL.version >= 1);
        assert!(MODEL.weights.len() > 100);
        assert!(MODEL.threshold.is_finite());
    }
}
