//! Sparse logistic regression: rows given as (index, value) pairs, fitted by full-batch Adam with
//! an L2 penalty; deterministic (same rows in the same order, same model). Used where the
//! features are words (BiasGuard's model, TrustGuard's lexical grounding evidence, the TF-IDF
//! baselines of `codeguardians eval`).

use crate::sigmoid;

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

/// Which way a weight may point. A model whose inputs have a known direction (more support can
/// never mean more risk) is fitted with that direction imposed, so it cannot learn the opposite
/// from an accident of its training data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sign {
    Free,
    NonNegative,
    NonPositive,
}

impl Sign {
    fn clamp(self, w: f64) -> f64 {
        match self {
            Self::Free => w,
            Self::NonNegative => w.max(0.0),
            Self::NonPositive => w.min(0.0),
        }
    }
}

/// Minimise Σ weight·log-loss + l2/2·‖w‖² (the intercept is not penalised).
pub fn fit(examples: &[Example], dims: usize, l2: f64, iterations: usize) -> Fit {
    fit_signed(examples, dims, l2, iterations, &[])
}

/// [`fit`] with the first `signs.len()` weights held to their [`Sign`] (projected Adam: each step
/// is clamped back into the allowed half-line); the other weights are free.
pub fn fit_signed(
    examples: &[Example],
    dims: usize,
    l2: f64,
    iterations: usize,
    signs: &[Sign],
) -> Fit {
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
                w[i] = signs.get(i).map_or(Sign::Free, |s| *s).clamp(w[i] - delta);
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

    #[test]
    fn signed_fit_keeps_a_weight_on_its_side() {
        let ex = |i: usize, y: f64| Example {
            x: vec![(i, 1.0)],
            y,
            weight: 1.0,
            use_intercept: true,
        };
        // Feature 0 marks positives; forbidding it a positive weight leaves it at zero.
        let data = [ex(0, 1.0), ex(0, 1.0), ex(1, 0.0), ex(1, 0.0)];
        let f = fit_signed(&data, 2, 0.1, 500, &[Sign::NonPositive]);
        assert_eq!(f.weights[0], 0.0, "{f:?}");
        assert!(f.weights[1] < -1.0, "{f:?}");
    }
}
