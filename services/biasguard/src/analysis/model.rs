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

use cg_learn::sigmoid;
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

/// A logistic regression fitted by full-batch Adam on sparse rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Fit {
    pub weights: Vec<f64>,
    pub intercept: f64,
}

/// One training example: sparse features (index, value), a 0/1 target and a weight. Pairwise
/// constraints enter as the difference of two rows with target 1, with no intercept.
#[derive(Debug, Clone)]
pub struct Example {
    pub x: Vec<(usize, f64)>,
    pub y: f64,
    pub weight: f64,
    pub use_intercept: bool,
}

/// Minimise Σ weight·log-loss + l2/2·‖w‖² (the intercept is not penalised).
pub fn fit(examples: &[Example], dims: usize, l2: f64, iterations: usize) -> Fit {
    let (b1, b2, eps, rate) = (0.9, 0.999, 1e-8, 0.05);
    let mut w = vec![0.0; dims];
    let mut bias = 0.0;
    let (mut m, mut v) = (vec![0.0; dims + 1], vec![0.0; dims + 1]);
    let mut grad = vec![0.0; dims + 1];
    let total: f64 = examples.iter().map(|e| e.weight).sum::<f64>().max(1e-12);
    for step in 1..=iterations {
        grad.iter_mut().for_each(|g| *g = 0.0);
        for e in examples {
            let z = e.x.iter().map(|(i, x)| w[*i] * x).sum::<f64>()
                + if e.use_intercept { bias } else { 0.0 };
            let d = (sigmoid(z) - e.y) * e.weight;
            for (i, x) in &e.x {
                grad[*i] += d * x;
            }
            if e.use_intercept {
                grad[dims] += d;
            }
        }
        for (i, g) in grad.iter_mut().enumerate().take(dims) {
            *g = (*g + l2 * w[i]) / total;
        }
        grad[dims] /= total;
        let t = f64::from(u32::try_from(step).unwrap_or(u32::MAX));
        for i in 0..=dims {
            m[i] = b1 * m[i] + (1.0 - b1) * grad[i];
            v[i] = b2 * v[i] + (1.0 - b2) * grad[i] * grad[i];
            let mh = m[i] / (1.0 - b1.powf(t));
            let vh = v[i] / (1.0 - b2.powf(t));
            let delta = rate * mh / (vh.sqrt() + eps);
            if i == dims {
                bias -= delta;
            } else {
                w[i] -= delta;
            }
        }
    }
    Fit {
        weights: w,
        intercept: bias,
    }
}

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

    #[test]
    fn fit_separates_a_separable_problem() {
        let ex = |i: usize, y: f64| Example {
            x: vec![(i, 1.0)],
            y,
            weight: 1.0,
            use_intercept: true,
        };
        let data = [ex(0, 1.0), ex(0, 1.0), ex(1, 0.0), ex(1, 0.0)];
        let f = fit(&data, 2, 0.1, 500);
        assert!(f.weights[0] > 1.0 && f.weights[1] < -1.0, "{f:?}");
    }
}
