//! Drift conversations (`{id, turns: [text], drift_at}`) through ContextGuard, in process: each
//! conversation's turns are fed in order (score, then absorb) into a fresh topic; the
//! conversation is predicted to drift when any turn is flagged. Reports conversation-level
//! precision, recall, F1, false-positive rate, AUROC (score: the highest turn score), how often the
//! first flagged turn is exactly `drift_at`, throughput, and the same for a plain word-overlap
//! baseline whose threshold is tuned on the training conversations.
//!
//! Split: conversations whose id ends in an even number trained and tuned the model
//! (`codeguardians train contextguard`); odd ones are held out.

use std::collections::HashSet;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use cg_contextguard::analysis::model::is_held_out;
use cg_contextguard::analysis::training::choose_threshold;
use cg_contextguard::analysis::{DriftSettings, Topic};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Split;
use super::baseline::score_disjoint;
use super::metrics::{auroc, binary};

#[derive(Debug, Deserialize)]
pub struct Conversation {
    pub id: String,
    pub turns: Vec<String>,
    #[serde(default)]
    pub drift_at: Option<usize>,
}

pub fn load(path: &Path) -> anyhow::Result<Vec<Conversation>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(i, l)| {
            serde_json::from_str(l).with_context(|| format!("{} line {}", path.display(), i + 1))
        })
        .collect()
}

fn chosen(rows: &[Conversation], split: Split) -> Vec<&Conversation> {
    rows.iter()
        .filter(|c| match split {
            Split::All => true,
            Split::Heldout => is_held_out(&c.id),
            Split::Train => !is_held_out(&c.id),
        })
        .collect()
}

/// Where the first flagged turn falls relative to `drift_at`, among correctly flagged
/// conversations.
fn placement(first_flagged: &[Option<usize>], drift_at: &[Option<usize>]) -> Value {
    let (mut exact, mut early, mut late) = (0usize, 0usize, 0usize);
    for (f, d) in first_flagged.iter().zip(drift_at) {
        if let (Some(f), Some(d)) = (f, d) {
            match f.cmp(d) {
                std::cmp::Ordering::Equal => exact += 1,
                std::cmp::Ordering::Less => early += 1,
                std::cmp::Ordering::Greater => late += 1,
            }
        }
    }
    let caught = exact + early + late;
    json!({
        "rate": if caught == 0 { 0.0 } else { exact as f64 / caught as f64 },
        "exact": exact,
        "early": early,
        "late": late,
    })
}

/// Plain word-overlap drift: 1 − Jaccard(words of the turn, words of all earlier turns).
fn jaccard_scores(turns: &[String]) -> Vec<f64> {
    let words = |t: &str| -> HashSet<String> {
        t.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect()
    };
    let mut seen: HashSet<String> = HashSet::new();
    turns
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let w = words(t);
            let union = w.union(&seen).count();
            let score = if i == 0 || union == 0 {
                0.0
            } else {
                1.0 - w.intersection(&seen).count() as f64 / union as f64
            };
            seen.extend(w);
            score
        })
        .collect()
}

/// The baseline's threshold, tuned by the same rule as the model's (conversation F1 plus
/// exact-turn rate) on conversations it never scores: `train`'s, or the file's tuning ones (see
/// [`super::baseline`]); and its figures on `rows`.
fn baseline(all: &[Conversation], rows: &[&Conversation], train: Option<&[Conversation]>) -> Value {
    let pool: Vec<&Conversation> = match train {
        Some(t) => t.iter().collect(),
        None => chosen(all, Split::Train),
    };
    let fitted = score_disjoint(
        &pool,
        rows,
        |c| c.id.as_str(),
        |training| {
            let scores: Vec<Vec<f64>> = training.iter().map(|c| jaccard_scores(&c.turns)).collect();
            let at: Vec<Option<usize>> = training.iter().map(|c| c.drift_at).collect();
            choose_threshold(&scores, &at).threshold
        },
        |threshold, c| {
            let s = jaccard_scores(&c.turns);
            let max = s.iter().copied().fold(0.0, f64::max);
            (max, s.iter().position(|x| *x >= *threshold), *threshold)
        },
    );
    let Some((scored, fitting)) = fitted else {
        return Value::Null;
    };
    let drift_at: Vec<Option<usize>> = rows.iter().map(|c| c.drift_at).collect();
    let labels: Vec<bool> = drift_at.iter().map(Option::is_some).collect();
    let max: Vec<f64> = scored.iter().map(|s| s.0).collect();
    let first: Vec<Option<usize>> = scored.iter().map(|s| s.1).collect();
    let flagged: Vec<f64> = first
        .iter()
        .map(|f| if f.is_some() { 1.0 } else { 0.0 })
        .collect();
    let thresholds: Vec<f64> = scored.iter().map(|s| s.2).collect();
    let mean_threshold = thresholds.iter().sum::<f64>() / thresholds.len().max(1) as f64;
    json!({
        "method": "1 - Jaccard(words of the turn, words of all earlier turns), threshold tuned on conversations it does not score",
        "training": fitting.describe(),
        "threshold": mean_threshold,
        "conversation": binary(&flagged, &labels, 0.5),
        "auroc": auroc(&max, &labels),
        "exact_turn": placement(&first, &drift_at),
    })
}

/// Measure `all`'s conversations of `split`; the baseline is tuned on `train` when given.
pub fn evaluate(
    all: &[Conversation],
    split: Split,
    train: Option<&[Conversation]>,
) -> anyhow::Result<Value> {
    let rows = chosen(all, split);
    let settings = DriftSettings::default();
    let started = Instant::now();
    let mut max_scores = Vec::with_capacity(rows.len());
    let mut first_flagged = Vec::with_capacity(rows.len());
    let (mut turns, mut bytes) = (0usize, 0usize);
    for c in &rows {
        let mut topic = Topic::default();
        let mut max = 0.0f64;
        let mut first = None;
        for (i, t) in c.turns.iter().enumerate() {
            let d = topic.observe(t, &settings);
            max = max.max(d.drift_score);
            if d.drift_detected && first.is_none() {
                first = Some(i);
            }
        }
        turns += c.turns.len();
        bytes += c.turns.iter().map(String::len).sum::<usize>();
        max_scores.push(max);
        first_flagged.push(first);
    }
    let elapsed = started.elapsed().as_secs_f64().max(1e-9);
    let labels: Vec<bool> = rows.iter().map(|c| c.drift_at.is_some()).collect();
    let drift_at: Vec<Option<usize>> = rows.iter().map(|c| c.drift_at).collect();
    // A conversation is flagged when any turn is, i.e. when its highest score reaches the
    // threshold (a turn with nothing to compare scores 0 and the threshold is above 0).
    Ok(json!({
        "guard": "contextguard",
        "format": "drift",
        "split": split.name(),
        "rows": rows.len(),
        "turns": turns,
        "threshold": settings.threshold,
        "conversation": binary(&max_scores, &labels, settings.threshold),
        "auroc": auroc(&max_scores, &labels),
        "exact_turn": placement(&first_flagged, &drift_at),
        "errors": errors(&rows, &max_scores, &first_flagged),
        "rows_per_second": rows.len() as f64 / elapsed,
        "turns_per_second": turns as f64 / elapsed,
        "mb_per_second": bytes as f64 / 1e6 / elapsed,
        "baseline": baseline(all, &rows, train),
    }))
}

/// The conversations the model got wrong (missed or falsely flagged), for error analysis (in the
/// `--json` report): id, `drift_at`, the first flagged turn and the highest turn score.
fn errors(rows: &[&Conversation], max: &[f64], first: &[Option<usize>]) -> Value {
    rows.iter()
        .zip(max.iter().zip(first))
        .filter(|(c, (_, f))| c.drift_at.is_some() != f.is_some())
        .map(|(c, (m, f))| json!({"id": c.id, "drift_at": c.drift_at, "first_flagged": f, "max_score": m}))
        .collect()
}

/// The drift part of the printed report.
pub fn print(report: &Value, fmt: impl Fn(&Value) -> String) {
    let line = |name: &str, r: &Value| {
        let b = &r["conversation"];
        let e = &r["exact_turn"];
        println!(
            "  {name:<9} threshold {}  precision {} recall {} F1 {} FPR {} AUROC {}  | first flagged turn = drift_at: {} (exact {}, early {}, late {})",
            fmt(&r["threshold"]),
            fmt(&b["precision"]),
            fmt(&b["recall"]),
            fmt(&b["f1"]),
            fmt(&b["false_positive_rate"]),
            fmt(&r["auroc"]),
            fmt(&e["rate"]),
            e["exact"],
            e["early"],
            e["late"],
        );
    };
    println!(
        "  {} turns, {:.0} turns/s",
        report["turns"],
        report["turns_per_second"].as_f64().unwrap_or(0.0)
    );
    line("model", report);
    line("baseline", &report["baseline"]);
    if let Some(t) = report["baseline"]["training"].as_str() {
        println!("  baseline {t}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conversation(id: &str, turns: &[&str], drift_at: Option<usize>) -> Conversation {
        Conversation {
            id: id.into(),
            turns: turns.iter().map(|t| (*t).to_owned()).collect(),
            drift_at,
        }
    }

    #[test]
    fn jaccard_baseline_scores() {
        let s = jaccard_scores(&[
            "the ferry leaves".into(),
            "the ferry leaves".into(),
            "cake recipes".into(),
        ]);
        assert_eq!(s, [0.0, 0.0, 1.0]);
    }

    #[test]
    fn placement_counts_early_exact_late() {
        let p = placement(
            &[Some(3), Some(1), Some(5), None, Some(2)],
            &[Some(3), Some(3), Some(4), Some(2), None],
        );
        assert_eq!(
            (p["exact"].as_u64(), p["early"].as_u64(), p["late"].as_u64()),
            (Some(1), Some(1), Some(1))
        );
        assert!((p["rate"].as_f64().unwrap_or(0.0) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn evaluates_the_chosen_split() {
        let football = [
            "Scotland will learn in May whether the qualifier with Georgia is played behind closed doors.",
            "UEFA opened disciplinary proceedings against the Georgian Football Federation after fans invaded the pitch.",
            "Georgian fans twice invaded the pitch during the defeat by Germany in Tbilisi.",
        ];
        let rows = vec![
            conversation("drift-1-1", &football, None),
            conversation(
                "drift-1-3",
                &[
                    football[0],
                    football[1],
                    "Whisk the eggs with sugar, fold in the flour and bake the sponge cake at 180 degrees.",
                ],
                Some(2),
            ),
            conversation("drift-1-2", &football, None),
            conversation("drift-1-4", &football, None),
        ];
        let r = evaluate(&rows, Split::Heldout, None).unwrap();
        assert_eq!(r["rows"], 2);
        assert_eq!(r["turns"], 6);
        assert_eq!(r["format"], "drift");
        assert_eq!(r["conversation"]["true_negatives"], 1, "{r}");
        assert!(r["auroc"].is_number(), "{r}");
        assert!(r["baseline"]["threshold"].is_number(), "{r}");
        let all = evaluate(&rows, Split::All, None).unwrap();
        assert_eq!(all["rows"], 4);
        assert!(
            all["baseline"]["training"]
                .as_str()
                .is_some_and(|t| t.starts_with("cross-fitted")),
            "{all}"
        );
    }
}
