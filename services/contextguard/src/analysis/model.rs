//! The drift model: a logistic regression over the twelve similarity measures of
//! [`super::drift::Features`] (standardised), giving the probability that a turn starts a new
//! topic. Small enough to read: each weight says how much one measure pushes towards "drift".
//!
//! Trained by `codeguardians train contextguard` on the conversations of
//! `../shared/eval/drift/conversations_dev.jsonl` whose id ends in an even number; the odd ones are
//! held out for `codeguardians eval contextguard` (see [`is_held_out`]). Shipped as
//! `model/drift.json`, compiled into the binary, with the decision threshold tuned on the same
//! training conversations.

use std::sync::LazyLock;

use cg_learn::Logistic;
use serde::{Deserialize, Serialize};

use super::drift::FEATURE_NAMES;

/// Whether a drift conversation is held out from training and tuning: the last number of its id
/// (`drift-5-17` → 17) is odd.
pub fn is_held_out(id: &str) -> bool {
    id.rsplit('-')
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n % 2 == 1)
}

/// The logistic model with its input scaling and decision threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DriftModel {
    pub version: u32,
    /// The measures, in order ([`FEATURE_NAMES`]).
    pub features: Vec<String>,
    /// Standardisation and weights (serialised as top-level `mean`, `std`, `weights`, `bias`).
    #[serde(flatten)]
    pub logistic: Logistic,
    /// Drift is reported at or above this probability (the default of
    /// [`super::DriftSettings::threshold`]).
    pub threshold: f64,
    /// The topic decay the features were measured with (the default of
    /// [`super::DriftSettings::decay`]).
    pub decay: f64,
    /// Where the training data came from and what was left out.
    #[serde(default)]
    pub provenance: String,
}

impl DriftModel {
    /// The probability of drift for one feature vector.
    pub fn probability(&self, x: &[f64]) -> f64 {
        self.logistic.predict(x)
    }

    /// Whether the file matches the features this code measures.
    pub fn is_consistent(&self) -> bool {
        let n = FEATURE_NAMES.len();
        self.features.iter().map(String::as_str).eq(FEATURE_NAMES)
            && self.logistic.mean.len() == n
            && self.logistic.std.len() == n
            && self.logistic.weights.len() == n
            && self.logistic.std.iter().all(|s| *s > 0.0)
            && (0.0..=1.0).contains(&self.threshold)
            && (0.0..1.0).contains(&self.decay)
    }

    /// Fit by full-batch gradient descent on the standardised inputs with an L2 penalty `l2`
    /// (deterministic: same data, same model). `threshold` and `decay` are recorded as given.
    pub fn fit(xs: &[Vec<f64>], ys: &[bool], l2: f64, iterations: usize) -> Self {
        Self {
            version: 1,
            features: FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            logistic: Logistic::fit(xs, ys, l2, iterations),
            threshold: 0.5,
            decay: 0.7,
            provenance: String::new(),
        }
    }

    /// A hand-set model used only if the shipped file were unreadable (a test rules that out):
    /// drift when the turn shares little with the topic, by words or by meaning.
    fn fallback() -> Self {
        let n = FEATURE_NAMES.len();
        let mut weights = vec![0.0; n];
        for (w, name) in weights.iter_mut().zip(FEATURE_NAMES) {
            if matches!(name, "term_cosine" | "embedding_cosine") {
                *w = -6.0;
            }
        }
        Self {
            version: 0,
            features: FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
            logistic: Logistic {
                mean: vec![0.0; n],
                std: vec![1.0; n],
                weights,
                bias: 1.5,
            },
            threshold: 0.5,
            decay: 0.7,
            provenance: "fallback".into(),
        }
    }
}

static SHIPPED: LazyLock<DriftModel> = LazyLock::new(|| {
    serde_json::from_str::<DriftModel>(include_str!("../../model/drift.json"))
        .ok()
        .filter(DriftModel::is_consistent)
        .unwrap_or_else(DriftModel::fallback)
});

/// The shipped model (the fallback only if the file were malformed, which a test rules out).
pub fn shipped() -> &'static DriftModel {
    &SHIPPED
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_out_by_parity() {
        assert!(is_held_out("drift-5-17"));
        assert!(!is_held_out("drift-5-0"));
        assert!(!is_held_out("no-number"));
    }

    #[test]
    fn shipped_model_is_the_trained_one() {
        let m = shipped();
        assert!(m.is_consistent(), "{m:?}");
        assert_ne!(m.provenance, "fallback");
        assert!(m.version >= 1);
    }

    #[test]
    fn fit_separates_a_simple_rule() {
        // Drift when the first measure is low.
        let n = FEATURE_NAMES.len();
        let xs: Vec<Vec<f64>> = (0..200)
            .map(|i| {
                let mut x = vec![0.3; n];
                x[0] = f64::from(i % 20) / 20.0;
                x
            })
            .collect();
        let ys: Vec<bool> = xs.iter().map(|x| x[0] < 0.3).collect();
        let m = DriftModel::fit(&xs, &ys, 1e-4, 2000);
        let mut low = vec![0.3; n];
        low[0] = 0.05;
        let mut high = vec![0.3; n];
        high[0] = 0.9;
        assert!(m.probability(&low) > 0.9, "{m:?}");
        assert!(m.probability(&high) < 0.1, "{m:?}");
        assert!(m.logistic.weights[0] < 0.0);
    }
}
