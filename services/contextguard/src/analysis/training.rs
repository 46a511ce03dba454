//! Fitting the drift model, for `codeguardians train contextguard`: the turn-level examples, the
//! logistic fit, and the conversation-level decision threshold. Only the training conversations
//! (see [`super::model::is_held_out`]) may be passed in; the caller filters.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};

use serde::Serialize;

use super::drift::{DriftSettings, Topic};
use super::lexicon::Lexicon;
use super::model::DriftModel;

/// A labelled conversation.
#[derive(Debug, Clone)]
pub struct Conversation<'a> {
    pub turns: Vec<&'a str>,
    /// Index of the first turn on a new topic, if any.
    pub drift_at: Option<usize>,
}

/// The documents that contain none of `quotes` (so a lexicon fitted on them has never seen the
/// articles a conversation was cut from). Candidates are found by the hash of a quote's first
/// words, then confirmed by substring search.
pub fn unquoted<'a>(documents: &[&'a str], quotes: &[&str]) -> Vec<&'a str> {
    const SHINGLE: usize = 5;
    let key = |words: &[&str]| {
        let mut h = DefaultHasher::new();
        words.hash(&mut h);
        h.finish()
    };
    let mut by_key: HashMap<u64, Vec<usize>> = HashMap::new();
    let mut short = Vec::new();
    for (i, q) in quotes.iter().enumerate() {
        let words: Vec<&str> = q.split_whitespace().collect();
        if words.len() < SHINGLE + 1 {
            short.push(i);
            continue;
        }
        // The first and the second shingle, in case the first word is glued to something.
        by_key.entry(key(&words[..SHINGLE])).or_default().push(i);
        by_key.entry(key(&words[1..=SHINGLE])).or_default().push(i);
    }
    documents
        .iter()
        .copied()
        .filter(|doc| {
            let words: Vec<&str> = doc.split_whitespace().collect();
            let quoted = words.windows(SHINGLE).any(|w| {
                by_key
                    .get(&key(w))
                    .is_some_and(|qs| qs.iter().any(|q| doc.contains(quotes[*q].trim())))
            }) || short
                .iter()
                .any(|q| !quotes[*q].trim().is_empty() && doc.contains(quotes[*q].trim()));
            !quoted
        })
        .collect()
}

/// Turn-level examples: every turn after the first up to the drift (inclusive) gives the
/// measures against the topic so far, labelled true at the drift turn. Turns after the drift are
/// left out: they are on the new topic against a mixed history, which is neither label.
pub fn examples(
    conversations: &[Conversation<'_>],
    lexicon: &Lexicon,
    settings: &DriftSettings,
) -> (Vec<Vec<f64>>, Vec<bool>) {
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for c in conversations {
        let mut topic = Topic::default();
        for (t, turn) in c.turns.iter().enumerate() {
            if c.drift_at.is_none_or(|d| t <= d)
                && let Some(f) = topic.features_with(turn, lexicon)
            {
                xs.push(f.vector().to_vec());
                ys.push(c.drift_at == Some(t));
            }
            topic.absorb_with(turn, settings, lexicon);
        }
    }
    (xs, ys)
}

/// The drift score of every turn of every conversation, turns fed in order.
pub fn turn_scores(
    conversations: &[Conversation<'_>],
    lexicon: &Lexicon,
    model: &DriftModel,
    settings: &DriftSettings,
) -> Vec<Vec<f64>> {
    conversations
        .iter()
        .map(|c| {
            let mut topic = Topic::default();
            c.turns
                .iter()
                .map(|t| topic.observe_with(t, settings, lexicon, model).drift_score)
                .collect()
        })
        .collect()
}

/// Conversation-level results at one threshold: a conversation is flagged when any turn is.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Outcome {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub false_positive_rate: f64,
    /// Among correctly flagged conversations, how often the first flagged turn is the drift turn.
    pub exact_turn: f64,
}

pub fn outcome(scores: &[Vec<f64>], drift_at: &[Option<usize>], threshold: f64) -> Outcome {
    let (mut tp, mut fp, mut tn, mut fnn, mut exact) = (0usize, 0usize, 0usize, 0usize, 0usize);
    for (s, d) in scores.iter().zip(drift_at) {
        let first = s.iter().position(|x| *x >= threshold);
        match (first, d) {
            (Some(f), Some(d)) => {
                tp += 1;
                exact += usize::from(f == *d);
            }
            (Some(_), None) => fp += 1,
            (None, Some(_)) => fnn += 1,
            (None, None) => tn += 1,
        }
    }
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    let precision = ratio(tp, tp + fp);
    let recall = ratio(tp, tp + fnn);
    Outcome {
        threshold,
        precision,
        recall,
        f1: if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        },
        false_positive_rate: ratio(fp, fp + tn),
        exact_turn: ratio(exact, tp),
    }
}

/// The threshold (a multiple of 0.01) maximising conversation F1 plus the exact-turn rate: both
/// whether drift is caught and whether it is placed at the right turn count.
pub fn choose_threshold(scores: &[Vec<f64>], drift_at: &[Option<usize>]) -> Outcome {
    (1..100)
        .map(|i| outcome(scores, drift_at, f64::from(i) / 100.0))
        .fold(outcome(scores, drift_at, 1.0), |best, o| {
            if o.f1 + o.exact_turn > best.f1 + best.exact_turn {
                o
            } else {
                best
            }
        })
}

/// Fit the model on `conversations` with `lexicon`, then tune its threshold on the same
/// conversations. Returns the model and the training-set outcome at that threshold.
pub fn fit(
    conversations: &[Conversation<'_>],
    lexicon: &Lexicon,
    decay: f64,
    l2: f64,
    iterations: usize,
) -> (DriftModel, Outcome) {
    let mut settings = DriftSettings {
        decay,
        ..DriftSettings::default()
    };
    let (xs, ys) = examples(conversations, lexicon, &settings);
    let mut model = DriftModel::fit(&xs, &ys, l2, iterations);
    model.decay = decay;
    settings.threshold = 1.0;
    let scores = turn_scores(conversations, lexicon, &model, &settings);
    let drift_at: Vec<Option<usize>> = conversations.iter().map(|c| c.drift_at).collect();
    let best = choose_threshold(&scores, &drift_at);
    model.threshold = best.threshold;
    (model, best)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_documents_are_left_out() {
        let docs = [
            "Markets fell on Monday as oil prices rose again in early trading. Analysts were calm.",
            "The harbour ferry leaves at nine every morning from the old pier.",
            "Short one.",
        ];
        let quotes = [
            "Analysts were calm.",
            "oil prices rose again in early trading.",
        ];
        assert_eq!(unquoted(&docs, &quotes), &docs[1..]);
        assert_eq!(unquoted(&docs, &[]), docs);
    }

    #[test]
    fn outcome_counts_conversations_and_exact_turns() {
        let scores = vec![
            vec![0.0, 0.1, 0.9, 0.2], // drift at 2, flagged at 2
            vec![0.0, 0.8, 0.9],      // drift at 2, flagged early at 1
            vec![0.0, 0.2, 0.3],      // no drift, not flagged
            vec![0.0, 0.7],           // no drift, flagged
            vec![0.0, 0.1, 0.2],      // drift at 1, missed
        ];
        let drift_at = [Some(2), Some(2), None, None, Some(1)];
        let o = outcome(&scores, &drift_at, 0.5);
        assert!((o.precision - 2.0 / 3.0).abs() < 1e-12);
        assert!((o.recall - 2.0 / 3.0).abs() < 1e-12);
        assert!((o.false_positive_rate - 0.5).abs() < 1e-12);
        assert!((o.exact_turn - 0.5).abs() < 1e-12);
        let best = choose_threshold(&scores, &drift_at);
        assert!(best.threshold > 0.8 && best.threshold <= 0.9, "{best:?}");
    }
}
