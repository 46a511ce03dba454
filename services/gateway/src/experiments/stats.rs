//! The significance tests of an experiment's analysis: a two-proportion z-test for conversion
//! metrics and Welch's unequal-variance t-test for means, each with a two-sided p-value and a
//! confidence interval for the difference (treatment − control). Distributions from `statrs`.

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// What a metric of one variant adds up to: count, sum and sum of squares of its values.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Totals {
    pub n: u64,
    pub sum: f64,
    pub sum_sq: f64,
}

impl Totals {
    /// Totals of a list of values.
    pub fn of(values: &[f64]) -> Self {
        Self {
            n: values.len() as u64,
            sum: values.iter().sum(),
            sum_sq: values.iter().map(|v| v * v).sum(),
        }
    }

    pub fn mean(&self) -> Option<f64> {
        (self.n > 0).then(|| self.sum / self.n as f64)
    }

    /// The sample variance (n − 1 in the denominator); `None` below two values. Rounding can
    /// make `sum_sq − sum²/n` slightly negative for constant values: clamped to zero.
    pub fn variance(&self) -> Option<f64> {
        if self.n < 2 {
            return None;
        }
        let n = self.n as f64;
        Some(((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0))
    }
}

/// The outcome of a test of treatment against control.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct TestResult {
    /// `two_proportion_z` or `welch_t`.
    pub test: &'static str,
    /// z or t.
    pub statistic: f64,
    /// Welch–Satterthwaite degrees of freedom (t-test only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub degrees_of_freedom: Option<f64>,
    /// Two-sided.
    pub p_value: f64,
    /// Treatment minus control (rates or means).
    pub difference: f64,
    /// For `difference`, at the experiment's confidence level.
    pub confidence_interval: [f64; 2],
    /// `p_value < 1 − confidence level`.
    pub significant: bool,
}

fn standard_normal() -> Normal {
    // Mean 0, standard deviation 1 are valid parameters.
    Normal::standard()
}

/// Two-proportion z-test of `x2/n2` (treatment) against `x1/n1` (control): pooled standard
/// error for the statistic, unpooled for the interval. `None` when a sample is empty, a count
/// exceeds its sample, or both rates are 0 or both 1 (no variation to test).
pub fn two_proportion_z(x1: u64, n1: u64, x2: u64, n2: u64, confidence: f64) -> Option<TestResult> {
    if n1 == 0 || n2 == 0 || x1 > n1 || x2 > n2 || !(0.0..1.0).contains(&confidence) {
        return None;
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let (p1, p2) = (x1 as f64 / n1f, x2 as f64 / n2f);
    let pooled = (x1 + x2) as f64 / (n1f + n2f);
    let se_pooled = (pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f)).sqrt();
    if se_pooled <= 0.0 || !se_pooled.is_finite() {
        return None;
    }
    let z = (p2 - p1) / se_pooled;
    let normal = standard_normal();
    let p_value = (2.0 * normal.sf(z.abs())).min(1.0);
    let se = (p1 * (1.0 - p1) / n1f + p2 * (1.0 - p2) / n2f).sqrt();
    let q = normal.inverse_cdf(0.5 + confidence / 2.0);
    let difference = p2 - p1;
    Some(TestResult {
        test: "two_proportion_z",
        statistic: z,
        degrees_of_freedom: None,
        p_value,
        difference,
        confidence_interval: [difference - q * se, difference + q * se],
        significant: p_value < 1.0 - confidence,
    })
}

/// Welch's t-test of `treatment` against `control`. `None` with fewer than two values on a side
/// or no variance on both.
pub fn welch_t(control: &Totals, treatment: &Totals, confidence: f64) -> Option<TestResult> {
    if !(0.0..1.0).contains(&confidence) {
        return None;
    }
    let (v1, v2) = (control.variance()?, treatment.variance()?);
    let (m1, m2) = (control.mean()?, treatment.mean()?);
    let (n1, n2) = (control.n as f64, treatment.n as f64);
    let (a, b) = (v1 / n1, v2 / n2);
    let se = (a + b).sqrt();
    if se <= 0.0 || !se.is_finite() {
        return None;
    }
    let df = (a + b).powi(2) / (a * a / (n1 - 1.0) + b * b / (n2 - 1.0));
    let t = (m2 - m1) / se;
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    let p_value = (2.0 * dist.sf(t.abs())).min(1.0);
    let q = dist.inverse_cdf(0.5 + confidence / 2.0);
    let difference = m2 - m1;
    Some(TestResult {
        test: "welch_t",
        statistic: t,
        degrees_of_freedom: Some(df),
        p_value,
        difference,
        confidence_interval: [difference - q * se, difference + q * se],
        significant: p_value < 1.0 - confidence,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "{actual} is not within {tolerance} of {expected}"
        );
    }

    /// Reference values from SciPy 1.x: `z = (p2-p1)/sqrt(p(1-p)(1/n1+1/n2))`,
    /// `2*scipy.stats.norm.sf(|z|)`, interval `±norm.ppf(0.975)*sqrt(p1q1/n1+p2q2/n2)`.
    #[test]
    fn two_proportion_z_matches_scipy() {
        let r = two_proportion_z(200, 1000, 250, 1000, 0.95).unwrap();
        close(r.statistic, 2.677_397_763_008_329, 1e-9);
        close(r.p_value, 0.007_419_649_261_025_687, 1e-9);
        close(r.difference, 0.05, 1e-12);
        close(r.confidence_interval[0], 0.013_463_621_687_539_84, 1e-7);
        close(r.confidence_interval[1], 0.086_536_378_312_460_14, 1e-7);
        assert!(r.significant);
        // The other way round: same p, opposite sign, not significant at 99.5 %.
        let back = two_proportion_z(250, 1000, 200, 1000, 0.995).unwrap();
        close(back.statistic, -2.677_397_763_008_329, 1e-9);
        close(back.p_value, r.p_value, 1e-12);
        assert!(!back.significant);
    }

    #[test]
    fn two_proportion_z_refuses_what_it_cannot_test() {
        assert!(two_proportion_z(0, 100, 0, 100, 0.95).is_none());
        assert!(two_proportion_z(100, 100, 50, 50, 0.95).is_none());
        assert!(two_proportion_z(1, 0, 1, 10, 0.95).is_none());
        assert!(two_proportion_z(11, 10, 1, 10, 0.95).is_none());
        assert!(two_proportion_z(1, 10, 1, 10, 1.0).is_none());
        // Equal rates: z = 0, p = 1.
        let same = two_proportion_z(10, 100, 20, 200, 0.95).unwrap();
        close(same.statistic, 0.0, 1e-12);
        close(same.p_value, 1.0, 1e-12);
    }

    /// Reference values from `scipy.stats.ttest_ind(b, a, equal_var=False)` and its
    /// `confidence_interval(0.95)`.
    #[test]
    fn welch_t_matches_scipy() {
        let a = [
            27.5, 21.0, 19.0, 23.6, 17.0, 17.9, 16.9, 20.1, 21.9, 22.6, 23.1, 19.6, 19.0, 21.7,
            21.4,
        ];
        let b = [
            27.1, 22.0, 20.8, 23.4, 23.4, 23.5, 25.8, 22.0, 24.8, 20.2, 21.9, 22.1, 22.9, 20.5,
            24.4,
        ];
        let r = welch_t(&Totals::of(&a), &Totals::of(&b), 0.95).unwrap();
        close(r.statistic, 2.455_356_398_286_006, 1e-9);
        close(r.degrees_of_freedom.unwrap(), 24.988_529_290_231_416, 1e-8);
        close(r.p_value, 0.021_378_001_462_866_992, 1e-8);
        close(r.confidence_interval[0], 0.349_237_066_192_406_9, 1e-6);
        close(r.confidence_interval[1], 3.984_096_267_140_929, 1e-6);
        assert!(r.significant);

        // Unequal sizes and a 90 % interval.
        let c = Totals::of(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let d = Totals::of(&[2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
        let r = welch_t(&c, &d, 0.90).unwrap();
        close(r.statistic, 2.376_354_103_144_018_3, 1e-9);
        close(r.degrees_of_freedom.unwrap(), 6.972_255_729_794_934, 1e-8);
        close(r.p_value, 0.049_284_338_206_730_53, 1e-8);
        close(r.confidence_interval[0], 0.809_038_772_005_434, 1e-6);
        close(r.confidence_interval[1], 7.190_961_227_994_565, 1e-6);
        assert!(r.significant);
    }

    #[test]
    fn welch_t_refuses_what_it_cannot_test() {
        let one = Totals::of(&[3.0]);
        let two = Totals::of(&[1.0, 2.0]);
        assert!(welch_t(&one, &two, 0.95).is_none());
        let flat = Totals::of(&[4.0, 4.0, 4.0]);
        assert!(welch_t(&flat, &flat, 0.95).is_none());
        // One flat side is fine: the other's variance carries the test.
        assert!(welch_t(&flat, &Totals::of(&[3.0, 5.0, 7.0]), 0.95).is_some());
    }

    #[test]
    fn totals_give_mean_and_sample_variance() {
        let t = Totals::of(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        close(t.mean().unwrap(), 5.0, 1e-12);
        close(t.variance().unwrap(), 32.0 / 7.0, 1e-12);
        assert_eq!(Totals::default().mean(), None);
    }
}
