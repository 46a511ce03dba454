//! The plain baseline the bias issue quotes, rebuilt here so every evaluation compares against it
//! on the same rows in the same run: TF-IDF over lower-cased words of two or more characters
//! (smoothed IDF, L2-normalised rows) and a logistic regression with an L2 penalty of 1 (C = 1),
//! trained on the file's rows that are not held out, biased when its probability is at least 0.5.

use std::collections::HashMap;

use cg_biasguard::analysis::model::{Example, Fit, fit};

const ITERATIONS: usize = 1500;

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '_')
        .filter(|w| w.chars().count() >= 2)
        .map(str::to_lowercase)
        .collect()
}

/// A fitted TF-IDF + logistic-regression classifier.
#[derive(Debug)]
pub struct Baseline {
    vocabulary: HashMap<String, usize>,
    idf: Vec<f64>,
    model: Fit,
}

impl Baseline {
    pub fn train(texts: &[&str], labels: &[bool]) -> Self {
        let mut vocabulary: HashMap<String, usize> = HashMap::new();
        let mut df: Vec<f64> = Vec::new();
        for text in texts {
            let mut seen: Vec<usize> = words(text)
                .into_iter()
                .map(|w| {
                    let next = vocabulary.len();
                    *vocabulary.entry(w).or_insert(next)
                })
                .collect();
            seen.sort_unstable();
            seen.dedup();
            for i in seen {
                if i >= df.len() {
                    df.resize(i + 1, 0.0);
                }
                df[i] += 1.0;
            }
        }
        let n = texts.len() as f64;
        let idf = df
            .iter()
            .map(|d| ((1.0 + n) / (1.0 + d)).ln() + 1.0)
            .collect();
        let mut baseline = Self {
            vocabulary,
            idf,
            model: Fit {
                weights: Vec::new(),
                intercept: 0.0,
            },
        };
        let examples: Vec<Example> = texts
            .iter()
            .zip(labels)
            .map(|(t, l)| Example {
                x: baseline.vector(t),
                y: if *l { 1.0 } else { 0.0 },
                weight: 1.0,
                use_intercept: true,
            })
            .collect();
        baseline.model = fit(&examples, baseline.idf.len(), 1.0, ITERATIONS);
        baseline
    }

    fn vector(&self, text: &str) -> Vec<(usize, f64)> {
        let mut counts: HashMap<usize, f64> = HashMap::new();
        for w in words(text) {
            if let Some(i) = self.vocabulary.get(&w) {
                *counts.entry(*i).or_default() += 1.0;
            }
        }
        let mut v: Vec<(usize, f64)> = counts
            .into_iter()
            .map(|(i, c)| (i, c * self.idf[i]))
            .collect();
        let norm = v.iter().map(|(_, x)| x * x).sum::<f64>().sqrt();
        if norm > 0.0 {
            v.iter_mut().for_each(|(_, x)| *x /= norm);
        }
        v.sort_unstable_by_key(|(i, _)| *i);
        v
    }

    /// The probability that `text` is biased.
    pub fn probability(&self, text: &str) -> f64 {
        let z = self.model.intercept
            + self
                .vector(text)
                .iter()
                .map(|(i, x)| self.model.weights.get(*i).copied().unwrap_or(0.0) * x)
                .sum::<f64>();
        cg_learn::sigmoid(z)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_which_words_mark_a_class() {
        let texts = [
            "they are lazy and dirty",
            "lazy dirty people",
            "what a lovely day",
            "lovely weather today",
        ];
        let b = Baseline::train(&texts, &[true, true, false, false]);
        assert!(b.probability("so lazy") > 0.5);
        assert!(b.probability("a lovely walk") < 0.5);
        assert!((b.probability("") - 0.5).abs() < 0.2);
    }
}
