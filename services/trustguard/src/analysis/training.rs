//! Fitting one kind of text's grounding model ([`super::model::TaskModel`]), for `codeguardians
//! train trustguard`: the figures of [`super::grounding::measure`], standardised, and the
//! answer's lexical features that at least [`MIN_ROWS`] training rows have, in one sparse
//! logistic regression; the L2 penalty is chosen from [`L2_GRID`] by cross-validated AUROC with
//! the folds cut by pair (both answers of one context always fall in the same fold).
//! Deterministic: same rows in the same order, same model.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use cg_learn::Logistic;
use cg_learn::sparse::{Example, fit_signed};

use super::grounding::{FEATURE_NAMES, FEATURE_SIGNS, measure};
use super::model::{TaskModel, lexical_features};

/// A lexical feature needs this many training rows to get a weight.
pub const MIN_ROWS: usize = 3;
/// The L2 penalties tried (on the summed log-loss); one is chosen by cross-validation.
pub const L2_GRID: [f64; 5] = [0.3, 1.0, 3.0, 10.0, 30.0];
/// Folds of the cross-validation (pair number mod FOLDS).
pub const FOLDS: u64 = 5;
/// Adam steps of each fit.
pub const ITERATIONS: usize = 1500;

/// A labelled training row: the pair it belongs to, and whether the answer is hallucinated.
#[derive(Debug, Clone)]
pub struct Row<'a> {
    pub pair: u64,
    pub answer: &'a str,
    pub context: &'a str,
    pub question: &'a str,
    pub hallucinated: bool,
}

/// Area under the ROC curve (ties count half); 0.5 when a class is missing.
fn auroc(scored: &[(f64, bool)]) -> f64 {
    let mut s: Vec<(f64, bool)> = scored.to_vec();
    s.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = s.iter().filter(|x| x.1).count() as f64;
    let negatives = s.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }
    let (mut rank_sum, mut i) = (0.0, 0);
    while i < s.len() {
        let mut j = i;
        while j + 1 < s.len() && s[j + 1].0 == s[i].0 {
            j += 1;
        }
        let rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += s[i..=j].iter().filter(|x| x.1).count() as f64 * rank;
        i = j + 1;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

/// Fit one task's model on `rows` (the caller leaves the held-out rows out).
pub fn fit_task(rows: &[Row<'_>]) -> TaskModel {
    let figures: Vec<[f64; FEATURE_NAMES.len()]> = rows
        .iter()
        .map(|r| measure(r.answer, r.context, r.question).vector())
        .collect();
    let lexical: Vec<BTreeSet<String>> = rows.iter().map(|r| lexical_features(r.answer)).collect();
    // Standardise the figures (a figure that never varies keeps a scale of 1).
    let n = rows.len().max(1) as f64;
    let dims = FEATURE_NAMES.len();
    let mut mean = vec![0.0; dims];
    let mut std = vec![0.0; dims];
    for x in &figures {
        for (m, v) in mean.iter_mut().zip(x) {
            *m += v / n;
        }
    }
    for x in &figures {
        for ((s, v), m) in std.iter_mut().zip(x).zip(&mean) {
            *s += (v - m).powi(2) / n;
        }
    }
    for s in &mut std {
        *s = if *s > 1e-12 { s.sqrt() } else { 1.0 };
    }
    // Vocabulary: lexical features of at least MIN_ROWS rows, numbered by name after the figures.
    let mut df: HashMap<&str, usize> = HashMap::new();
    for f in &lexical {
        for k in f {
            *df.entry(k.as_str()).or_default() += 1;
        }
    }
    let vocabulary: BTreeMap<&str, usize> = df
        .into_iter()
        .filter(|(_, c)| *c >= MIN_ROWS)
        .map(|(k, _)| k)
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .enumerate()
        .map(|(i, k)| (k, dims + i))
        .collect();
    let examples: Vec<Example> = rows
        .iter()
        .zip(&figures)
        .zip(&lexical)
        .map(|((r, x), lex)| {
            let mut sparse: Vec<(usize, f64)> = x
                .iter()
                .zip(mean.iter().zip(&std))
                .enumerate()
                .map(|(i, (v, (m, s)))| (i, (v - m) / s))
                .collect();
            sparse.extend(
                lex.iter()
                    .filter_map(|k| vocabulary.get(k.as_str()).map(|i| (*i, 1.0))),
            );
            Example {
                x: sparse,
                y: if r.hallucinated { 1.0 } else { 0.0 },
                weight: 1.0,
                use_intercept: true,
            }
        })
        .collect();
    let width = dims + vocabulary.len();

    let mut best = (L2_GRID[0], f64::NEG_INFINITY);
    for l2 in L2_GRID {
        let mut scored = Vec::with_capacity(rows.len());
        for fold in 0..FOLDS {
            let train: Vec<Example> = examples
                .iter()
                .zip(rows)
                .filter(|(_, r)| r.pair % FOLDS != fold)
                .map(|(e, _)| e.clone())
                .collect();
            let m = fit_signed(&train, width, l2, ITERATIONS, &FEATURE_SIGNS);
            for (e, r) in examples
                .iter()
                .zip(rows)
                .filter(|(_, r)| r.pair % FOLDS == fold)
            {
                let z = m.intercept + e.x.iter().map(|(i, v)| m.weights[*i] * v).sum::<f64>();
                scored.push((z, r.hallucinated));
            }
        }
        let a = auroc(&scored);
        if a > best.1 {
            best = (l2, a);
        }
    }
    let (l2, cv_auroc) = best;
    let m = fit_signed(&examples, width, l2, ITERATIONS, &FEATURE_SIGNS);
    let round = |w: f64| (w * 1e4).round() / 1e4;
    let lexical_weights: BTreeMap<String, f64> = vocabulary
        .iter()
        .map(|(k, i)| ((*k).to_owned(), round(m.weights[*i])))
        .filter(|(_, w)| w.abs() >= 1e-3)
        .collect();
    TaskModel::new(
        Logistic {
            mean,
            std,
            weights: m.weights[..dims].to_vec(),
            bias: m.intercept,
        },
        lexical_weights,
        l2,
        (cv_auroc * 1e4).round() / 1e4,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_that_invented_names_mean_risk() {
        let context = "The bridge opened in 1932 and was designed by Ralph Freeman.";
        let question = "Who designed the bridge?";
        let mut rows = Vec::new();
        let faithful = [
            "Ralph Freeman",
            "It was Ralph Freeman.",
            "Freeman designed it",
        ];
        let invented = [
            "It was designed by Gustave Martin in 1911.",
            "Actually, Peter Lowe designed it in 1905.",
            "Anna Berg, who also built the tower in 1920.",
        ];
        for pair in 0..30u64 {
            let i = pair as usize % 3;
            rows.push(Row {
                pair,
                answer: faithful[i],
                context,
                question,
                hallucinated: false,
            });
            rows.push(Row {
                pair,
                answer: invented[i],
                context,
                question,
                hallucinated: true,
            });
        }
        let m = fit_task(&rows);
        assert!(m.cv_auroc > 0.9, "{}", m.cv_auroc);
        assert!(L2_GRID.contains(&m.l2));
        let risk = |a: &str| {
            m.score(&measure(a, context, question).vector(), a)
                .probability
        };
        assert!(
            risk("Designed by Olaf Brandt in 1899.") > risk("Ralph Freeman designed it."),
            "{m:?}"
        );
        // Same rows, same model.
        assert_eq!(fit_task(&rows), m);
    }
}
