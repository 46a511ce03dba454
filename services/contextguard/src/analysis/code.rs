//! Code drift: how much of a text changed between two versions, by a line diff (Myers' O(ND)
//! algorithm, which finds a longest common subsequence of lines). Trailing white space and blank
//! lines are ignored, so re-indenting the end of a line or adding spacing is not drift.
//!
//! `drift_ratio = (added_lines + removed_lines) / (previous_lines + current_lines)`: the share of
//! all (non-blank) lines of both versions that are not common to them. 0 means identical, 1 means
//! nothing in common.

use std::collections::HashMap;

use serde::Serialize;

/// Drift is reported from this ratio up.
pub const DRIFT_RATIO: f64 = 0.3;
/// From this ratio up the severity is "high"; below [`DRIFT_RATIO`] it is "low".
pub const HIGH_DRIFT_RATIO: f64 = 0.6;
/// Fewer changed-or-common lines than this make a weaker call (confidence is scaled down).
const CONFIDENT_LINES: f64 = 10.0;
/// Beyond this edit distance the diff stops and common lines are counted ignoring order (an
/// upper bound of the true count), which bounds the work on huge, unrelated inputs.
pub const MAX_EDIT_DISTANCE: usize = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeMetrics {
    pub added_lines: usize,
    pub removed_lines: usize,
    pub common_lines: usize,
    pub drift_ratio: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CodeDrift {
    pub drift_detected: bool,
    /// How sure the call is (0.5–1): far from the threshold and with enough lines is surer.
    pub confidence: f64,
    pub severity: Severity,
    pub metrics: CodeMetrics,
    pub recommendations: Vec<String>,
}

/// Non-blank lines, without trailing white space.
fn lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .collect()
}

/// Length of a longest common subsequence of `a` and `b` (Myers' greedy forward search on the
/// edit graph), or `None` past [`MAX_EDIT_DISTANCE`].
fn common_subsequence(a: &[u32], b: &[u32]) -> Option<usize> {
    // Strip the common prefix and suffix: cheap and usually most of the text.
    let prefix = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let (a, b) = (&a[prefix..], &b[prefix..]);
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let (a, b) = (&a[..a.len() - suffix], &b[..b.len() - suffix]);
    let (n, m) = (a.len(), b.len());
    let max = (n + m).min(MAX_EDIT_DISTANCE);
    let offset = max + 1;
    // v[k + offset] = furthest x on diagonal k = x - y.
    let mut v = vec![0usize; 2 * max + 3];
    for d in 0..=max {
        let mut k = -(d as isize);
        while k <= d as isize {
            let i = (k + offset as isize) as usize;
            let mut x = if k == -(d as isize) || (k != d as isize && v[i - 1] < v[i + 1]) {
                v[i + 1]
            } else {
                v[i - 1] + 1
            };
            let mut y = (x as isize - k) as usize;
            while x < n && y < m && a[x] == b[y] {
                x += 1;
                y += 1;
            }
            v[i] = x;
            if x >= n && y >= m {
                return Some(prefix + suffix + (n + m - d) / 2);
            }
            k += 2;
        }
    }
    None
}

/// Common lines ignoring order (multiset intersection).
fn common_unordered(a: &[u32], b: &[u32]) -> usize {
    let mut counts: HashMap<u32, usize> = HashMap::new();
    for x in a {
        *counts.entry(*x).or_default() += 1;
    }
    b.iter()
        .filter(|y| match counts.get_mut(*y) {
            Some(c) if *c > 0 => {
                *c -= 1;
                true
            }
            _ => false,
        })
        .count()
}

/// Compare two versions of a text line by line.
pub fn code_drift(previous: &str, current: &str) -> CodeDrift {
    let (old, new) = (lines(previous), lines(current));
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut a = Vec::with_capacity(old.len());
    let mut b = Vec::with_capacity(new.len());
    for (lines, out) in [(&old, &mut a), (&new, &mut b)] {
        for l in lines {
            let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
            out.push(*ids.entry(l).or_insert(next));
        }
    }
    let (common, approximate) = match common_subsequence(&a, &b) {
        Some(c) => (c, false),
        None => (common_unordered(&a, &b), true),
    };
    let added = b.len() - common;
    let removed = a.len() - common;
    let total = a.len() + b.len();
    let drift_ratio = if total == 0 {
        0.0
    } else {
        (added + removed) as f64 / total as f64
    };
    let mut recommendations = Vec::new();
    if a.is_empty() {
        // Nothing to drift from: everything is new, which is not drift.
        recommendations.push(if b.is_empty() {
            "Both versions are empty: nothing to compare.".to_owned()
        } else {
            format!(
                "No previous version: all {added} lines are new. Send previous_code to measure drift."
            )
        });
        return CodeDrift {
            drift_detected: false,
            confidence: 1.0,
            severity: Severity::Low,
            metrics: CodeMetrics {
                added_lines: added,
                removed_lines: removed,
                common_lines: common,
                drift_ratio,
            },
            recommendations,
        };
    }
    let severity = if drift_ratio >= HIGH_DRIFT_RATIO {
        Severity::High
    } else if drift_ratio >= DRIFT_RATIO {
        Severity::Medium
    } else {
        Severity::Low
    };
    let drift_detected = drift_ratio >= DRIFT_RATIO;
    let margin = if drift_detected {
        (drift_ratio - DRIFT_RATIO) / (1.0 - DRIFT_RATIO)
    } else {
        (DRIFT_RATIO - drift_ratio) / DRIFT_RATIO
    };
    let support = (total as f64 / CONFIDENT_LINES).min(1.0);
    let confidence = 0.5 + 0.5 * margin * support;
    let pct = drift_ratio * 100.0;
    match severity {
        Severity::High => recommendations.push(format!(
            "{pct:.0}% of the lines differ: treat this as a rewrite and review it as new code."
        )),
        Severity::Medium => recommendations.push(format!(
            "{pct:.0}% of the lines differ: review the {added} added and {removed} removed lines."
        )),
        Severity::Low if added + removed == 0 => {
            recommendations.push("No change beyond white space.".to_owned());
        }
        Severity::Low => recommendations.push(format!(
            "Small change ({added} added, {removed} removed lines): routine review."
        )),
    }
    if removed > 2 * added && removed >= 5 {
        recommendations.push(format!(
            "Mostly deletions ({removed} lines): check nothing still depends on the removed code."
        ));
    }
    if b.is_empty() {
        recommendations.push("The current version is empty.".to_owned());
    }
    if approximate {
        recommendations.push(
            "The versions differ too much for a line diff; common lines were counted ignoring order."
                .to_owned(),
        );
    }
    CodeDrift {
        drift_detected,
        confidence,
        severity,
        metrics: CodeMetrics {
            added_lines: added,
            removed_lines: removed,
            common_lines: common,
            drift_ratio,
        },
        recommendations,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference LCS by dynamic programming.
    fn lcs(a: &[u32], b: &[u32]) -> usize {
        let mut t = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in 0..a.len() {
            for j in 0..b.len() {
                t[i + 1][j + 1] = if a[i] == b[j] {
                    t[i][j] + 1
                } else {
                    t[i][j + 1].max(t[i + 1][j])
                };
            }
        }
        t[a.len()][b.len()]
    }

    #[test]
    fn myers_matches_dynamic_programming() {
        // A small deterministic generator over a 4-letter alphabet: many repeats and ties.
        let mut s: u64 = 42;
        let mut next = || {
            s = s.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
            ((s >> 33) % 4) as u32
        };
        for len in 0..40 {
            let a: Vec<u32> = (0..len).map(|_| next()).collect();
            let b: Vec<u32> = (0..(len * 7 % 23)).map(|_| next()).collect();
            assert_eq!(common_subsequence(&a, &b), Some(lcs(&a, &b)), "{a:?} {b:?}");
        }
    }

    #[test]
    fn identical_versions_do_not_drift() {
        let code = "fn main() {\n    println!(\"hi\");\n}\n";
        let d = code_drift(code, "fn main() {   \n    println!(\"hi\");\n\n}");
        assert!(!d.drift_detected);
        assert_eq!(d.severity, Severity::Low);
        assert_eq!(
            (
                d.metrics.common_lines,
                d.metrics.added_lines,
                d.metrics.removed_lines
            ),
            (3, 0, 0)
        );
        assert_eq!(d.metrics.drift_ratio, 0.0);
    }

    #[test]
    fn rewrite_drifts_high_and_small_edit_is_low() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
        let small = code_drift(old, "a\nb\nc\nd\nE\nf\ng\nh\ni\nj\n");
        assert_eq!(
            (small.metrics.added_lines, small.metrics.removed_lines),
            (1, 1)
        );
        assert!((small.metrics.drift_ratio - 0.1).abs() < 1e-12);
        assert!(!small.drift_detected);
        let rewrite = code_drift(old, "x\ny\nz\na\n");
        assert_eq!(rewrite.metrics.common_lines, 1);
        assert!(rewrite.drift_detected);
        assert_eq!(rewrite.severity, Severity::High);
        assert!(rewrite.confidence > 0.5 && rewrite.confidence <= 1.0);
        // Reordering is change: a line diff keeps order.
        let moved = code_drift("a\nb\nc\nd\n", "c\nd\na\nb\n");
        assert_eq!(moved.metrics.common_lines, 2);
        assert_eq!(moved.severity, Severity::Medium);
    }

    #[test]
    fn empty_previous_is_all_added_without_drift() {
        let d = code_drift("", "use std::io;\nfn run() {}\n");
        assert!(!d.drift_detected);
        assert_eq!(d.metrics.added_lines, 2);
        assert_eq!(d.metrics.drift_ratio, 1.0);
        assert!(d.recommendations[0].contains("No previous version"));
        let none = code_drift("  \n", "");
        assert_eq!(none.metrics.drift_ratio, 0.0);
        assert!(!none.drift_detected);
    }

    #[test]
    fn deleting_everything_is_high_drift() {
        let d = code_drift("a\nb\nc\nd\ne\nf\n", "");
        assert!(d.drift_detected);
        assert_eq!(d.metrics.removed_lines, 6);
        assert!(d.recommendations.iter().any(|r| r.contains("deletions")));
    }

    #[test]
    fn huge_unrelated_inputs_fall_back_to_unordered_counting() {
        let a: Vec<String> = (0..3_000).map(|i| format!("old {i}")).collect();
        let mut b: Vec<String> = (0..3_000).map(|i| format!("new {i}")).collect();
        b.push("old 7".into());
        let d = code_drift(&a.join("\n"), &b.join("\n"));
        assert_eq!(d.metrics.common_lines, 1);
        assert!(
            d.recommendations
                .iter()
                .any(|r| r.contains("ignoring order"))
        );
        assert_eq!(d.severity, Severity::High);
    }

    #[test]
    fn serialises_the_contract() {
        let v = serde_json::to_value(code_drift("a\n", "b\n")).unwrap_or_default();
        assert_eq!(v["severity"], "high");
        for key in [
            "added_lines",
            "removed_lines",
            "common_lines",
            "drift_ratio",
        ] {
            assert!(v["metrics"].get(key).is_some(), "{v}");
        }
        assert!(v["recommendations"].is_array() && v["confidence"].is_number());
    }
}
