//! The grounding model: logistic regression over [`grounding::FEATURE_NAMES`], one per kind of
//! text (question answering, dialogue, summarisation), with standardised inputs. Trained by
//! `codeguardians train trustguard` on the rows of the HaluEval dev files not held out for
//! evaluation (pairs whose number is divisible by 4 are held out), and shipped as
//! `model/grounding.json`, compiled into the binary.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};

use super::grounding::FEATURE_NAMES;

/// What kind of text is being checked; picks the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Task {
    Qa,
    Dialogue,
    Summarization,
}

impl Task {
    pub const ALL: [Self; 3] = [Self::Qa, Self::Dialogue, Self::Summarization];

    pub fn name(self) -> &'static str {
        match self {
            Self::Qa => "qa",
            Self::Dialogue => "dialogue",
            Self::Summarization => "summarization",
        }
    }

    /// Guess from the shape of the input: a dialogue history marks a dialogue, no question with a
    /// long source marks a summary, anything else is question answering.
    pub fn detect(question: &str, context: &str) -> Self {
        let q = question.trim();
        if q.contains("[Human]") || q.contains("[Assistant]") || q.contains("[User]") {
            Self::Dialogue
        } else if q.is_empty() && context.split_whitespace().count() > 120 {
            Self::Summarization
        } else {
            Self::Qa
        }
    }
}

impl std::str::FromStr for Task {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|t| t.name() == s.trim().to_ascii_lowercase())
            .ok_or_else(|| format!("unknown task {s:?}; use qa, dialogue or summarization"))
    }
}

/// Whether a HaluEval row is held out from training (its pair's number is divisible by 4), so
/// training and evaluation agree on which rows were never seen.
pub fn is_held_out(id: &str) -> bool {
    // "halueval-qa-123-right" → pair "halueval-qa-123" → 123
    id.rsplit_once('-')
        .and_then(|(pair, _)| pair.rsplit_once('-'))
        .and_then(|(_, n)| n.parse::<u64>().ok())
        .is_some_and(|n| n % 4 == 0)
}

/// One logistic model with its input scaling.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub weights: Vec<f64>,
    pub bias: f64,
}

impl Logistic {
    /// Probability that the input is hallucinated.
    pub fn predict(&self, x: &[f64]) -> f64 {
        let z: f64 = self.bias
            + x.iter()
                .zip(&self.mean)
                .zip(&self.std)
                .zip(&self.weights)
                .map(|(((x, m), s), w)| w * (x - m) / s)
                .sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }

    /// Each feature's push on the log-odds (its weight times its standardised value), for
    /// explanations.
    pub fn contributions(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(&self.mean)
            .zip(&self.std)
            .zip(&self.weights)
            .map(|(((x, m), s), w)| w * (x - m) / s)
            .collect()
    }
}

/// The shipped file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    pub version: u32,
    pub features: Vec<String>,
    pub held_out: String,
    pub models: BTreeMap<Task, Logistic>,
}

static SHIPPED: LazyLock<Option<ModelFile>> = LazyLock::new(|| {
    serde_json::from_str::<ModelFile>(include_str!("../../model/grounding.json"))
        .ok()
        .filter(|m| m.features == FEATURE_NAMES && m.models.len() == Task::ALL.len())
});

/// The model for `task` from the shipped file (`None` only if the file is malformed, which the
/// tests rule out).
pub fn shipped(task: Task) -> Option<&'static Logistic> {
    SHIPPED.as_ref().and_then(|m| m.models.get(&task))
}

/// Fit a logistic regression with L2 penalty `l2` by full-batch gradient descent on standardised
/// inputs: deterministic, and plenty for a dozen features.
pub fn train(xs: &[Vec<f64>], ys: &[bool], l2: f64, iterations: usize) -> Logistic {
    let d = xs.first().map_or(0, Vec::len);
    let n = xs.len().max(1) as f64;
    let mut mean = vec![0.0; d];
    for x in xs {
        for (m, v) in mean.iter_mut().zip(x) {
            *m += v / n;
        }
    }
    let mut std = vec![0.0; d];
    for x in xs {
        for ((s, v), m) in std.iter_mut().zip(x).zip(&mean) {
            *s += (v - m).powi(2) / n;
        }
    }
    let std: Vec<f64> = std
        .into_iter()
        .map(|v| if v.sqrt() > 1e-9 { v.sqrt() } else { 1.0 })
        .collect();
    let z: Vec<Vec<f64>> = xs
        .iter()
        .map(|x| {
            x.iter()
                .zip(&mean)
                .zip(&std)
                .map(|((v, m), s)| (v - m) / s)
                .collect()
        })
        .collect();
    let mut w = vec![0.0; d];
    let mut b = 0.0;
    let rate = 0.5;
    for _ in 0..iterations {
        let mut gw = vec![0.0; d];
        let mut gb = 0.0;
        for (row, &y) in z.iter().zip(ys) {
            let p =
                1.0 / (1.0 + (-(b + row.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>())).exp());
            let err = p - if y { 1.0 } else { 0.0 };
            for (g, v) in gw.iter_mut().zip(row) {
                *g += err * v / n;
            }
            gb += err / n;
        }
        for (wi, g) in w.iter_mut().zip(&gw) {
            *wi -= rate * (g + l2 * *wi);
        }
        b -= rate * gb;
    }
    Logistic {
        mean,
        std,
        weights: w,
        bias: b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_rule() {
        let xs: Vec<Vec<f64>> = (0..200)
            .map(|i| vec![f64::from(i % 10), f64::from(i % 3)])
            .collect();
        let ys: Vec<bool> = xs.iter().map(|x| x[0] >= 5.0).collect();
        let m = train(&xs, &ys, 1e-4, 2000);
        assert!(
            m.predict(&[9.0, 1.0]) > 0.9 && m.predict(&[0.0, 1.0]) < 0.1,
            "{m:?}"
        );
        assert!(m.weights[0].abs() > 5.0 * m.weights[1].abs());
    }

    #[test]
    fn the_shipped_model_loads_for_every_task() {
        for task in Task::ALL {
            let m = shipped(task).unwrap_or_else(|| panic!("no shipped model for {}", task.name()));
            assert_eq!(m.weights.len(), FEATURE_NAMES.len());
        }
    }

    #[test]
    fn held_out_rows_follow_the_pair_number() {
        assert!(is_held_out("halueval-qa-8-right") && is_held_out("halueval-qa-8-halluc"));
        assert!(!is_held_out("halueval-dialogue-9-right"));
        assert!(!is_held_out("garbage"));
    }

    #[test]
    fn tasks_are_detected_from_shape() {
        assert_eq!(
            Task::detect("[Human]: hi [Assistant]: hello", "facts"),
            Task::Dialogue
        );
        assert_eq!(Task::detect("", &"word ".repeat(200)), Task::Summarization);
        assert_eq!(Task::detect("Who wrote it?", "short"), Task::Qa);
    }
}
