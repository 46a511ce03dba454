//! cg-learn: the learned model TrustGuard's grounding and ContextGuard's drift share, a logistic
//! regression over a handful of dense features, standardised, fitted by full-batch gradient
//! descent (deterministic: same data, same model); and [`sparse`], the same model over sparse
//! (word) features fitted by Adam.

pub mod sparse;

use serde::{Deserialize, Serialize};

/// The logistic function.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// A fitted model: the standardisation and the weights on the standardised inputs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Logistic {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub weights: Vec<f64>,
    pub bias: f64,
}

impl Logistic {
    /// The probability of the positive class.
    pub fn predict(&self, x: &[f64]) -> f64 {
        sigmoid(self.bias + self.contributions(x).iter().sum::<f64>())
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

    /// Fit with L2 penalty `l2` by `iterations` steps of full-batch gradient descent on the
    /// standardised inputs (a feature that never varies keeps a scale of 1).
    pub fn fit(xs: &[Vec<f64>], ys: &[bool], l2: f64, iterations: usize) -> Self {
        let n = xs.first().map_or(0, Vec::len);
        let rows = xs.len().max(1) as f64;
        let mut mean = vec![0.0; n];
        for x in xs {
            for (m, v) in mean.iter_mut().zip(x) {
                *m += v / rows;
            }
        }
        let mut std = vec![0.0; n];
        for x in xs {
            for ((s, v), m) in std.iter_mut().zip(x).zip(&mean) {
                *s += (v - m).powi(2) / rows;
            }
        }
        for s in &mut std {
            *s = if *s > 1e-12 { s.sqrt() } else { 1.0 };
        }
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
        let mut w = vec![0.0; n];
        let mut b = 0.0;
        let rate = 0.5;
        for _ in 0..iterations {
            let mut gw = vec![0.0; n];
            let mut gb = 0.0;
            for (x, y) in z.iter().zip(ys) {
                let p = sigmoid(b + x.iter().zip(&w).map(|(a, c)| a * c).sum::<f64>());
                let e = p - if *y { 1.0 } else { 0.0 };
                for (g, v) in gw.iter_mut().zip(x) {
                    *g += e * v;
                }
                gb += e;
            }
            for (wi, g) in w.iter_mut().zip(&gw) {
                *wi -= rate * (g / rows + l2 * *wi);
            }
            b -= rate * gb / rows;
        }
        Self {
            mean,
            std,
            weights: w,
            bias: b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_a_separable_rule_and_explains_it() {
        let xs: Vec<Vec<f64>> = (0..200)
            .map(|i| vec![f64::from(i % 10), f64::from(i % 3)])
            .collect();
        let ys: Vec<bool> = xs.iter().map(|x| x[0] >= 5.0).collect();
        let m = Logistic::fit(&xs, &ys, 1e-4, 2000);
        assert!(
            m.predict(&[9.0, 1.0]) > 0.9 && m.predict(&[0.0, 1.0]) < 0.1,
            "{m:?}"
        );
        assert!(m.weights[0].abs() > 5.0 * m.weights[1].abs());
        let c = m.contributions(&[9.0, 1.0]);
        assert!((sigmoid(m.bias + c.iter().sum::<f64>()) - m.predict(&[9.0, 1.0])).abs() < 1e-12);
    }

    #[test]
    fn a_constant_feature_keeps_a_unit_scale() {
        let xs = vec![vec![1.0, 3.0], vec![2.0, 3.0]];
        let m = Logistic::fit(&xs, &[false, true], 0.0, 10);
        assert_eq!(m.std[1], 1.0);
        assert!(m.predict(&[2.0, 3.0]).is_finite());
    }
}
