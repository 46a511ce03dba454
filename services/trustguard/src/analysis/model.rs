//! The grounding model, one per kind of text (question answering, dialogue, summarisation): a
//! logistic regression over the standardised figures of [`grounding::FEATURE_NAMES`] plus the
//! answer's own words and word pairs ([`lexical_features`]), each with a readable name and
//! weight, so every risk is the sum of named contributions. Trained by `codeguardians train
//! trustguard` ([`super::training`]) on the rows of the HaluEval dev files not held out for
//! evaluation (pairs whose number is divisible by 4 are held out), and shipped as
//! `model/grounding.json`, compiled into the binary.
//!
//! [`grounding::FEATURE_NAMES`]: super::grounding::FEATURE_NAMES

use std::collections::{BTreeMap, BTreeSet};
use std::hash::{Hash, Hasher};
use std::sync::{LazyLock, OnceLock};

use cg_learn::sigmoid;
use rustc_hash::{FxHashMap, FxHashSet, FxHasher};
use serde::{Deserialize, Serialize};

use super::grounding::FEATURE_NAMES;
use super::tokens::{is_stop_word, words};

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

/// Words of an answer longer than this are not read for lexical features.
const MAX_LEXICAL_WORDS: usize = 2000;

/// The answer's distinct words (`w:word`) and adjacent word pairs (`b:word word`), lower-cased:
/// the lexical features. How an answer is worded says something the figures cannot (invented
/// answers in the training data tend to elaborate: "also won", "in addition", "actually").
/// Function words alone and pairs of two function words are left out: they carry no claim, and
/// in HaluEval they only measure length (faithful QA answers are short spans, invented ones
/// sentences), which made every sentence an answer could be written in look invented.
pub fn lexical_features(answer: &str) -> BTreeSet<String> {
    let w: Vec<String> = words(answer)
        .into_iter()
        .take(MAX_LEXICAL_WORDS)
        .map(|w| w.lower)
        .collect();
    let mut out: BTreeSet<String> = w
        .iter()
        .filter(|x| is_lexical_word(x))
        .map(|x| format!("w:{x}"))
        .collect();
    out.extend(
        w.windows(2)
            .filter(|p| is_lexical_pair(&p[0], &p[1]))
            .map(|p| format!("b:{} {}", p[0], p[1])),
    );
    out
}

/// Whether a word on its own is a lexical feature (not a function word).
fn is_lexical_word(w: &str) -> bool {
    !is_stop_word(w)
}

/// Whether a word pair is a lexical feature (not two function words).
fn is_lexical_pair(a: &str, b: &str) -> bool {
    !(is_stop_word(a) && is_stop_word(b))
}

/// The lookup key of a lexical feature: a unigram (`b` empty) or a word pair, hashed, so scoring
/// builds no string per word.
fn lexical_key(pair: bool, a: &str, b: &str) -> u64 {
    let mut h = FxHasher::default();
    pair.hash(&mut h);
    a.hash(&mut h);
    b.hash(&mut h);
    h.finish()
}

/// The key of a feature name (`w:word`, `b:word word`).
fn key_of_name(name: &str) -> Option<u64> {
    if let Some(w) = name.strip_prefix("w:") {
        Some(lexical_key(false, w, ""))
    } else {
        let (a, b) = name.strip_prefix("b:")?.split_once(' ')?;
        Some(lexical_key(true, a, b))
    }
}

/// A readable name for a lexical feature.
pub fn describe_lexical(feature: &str) -> String {
    if let Some(w) = feature.strip_prefix("w:") {
        format!("the word \"{w}\"")
    } else if let Some(b) = feature.strip_prefix("b:") {
        format!("the words \"{b}\"")
    } else {
        feature.to_owned()
    }
}

/// One kind of text's model.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskModel {
    /// Standardisation, weights of the figures and the intercept.
    #[serde(flatten)]
    pub dense: Logistic,
    /// Weights of the lexical features the training rows had often enough; absent ones weigh 0.
    pub lexical: BTreeMap<String, f64>,
    /// The L2 penalty, chosen by cross-validation.
    pub l2: f64,
    /// The cross-validated AUROC on the training rows at that penalty.
    pub cv_auroc: f64,
    /// The lexical weights by [`lexical_key`], with their names, built on first use.
    #[serde(skip)]
    lookup: OnceLock<FxHashMap<u64, (String, f64)>>,
}

impl PartialEq for TaskModel {
    fn eq(&self, other: &Self) -> bool {
        self.dense == other.dense
            && self.lexical == other.lexical
            && self.l2 == other.l2
            && self.cv_auroc == other.cv_auroc
    }
}

/// A model's verdict on one answer: the probability and every push on the log-odds.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    pub probability: f64,
    /// Each figure's push (in [`FEATURE_NAMES`] order).
    pub figures: Vec<f64>,
    /// Each lexical feature of the answer that has a weight, with its push.
    pub words: Vec<(String, f64)>,
}

impl TaskModel {
    pub fn new(dense: Logistic, lexical: BTreeMap<String, f64>, l2: f64, cv_auroc: f64) -> Self {
        Self {
            dense,
            lexical,
            l2,
            cv_auroc,
            lookup: OnceLock::new(),
        }
    }

    /// Score the figures `x` and the lexical features of `answer` (the same features as
    /// [`lexical_features`], looked up without building their names).
    pub fn score(&self, x: &[f64], answer: &str) -> Scored {
        let figures = self.dense.contributions(x);
        let mut z = self.dense.bias + figures.iter().sum::<f64>();
        let mut words_found = Vec::new();
        if !self.lexical.is_empty() {
            let lookup = self.lookup.get_or_init(|| {
                self.lexical
                    .iter()
                    .filter_map(|(k, v)| key_of_name(k).map(|key| (key, (k.clone(), *v))))
                    .collect()
            });
            let lower: Vec<String> = words(answer)
                .into_iter()
                .take(MAX_LEXICAL_WORDS)
                .map(|w| w.lower)
                .collect();
            let mut seen: FxHashSet<u64> = FxHashSet::default();
            let unigrams = lower
                .iter()
                .filter(|w| is_lexical_word(w))
                .map(|w| lexical_key(false, w, ""));
            let pairs = lower
                .windows(2)
                .filter(|p| is_lexical_pair(&p[0], &p[1]))
                .map(|p| lexical_key(true, &p[0], &p[1]));
            for key in unigrams.chain(pairs) {
                if let Some((name, w)) = lookup.get(&key)
                    && seen.insert(key)
                {
                    z += w;
                    words_found.push((name.clone(), *w));
                }
            }
        }
        Scored {
            probability: sigmoid(z),
            figures,
            words: words_found,
        }
    }
}

/// The shipped file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    pub version: u32,
    pub features: Vec<String>,
    pub held_out: String,
    pub models: BTreeMap<Task, TaskModel>,
}

static SHIPPED: LazyLock<Option<ModelFile>> = LazyLock::new(|| {
    serde_json::from_str::<ModelFile>(include_str!("../../model/grounding.json"))
        .ok()
        .filter(|m| m.features == FEATURE_NAMES && m.models.len() == Task::ALL.len())
});

/// The model for `task` from the shipped file (`None` only if the file is malformed, which the
/// tests rule out).
pub fn shipped(task: Task) -> Option<&'static TaskModel> {
    SHIPPED.as_ref().and_then(|m| m.models.get(&task))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_model_loads_for_every_task() {
        for task in Task::ALL {
            let m = shipped(task).unwrap_or_else(|| panic!("no shipped model for {}", task.name()));
            assert_eq!(m.dense.weights.len(), FEATURE_NAMES.len());
            assert!(!m.lexical.is_empty());
        }
    }

    #[test]
    fn the_shipped_figures_point_the_way_their_signs_allow() {
        use super::super::grounding::FEATURE_SIGNS;
        use cg_learn::sparse::Sign;
        for task in Task::ALL {
            let m = shipped(task).unwrap();
            for ((w, sign), name) in m.dense.weights.iter().zip(FEATURE_SIGNS).zip(FEATURE_NAMES) {
                let ok = match sign {
                    Sign::Free => true,
                    Sign::NonNegative => *w >= 0.0,
                    Sign::NonPositive => *w <= 0.0,
                };
                assert!(ok, "{}: {name} has weight {w}", task.name());
            }
        }
    }

    #[test]
    fn an_answer_the_context_states_word_for_word_is_low_risk() {
        use super::super::grounding::measure;
        let context =
            "Marie Curie won the Nobel Prize in Physics in 1903 and in Chemistry in 1911.";
        let question = "What did Marie Curie win in 1903?";
        let m = shipped(Task::Qa).unwrap();
        for answer in [
            "She won the Nobel Prize in Physics in 1903.",
            "Marie Curie won the Nobel Prize in Physics in 1903.",
        ] {
            let scored = m.score(&measure(answer, context, question).vector(), answer);
            let p = scored.probability;
            assert!(p < 0.5, "{answer}: {p} {scored:?}");
        }
    }

    #[test]
    fn lexical_features_are_distinct_words_and_pairs() {
        // "yes", "he", "it" and "also" are function words: alone or in pairs of two they do not
        // count.
        let f = lexical_features("Yes, he also won it. Also!");
        let expected = ["b:also won", "b:won it", "w:won"];
        assert_eq!(f.iter().map(String::as_str).collect::<Vec<_>>(), expected);
        assert_eq!(
            describe_lexical("b:in addition"),
            "the words \"in addition\""
        );
    }

    #[test]
    fn scoring_finds_the_same_words_as_the_feature_list() {
        let m = shipped(Task::Dialogue).unwrap();
        let answer = "Actually, Snoop Dogg wasn't in Turbo. But you should check out Green Lantern, a great movie.";
        let scored = m.score(&[0.0; FEATURE_NAMES.len()], answer);
        let mut found: Vec<&str> = scored.words.iter().map(|(n, _)| n.as_str()).collect();
        found.sort_unstable();
        let expected: Vec<&str> = lexical_features(answer)
            .into_iter()
            .filter(|f| m.lexical.contains_key(f))
            .map(|f| m.lexical.get_key_value(&f).map_or("", |(k, _)| k.as_str()))
            .collect();
        assert_eq!(found, expected);
        assert!(!found.is_empty());
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
