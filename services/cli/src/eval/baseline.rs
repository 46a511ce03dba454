//! Same-run baselines that never see the rows they score.
//!
//! A learned baseline (BiasGuard's TF-IDF classifier, ContextGuard's tuned word-overlap
//! threshold) is trained on a pool of rows: the rows of `--train FILE` when given, otherwise the
//! scored file's tuning rows. Rows that are also scored are always taken out of the pool. When the
//! scored rows are themselves part of the pool (`--split train` or `--split all` without
//! `--train`), the baseline is cross-fitted instead: the scored rows are cut into
//! [`FOLDS`] folds by position and each fold is scored by a baseline trained on the pool without
//! that fold. Either way no row is scored by a baseline that was trained on it.

use std::collections::HashSet;

/// Folds of a cross-fitted baseline.
pub const FOLDS: usize = 5;

/// How the baseline's training rows were chosen, for the report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fitting {
    /// One baseline, trained on this many pool rows, none of them scored.
    Disjoint { training_rows: usize },
    /// [`FOLDS`] baselines, each scoring one fold of the scored rows and trained on the pool
    /// without that fold.
    CrossFitted { folds: usize },
}

impl Fitting {
    pub fn describe(&self) -> String {
        match self {
            Self::Disjoint { training_rows } => {
                format!("trained on {training_rows} rows disjoint from the scored ones")
            }
            Self::CrossFitted { folds } => format!(
                "cross-fitted: the scored rows in {folds} folds, each scored by a baseline trained on the other rows only"
            ),
        }
    }
}

/// Score every row of `scored` with a baseline trained (by `train`) only on rows of `pool` that
/// are not that row, and say how. `id` identifies a row (a pair counts as one row); the result is
/// in the order of `scored`. `None` when the pool has no row left to train on.
pub fn score_disjoint<R, M, S>(
    pool: &[&R],
    scored: &[&R],
    id: impl Fn(&R) -> &str,
    train: impl Fn(&[&R]) -> M,
    score: impl Fn(&M, &R) -> S,
) -> Option<(Vec<S>, Fitting)> {
    let scored_ids: HashSet<&str> = scored.iter().map(|r| id(r)).collect();
    let overlaps = pool.iter().any(|r| scored_ids.contains(id(r)));
    if !overlaps {
        if pool.is_empty() {
            return None;
        }
        let model = train(pool);
        let out = scored.iter().map(|r| score(&model, r)).collect();
        return Some((
            out,
            Fitting::Disjoint {
                training_rows: pool.len(),
            },
        ));
    }
    let mut out: Vec<Option<S>> = scored.iter().map(|_| None).collect();
    for fold in 0..FOLDS {
        let held: HashSet<&str> = scored
            .iter()
            .enumerate()
            .filter(|(i, _)| i % FOLDS == fold)
            .map(|(_, r)| id(r))
            .collect();
        if held.is_empty() {
            continue;
        }
        let training: Vec<&R> = pool
            .iter()
            .copied()
            .filter(|r| !held.contains(id(r)))
            .collect();
        if training.is_empty() {
            return None;
        }
        let model = train(&training);
        for (i, r) in scored.iter().enumerate().filter(|(i, _)| i % FOLDS == fold) {
            out[i] = Some(score(&model, r));
        }
    }
    let out: Option<Vec<S>> = out.into_iter().collect();
    out.map(|o| (o, Fitting::CrossFitted { folds: FOLDS }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A "model" that remembers the ids it was trained on, so the test can see what each row's
    /// baseline saw.
    fn trained_on(rows: &[&(String, u8)]) -> Vec<String> {
        rows.iter().map(|r| r.0.clone()).collect()
    }

    fn rows(ids: &[&str]) -> Vec<(String, u8)> {
        ids.iter().map(|i| ((*i).to_owned(), 0)).collect()
    }

    #[test]
    fn a_disjoint_pool_trains_one_baseline() {
        let pool = rows(&["a", "b", "c"]);
        let scored = rows(&["x", "y"]);
        let (seen, fitting) = score_disjoint(
            &pool.iter().collect::<Vec<_>>(),
            &scored.iter().collect::<Vec<_>>(),
            |r| r.0.as_str(),
            trained_on,
            |m, _| m.clone(),
        )
        .unwrap();
        assert_eq!(fitting, Fitting::Disjoint { training_rows: 3 });
        assert!(seen.iter().all(|s| s == &["a", "b", "c"]));
    }

    #[test]
    fn no_row_is_scored_by_a_baseline_trained_on_it() {
        // `--split all`: every scored row is in the pool.
        let all = rows(&["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l"]);
        let refs: Vec<&(String, u8)> = all.iter().collect();
        let (seen, fitting) = score_disjoint(
            &refs,
            &refs,
            |r| r.0.as_str(),
            trained_on,
            |m, r| (r.0.clone(), m.clone()),
        )
        .unwrap();
        assert_eq!(fitting, Fitting::CrossFitted { folds: FOLDS });
        assert_eq!(seen.len(), all.len());
        for (row, training) in &seen {
            assert!(!training.contains(row), "{row} in {training:?}");
            // Everything outside its fold is still used.
            assert!(training.len() >= all.len() - all.len().div_ceil(FOLDS));
        }
    }

    #[test]
    fn an_empty_pool_gives_no_baseline() {
        let scored = rows(&["x"]);
        let none = score_disjoint::<(String, u8), Vec<String>, usize>(
            &[],
            &scored.iter().collect::<Vec<_>>(),
            |r| r.0.as_str(),
            trained_on,
            |m, _| m.len(),
        );
        assert!(none.is_none());
    }
}
