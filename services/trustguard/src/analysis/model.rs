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

pub use cg_learn::Logistic;

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

#[cfg(test)]
mod tests {
    use super::*;

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
