//! Detection measures: AUROC, precision/recall/F1/false-positive rate at a threshold, balanced
//! accuracy, and pairwise accuracy.

use serde::Serialize;

/// Area under the ROC curve of `scores` against `labels` (ties count half).
pub fn auroc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    let mut pairs: Vec<(f64, bool)> = scores.iter().copied().zip(labels.iter().copied()).collect();
    pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
    let positives = pairs.iter().filter(|p| p.1).count() as f64;
    let negatives = pairs.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return None;
    }
    // Mann–Whitney U with average ranks for ties.
    let mut rank_sum = 0.0;
    let mut i = 0;
    while i < pairs.len() {
        let mut j = i;
        while j + 1 < pairs.len() && pairs[j + 1].0 == pairs[i].0 {
            j += 1;
        }
        let average_rank = (i + j) as f64 / 2.0 + 1.0;
        rank_sum += pairs[i..=j].iter().filter(|p| p.1).count() as f64 * average_rank;
        i = j + 1;
    }
    Some((rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives))
}

/// Confusion-matrix measures at one threshold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Binary {
    pub threshold: f64,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    pub false_positive_rate: f64,
    pub balanced_accuracy: f64,
    pub true_positives: usize,
    pub false_positives: usize,
    pub true_negatives: usize,
    pub false_negatives: usize,
}

/// Measures of `scores >= threshold` as the positive prediction.
pub fn binary(scores: &[f64], labels: &[bool], threshold: f64) -> Binary {
    let (mut tp, mut fp, mut tn, mut fnn) = (0, 0, 0, 0);
    for (s, l) in scores.iter().zip(labels) {
        match (*s >= threshold, *l) {
            (true, true) => tp += 1,
            (true, false) => fp += 1,
            (false, false) => tn += 1,
            (false, true) => fnn += 1,
        }
    }
    let ratio = |a: usize, b: usize| {
        if a + b == 0 {
            0.0
        } else {
            a as f64 / (a + b) as f64
        }
    };
    let precision = ratio(tp, fp);
    let recall = ratio(tp, fnn);
    let specificity = ratio(tn, fp);
    Binary {
        threshold,
        precision,
        recall,
        f1: if precision + recall == 0.0 {
            0.0
        } else {
            2.0 * precision * recall / (precision + recall)
        },
        false_positive_rate: ratio(fp, tn),
        balanced_accuracy: (recall + specificity) / 2.0,
        true_positives: tp,
        false_positives: fp,
        true_negatives: tn,
        false_negatives: fnn,
    }
}

/// Share of pairs in which the first score is higher (ties count half).
pub fn pairwise(pairs: &[(f64, f64)]) -> Option<f64> {
    if pairs.is_empty() {
        return None;
    }
    let wins: f64 = pairs
        .iter()
        .map(|(hi, lo)| {
            if hi > lo {
                1.0
            } else if hi == lo {
                0.5
            } else {
                0.0
            }
        })
        .sum();
    Some(wins / pairs.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert_eq!(
            auroc(&[0.1, 0.4, 0.35, 0.8], &[false, false, true, true]),
            Some(0.75)
        );
        assert_eq!(auroc(&[0.5, 0.5], &[false, true]), Some(0.5));
        assert_eq!(auroc(&[0.1], &[true]), None);
        let b = binary(&[0.9, 0.8, 0.2, 0.6], &[true, false, false, true], 0.5);
        assert_eq!(
            (
                b.true_positives,
                b.false_positives,
                b.true_negatives,
                b.false_negatives
            ),
            (2, 1, 1, 0)
        );
        assert!(
            (b.precision - 2.0 / 3.0).abs() < 1e-12
                && b.recall == 1.0
                && b.false_positive_rate == 0.5
        );
        assert_eq!(pairwise(&[(0.9, 0.1), (0.2, 0.3), (0.5, 0.5)]), Some(0.5));
    }
}
