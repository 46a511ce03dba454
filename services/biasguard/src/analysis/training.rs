//! Fitting the model of [`super::model`] from labelled rows: used by `codeguardians train
//! biasguard`, kept here so training and inference share one feature extractor.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::detect::PREDICATE_PREFIX;
use super::model::{Example, ModelFile, fit};
use super::{analysis_features, model::is_held_out};

/// Words, word pairs and predicate words need this many training rows to get a weight.
pub const MIN_DOCUMENT_FREQUENCY: usize = 3;
/// The L2 penalties and the weights of one CrowS-Pairs constraint relative to a row that are
/// tried (one of each is chosen by cross-validation), and the iterations of a fit.
pub const L2_GRID: [f64; 4] = [5.0, 10.0, 20.0, 40.0];
pub const PAIR_WEIGHTS: [f64; 3] = [2.0, 5.0, 10.0];
pub const ITERATIONS: usize = 1500;
/// The false-positive rate the threshold is tuned for (on cross-validated training rows).
pub const TARGET_FPR: f64 = 0.2;
const FOLDS: usize = 5;

/// A RedditBias row: `label` true = biased.
#[derive(Debug, Clone)]
pub struct LabelledText {
    pub id: String,
    pub text: String,
    pub label: bool,
}

/// A CrowS-Pairs pair: `more` is the more stereotyping sentence.
#[derive(Debug, Clone)]
pub struct Pair {
    pub id: String,
    pub more: String,
    pub less: String,
}

/// Word features (words, word pairs, words of a group's predicate): pruned by document frequency.
fn lexical(name: &str) -> bool {
    name.starts_with("w:") || name.starts_with("b:") || name.starts_with(PREDICATE_PREFIX)
}

fn keep(name: &str, vocabulary: &BTreeSet<String>) -> bool {
    let base = name.split_once('@').map_or(name, |(_, b)| b);
    !lexical(base) || vocabulary.contains(base)
}

/// Fit on the rows and pairs that are not held out; deterministic for the same data.
pub fn train(rows: &[LabelledText], pairs: &[Pair]) -> ModelFile {
    let rows: Vec<&LabelledText> = rows.iter().filter(|r| !is_held_out(&r.id)).collect();
    let pairs: Vec<&Pair> = pairs.iter().filter(|p| !is_held_out(&p.id)).collect();
    let row_features: Vec<BTreeMap<String, f64>> =
        rows.iter().map(|r| analysis_features(&r.text)).collect();
    let mut df: HashMap<&str, usize> = HashMap::new();
    for f in &row_features {
        for k in f.keys().filter(|k| lexical(k)) {
            *df.entry(k.as_str()).or_default() += 1;
        }
    }
    let vocabulary: BTreeSet<String> = df
        .into_iter()
        .filter(|(_, n)| *n >= MIN_DOCUMENT_FREQUENCY)
        .map(|(k, _)| k.to_owned())
        .collect();
    let pair_features: Vec<(BTreeMap<String, f64>, BTreeMap<String, f64>)> = pairs
        .iter()
        .map(|p| (analysis_features(&p.more), analysis_features(&p.less)))
        .collect();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for f in row_features
        .iter()
        .chain(pair_features.iter().flat_map(|(a, b)| [a, b]))
    {
        for k in f.keys().filter(|k| keep(k, &vocabulary)) {
            let next = index.len();
            index.entry(k.clone()).or_insert(next);
        }
    }
    // BTreeMap insertion order above depends on the data order; renumber by name.
    for (i, v) in index.values_mut().enumerate() {
        *v = i;
    }
    let sparse = |f: &BTreeMap<String, f64>| -> Vec<(usize, f64)> {
        f.iter()
            .filter_map(|(k, v)| index.get(k).map(|i| (*i, *v)))
            .collect()
    };
    let positives = rows.iter().filter(|r| r.label).count().max(1) as f64;
    let negatives = (rows.len() as f64 - positives).max(1.0);
    let total = rows.len() as f64;
    let row_examples: Vec<Example> = rows
        .iter()
        .zip(&row_features)
        .map(|(r, f)| Example {
            x: sparse(f),
            y: if r.label { 1.0 } else { 0.0 },
            weight: total / 2.0 / if r.label { positives } else { negatives },
            use_intercept: true,
        })
        .collect();
    let pair_examples: Vec<Example> = pair_features
        .iter()
        .map(|(more, less)| {
            let mut diff: BTreeMap<usize, f64> = BTreeMap::new();
            for (i, v) in sparse(more) {
                *diff.entry(i).or_default() += v;
            }
            for (i, v) in sparse(less) {
                *diff.entry(i).or_default() -= v;
            }
            Example {
                x: diff.into_iter().filter(|(_, v)| *v != 0.0).collect(),
                y: 1.0,
                weight: 1.0,
                use_intercept: false,
            }
        })
        .collect();

    // L2 penalty, pair weight and threshold: chosen by 5-fold cross-validation on the training
    // rows and pairs (fold = position mod FOLDS); the setting whose mean of cross-validated
    // balanced accuracy (at the threshold tuned on those logits) and pairwise accuracy is best wins.
    let mut best: Option<(f64, f64, f64, f64, f64)> = None;
    for pair_weight in PAIR_WEIGHTS {
        let weighted: Vec<Example> = pair_examples
            .iter()
            .map(|e| Example {
                weight: pair_weight,
                ..e.clone()
            })
            .collect();
        for l2 in L2_GRID {
            let (cv, margins) = cross_validate(&row_examples, &weighted, &rows, index.len(), l2);
            let threshold = tune_threshold(&cv, TARGET_FPR);
            let accuracy = balanced_accuracy(&cv, threshold);
            let pairwise = margins
                .iter()
                .map(|m| match m.total_cmp(&0.0) {
                    std::cmp::Ordering::Greater => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Less => 0.0,
                })
                .sum::<f64>()
                / margins.len().max(1) as f64;
            let merit = (accuracy + pairwise) / 2.0;
            if best.is_none_or(|b| merit > (b.3 + b.4) / 2.0) {
                best = Some((l2, pair_weight, threshold, accuracy, pairwise));
            }
        }
    }
    let (l2, pair_weight, threshold, cv_accuracy, cv_pairwise) =
        best.unwrap_or((L2_GRID[0], PAIR_WEIGHTS[0], 0.0, 0.0, 0.0));
    let pair_examples: Vec<Example> = pair_examples
        .into_iter()
        .map(|e| Example {
            weight: pair_weight,
            ..e
        })
        .collect();

    let all: Vec<Example> = row_examples.into_iter().chain(pair_examples).collect();
    let m = fit(&all, index.len(), l2, ITERATIONS);
    let weights = index
        .into_iter()
        .filter_map(|(k, i)| {
            let w = (m.weights[i] * 1e4).round() / 1e4;
            (w.abs() >= 1e-3).then_some((k, w))
        })
        .collect();
    ModelFile {
        version: 1,
        held_out: "RedditBias rows and CrowS-Pairs pairs whose id ends in a number divisible by 3"
            .into(),
        l2,
        pair_weight,
        cv_balanced_accuracy: (cv_accuracy * 1e4).round() / 1e4,
        cv_pairwise_accuracy: (cv_pairwise * 1e4).round() / 1e4,
        threshold: (threshold * 1e4).round() / 1e4,
        intercept: (m.intercept * 1e4).round() / 1e4,
        weights,
        ..ModelFile::default()
    }
}

/// Cross-validated logits of the training rows and margins of the training pairs: each fold
/// scored by a model fitted on the other folds.
fn cross_validate(
    row_examples: &[Example],
    pair_examples: &[Example],
    rows: &[&LabelledText],
    dims: usize,
    l2: f64,
) -> (Vec<(f64, bool)>, Vec<f64>) {
    let mut cv: Vec<(f64, bool)> = Vec::with_capacity(rows.len());
    let mut margins: Vec<f64> = Vec::with_capacity(pair_examples.len());
    let outside = |examples: &[Example], fold: usize| -> Vec<Example> {
        examples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % FOLDS != fold)
            .map(|(_, e)| e.clone())
            .collect()
    };
    for fold in 0..FOLDS {
        let mut train_set = outside(row_examples, fold);
        train_set.extend(outside(pair_examples, fold));
        let m = fit(&train_set, dims, l2, ITERATIONS);
        let dot = |e: &Example| e.x.iter().map(|(j, x)| m.weights[*j] * x).sum::<f64>();
        for (i, e) in row_examples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % FOLDS == fold)
        {
            cv.push((m.intercept + dot(e), rows[i].label));
        }
        for (_, e) in pair_examples
            .iter()
            .enumerate()
            .filter(|(i, _)| i % FOLDS == fold)
        {
            margins.push(dot(e));
        }
    }
    (cv, margins)
}

/// (TPR + TNR) / 2 of "biased when the logit is at least `threshold`".
pub fn balanced_accuracy(scored: &[(f64, bool)], threshold: f64) -> f64 {
    let rate = |label: bool| {
        let of: Vec<&(f64, bool)> = scored.iter().filter(|s| s.1 == label).collect();
        of.iter().filter(|s| s.0 >= threshold).count() as f64 / of.len().max(1) as f64
    };
    (rate(true) + 1.0 - rate(false)) / 2.0
}

/// The logit threshold with the best TPR − FPR among those with FPR ≤ `target`.
pub fn tune_threshold(scored: &[(f64, bool)], target: f64) -> f64 {
    let positives = scored.iter().filter(|s| s.1).count().max(1) as f64;
    let negatives = scored.iter().filter(|s| !s.1).count().max(1) as f64;
    let mut sorted: Vec<(f64, bool)> = scored.to_vec();
    sorted.sort_by(|a, b| b.0.total_cmp(&a.0));
    let (mut tp, mut fp) = (0.0, 0.0);
    let mut best = (
        f64::NEG_INFINITY,
        sorted.first().map_or(0.0, |s| s.0 + 1e-9),
    );
    for (i, (z, label)) in sorted.iter().enumerate() {
        if *label {
            tp += 1.0;
        } else {
            fp += 1.0;
        }
        // Only cut between distinct scores.
        if sorted.get(i + 1).is_some_and(|next| next.0 == *z) {
            continue;
        }
        let (tpr, fpr) = (tp / positives, fp / negatives);
        if fpr <= target && tpr - fpr > best.0 {
            let below = sorted.get(i + 1).map_or(*z - 1.0, |next| next.0);
            best = (tpr - fpr, (z + below) / 2.0);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn threshold_respects_the_false_positive_target() {
        let scored = [
            (3.0, true),
            (2.0, true),
            (1.5, false),
            (1.0, true),
            (0.0, false),
            (-1.0, false),
        ];
        // FPR ≤ 0.2 allows no false positive: cut between 2.0 and 1.5.
        assert!((tune_threshold(&scored, 0.2) - 1.75).abs() < 1e-12);
        // FPR ≤ 0.34 allows one: cut between 1.0 and 0.0 (TPR 1, FPR 1/3).
        assert!((tune_threshold(&scored, 0.34) - 0.5).abs() < 1e-12);
    }
}
