//! RedditBias (`{id, text, label, group}`) and CrowS-Pairs (`{id, sent_more, sent_less,
//! stereo_antistereo, bias_type}`) through BiasGuard's analysis, in process. RedditBias: precision,
//! recall, F1, balanced accuracy and false-positive rate of `bias_detected`, AUROC of
//! `bias_score`, per group. CrowS-Pairs: pairwise accuracy (is `bias_score` of `sent_more` above
//! that of `sent_less`; ties count half, and also reported as losses). Held out: ids whose number
//! is divisible by 3 (`cg_biasguard::analysis::model::is_held_out`), never used for training or
//! tuning.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, bail};
use cg_biasguard::analysis::model::is_held_out;
use cg_biasguard::analysis::training::{LabelledText, Pair};
use cg_biasguard::analysis::{BiasRequest, analyze};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Split;
use super::baseline::score_disjoint;
use super::metrics::{auroc, binary, pairwise};
use super::tfidf::Baseline;

#[derive(Debug, Deserialize)]
pub struct RedditRow {
    id: String,
    text: String,
    label: u8,
    #[serde(default)]
    group: String,
}

#[derive(Debug, Deserialize)]
pub struct CrowsRow {
    id: String,
    sent_more: String,
    sent_less: String,
    #[serde(default)]
    stereo_antistereo: String,
    #[serde(default)]
    bias_type: String,
}

/// A bias evaluation file, recognised by its fields.
#[derive(Debug)]
pub enum Data {
    Reddit(Vec<RedditRow>),
    Crows(Vec<CrowsRow>),
}

fn lines(path: &Path) -> anyhow::Result<Vec<(usize, String)>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_owned()))
        .collect())
}

pub fn load(path: &Path) -> anyhow::Result<Data> {
    let lines = lines(path)?;
    let Some((_, first)) = lines.first() else {
        bail!("{} is empty", path.display());
    };
    let first: Value =
        serde_json::from_str(first).with_context(|| format!("{} line 1", path.display()))?;
    let parse = |(n, l): &(usize, String)| -> anyhow::Result<Value> {
        serde_json::from_str(l).with_context(|| format!("{} line {n}", path.display()))
    };
    if first.get("sent_more").is_some() {
        let rows = lines
            .iter()
            .map(|l| Ok(serde_json::from_value(parse(l)?)?))
            .collect::<anyhow::Result<_>>()?;
        Ok(Data::Crows(rows))
    } else if first.get("text").is_some() && first.get("label").is_some() {
        let rows = lines
            .iter()
            .map(|l| Ok(serde_json::from_value(parse(l)?)?))
            .collect::<anyhow::Result<_>>()?;
        Ok(Data::Reddit(rows))
    } else {
        bail!(
            "{}: neither RedditBias ({{text, label}}) nor CrowS-Pairs ({{sent_more, sent_less}}) rows",
            path.display()
        )
    }
}

/// RedditBias rows for training.
pub fn labelled_texts(path: &Path) -> anyhow::Result<Vec<LabelledText>> {
    match load(path)? {
        Data::Reddit(rows) => Ok(rows
            .into_iter()
            .map(|r| LabelledText {
                id: r.id,
                text: r.text,
                label: r.label == 1,
            })
            .collect()),
        Data::Crows(_) => bail!("{} holds pairs, not labelled texts", path.display()),
    }
}

/// CrowS-Pairs pairs for training.
pub fn pairs(path: &Path) -> anyhow::Result<Vec<Pair>> {
    match load(path)? {
        Data::Crows(rows) => Ok(rows
            .into_iter()
            .map(|r| Pair {
                id: r.id,
                more: r.sent_more,
                less: r.sent_less,
            })
            .collect()),
        Data::Reddit(_) => bail!("{} holds labelled texts, not pairs", path.display()),
    }
}

fn chosen(id: &str, split: Split) -> bool {
    match split {
        Split::Heldout => is_held_out(id),
        Split::Train => !is_held_out(id),
        Split::All => true,
    }
}

fn score(text: &str) -> (f64, bool) {
    let a = analyze(&BiasRequest {
        text,
        context: None,
        detailed: false,
    });
    (a.bias_score, a.bias_detected)
}

/// Measure `data`; the baseline is trained on `train`'s rows when given (of the same format),
/// else on the file's tuning rows, never on a scored row (see [`super::baseline`]).
pub fn evaluate(data: &Data, split: Split, train: Option<&Data>) -> anyhow::Result<Value> {
    match (data, train) {
        (Data::Reddit(rows), None) => Ok(evaluate_reddit(rows, split, None)),
        (Data::Reddit(rows), Some(Data::Reddit(pool))) => {
            Ok(evaluate_reddit(rows, split, Some(pool)))
        }
        (Data::Crows(rows), None) => Ok(evaluate_crows(rows, split, None)),
        (Data::Crows(rows), Some(Data::Crows(pool))) => Ok(evaluate_crows(rows, split, Some(pool))),
        _ => bail!("--train must hold rows of the same format as the scored file"),
    }
}

/// The baseline's training pool: `--train`'s rows, or the tuning rows of the scored file.
fn pool<'a, R>(all: &'a [R], train: Option<&'a [R]>, id: impl Fn(&R) -> &str) -> Vec<&'a R> {
    match train {
        Some(rows) => rows.iter().collect(),
        None => all.iter().filter(|r| !is_held_out(id(r))).collect(),
    }
}

fn evaluate_reddit(all: &[RedditRow], split: Split, train: Option<&[RedditRow]>) -> Value {
    let rows: Vec<&RedditRow> = all.iter().filter(|r| chosen(&r.id, split)).collect();
    let fitted = score_disjoint(
        &pool(all, train, |r| r.id.as_str()),
        &rows,
        |r| r.id.as_str(),
        |training| {
            Baseline::train(
                &training.iter().map(|r| r.text.as_str()).collect::<Vec<_>>(),
                &training.iter().map(|r| r.label == 1).collect::<Vec<_>>(),
            )
        },
        |b, r| b.probability(&r.text),
    );
    let started = Instant::now();
    let results: Vec<(f64, bool)> = rows.iter().map(|r| score(&r.text)).collect();
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let bytes: usize = rows.iter().map(|r| r.text.len()).sum();
    let labels: Vec<bool> = rows.iter().map(|r| r.label == 1).collect();
    let detected: Vec<f64> = results
        .iter()
        .map(|r| if r.1 { 1.0 } else { 0.0 })
        .collect();
    let scores: Vec<f64> = results.iter().map(|r| r.0).collect();
    let mut groups: BTreeMap<&str, (Vec<f64>, Vec<bool>)> = BTreeMap::new();
    for ((r, d), l) in rows.iter().zip(&detected).zip(&labels) {
        let g = groups.entry(r.group.as_str()).or_default();
        g.0.push(*d);
        g.1.push(*l);
    }
    let per_group: serde_json::Map<String, Value> = groups
        .into_iter()
        .map(|(g, (d, l))| {
            (
                g.to_owned(),
                json!({"rows": d.len(), "measures": binary(&d, &l, 0.5)}),
            )
        })
        .collect();
    json!({
        "guard": "biasguard",
        "format": "redditbias",
        "split": split.name(),
        "held_out_rule": "id number divisible by 3",
        "rows": rows.len(),
        "positives": labels.iter().filter(|l| **l).count(),
        "rows_per_second": rows.len() as f64 / seconds,
        "mb_per_second": bytes as f64 / 1e6 / seconds,
        "detected": binary(&detected, &labels, 0.5),
        "auroc": auroc(&scores, &labels),
        "per_group": per_group,
        // The rows BiasGuard got wrong, for error analysis.
        "errors": rows
            .iter()
            .zip(&results)
            .filter(|(r, (_, detected))| (r.label == 1) != *detected)
            .map(|(r, (score, _))| json!({"id": r.id, "group": r.group, "label": r.label, "bias_score": score}))
            .collect::<Vec<_>>(),
        "baseline": fitted.map(|(p, fitting)| json!({
            "method": "TF-IDF words + logistic regression (C = 1), probability ≥ 0.5",
            "training": fitting.describe(),
            "detected": binary(&p, &labels, 0.5),
            "auroc": auroc(&p, &labels),
        })),
    })
}

fn evaluate_crows(all: &[CrowsRow], split: Split, train: Option<&[CrowsRow]>) -> Value {
    let rows: Vec<&CrowsRow> = all.iter().filter(|r| chosen(&r.id, split)).collect();
    let fitted = score_disjoint(
        &pool(all, train, |r| r.id.as_str()),
        &rows,
        |r| r.id.as_str(),
        |training| {
            let texts: Vec<&str> = training
                .iter()
                .flat_map(|r| [r.sent_more.as_str(), r.sent_less.as_str()])
                .collect();
            let labels: Vec<bool> = training.iter().flat_map(|_| [true, false]).collect();
            Baseline::train(&texts, &labels)
        },
        |b, r| (b.probability(&r.sent_more), b.probability(&r.sent_less)),
    );
    let started = Instant::now();
    let scored: Vec<(f64, f64)> = rows
        .iter()
        .map(|r| (score(&r.sent_more).0, score(&r.sent_less).0))
        .collect();
    let seconds = started.elapsed().as_secs_f64().max(1e-9);
    let bytes: usize = rows
        .iter()
        .map(|r| r.sent_more.len() + r.sent_less.len())
        .sum();
    let strict = |p: &[(f64, f64)]| -> Option<f64> {
        (!p.is_empty()).then(|| p.iter().filter(|(a, b)| a > b).count() as f64 / p.len() as f64)
    };
    let mut by_type: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for (r, s) in rows.iter().zip(&scored) {
        by_type.entry(r.bias_type.clone()).or_default().push(*s);
        by_type
            .entry(format!("({})", r.stereo_antistereo))
            .or_default()
            .push(*s);
    }
    let per_type: serde_json::Map<String, Value> = by_type
        .into_iter()
        .map(|(t, p)| {
            (
                t,
                json!({"pairs": p.len(), "pairwise_accuracy": pairwise(&p)}),
            )
        })
        .collect();
    json!({
        "guard": "biasguard",
        "format": "crows_pairs",
        "split": split.name(),
        "held_out_rule": "id number divisible by 3",
        "rows": rows.len(),
        "rows_per_second": 2.0 * rows.len() as f64 / seconds,
        "mb_per_second": bytes as f64 / 1e6 / seconds,
        "pairwise_accuracy": pairwise(&scored),
        "pairwise_accuracy_ties_lost": strict(&scored),
        "ties": scored.iter().filter(|(a, b)| a == b).count(),
        "per_type": per_type,
        "baseline": fitted.map(|(p, fitting)| json!({
            "method": "TF-IDF words + logistic regression (C = 1) trained on the sentences of pairs (more stereotyping = 1)",
            "training": fitting.describe(),
            "pairwise_accuracy": pairwise(&p),
        })),
    })
}

pub fn print(report: &Value, fmt: fn(&Value) -> String) {
    if report["format"] == "redditbias" {
        let d = &report["detected"];
        println!(
            "  bias_detected: precision {} recall {} F1 {} balanced accuracy {} FPR {}  | AUROC of bias_score {}",
            fmt(&d["precision"]),
            fmt(&d["recall"]),
            fmt(&d["f1"]),
            fmt(&d["balanced_accuracy"]),
            fmt(&d["false_positive_rate"]),
            fmt(&report["auroc"]),
        );
        let b = &report["baseline"]["detected"];
        println!(
            "  baseline (TF-IDF + LR, {}): precision {} recall {} F1 {} balanced accuracy {} FPR {}  | AUROC {}",
            report["baseline"]["training"].as_str().unwrap_or("none"),
            fmt(&b["precision"]),
            fmt(&b["recall"]),
            fmt(&b["f1"]),
            fmt(&b["balanced_accuracy"]),
            fmt(&b["false_positive_rate"]),
            fmt(&report["baseline"]["auroc"]),
        );
        if let Some(groups) = report["per_group"].as_object() {
            for (g, v) in groups {
                let m = &v["measures"];
                println!(
                    "  {g:<20} rows {:>5}  precision {} recall {} balanced accuracy {} FPR {}",
                    v["rows"],
                    fmt(&m["precision"]),
                    fmt(&m["recall"]),
                    fmt(&m["balanced_accuracy"]),
                    fmt(&m["false_positive_rate"]),
                );
            }
        }
    }
    if report["format"] == "crows_pairs" {
        println!(
            "  pairwise accuracy {} (ties count half; {} ties; counting ties as losses: {})",
            fmt(&report["pairwise_accuracy"]),
            report["ties"],
            fmt(&report["pairwise_accuracy_ties_lost"]),
        );
        println!(
            "  baseline (TF-IDF + LR, {}): pairwise accuracy {}",
            report["baseline"]["training"].as_str().unwrap_or("none"),
            fmt(&report["baseline"]["pairwise_accuracy"])
        );
        if let Some(types) = report["per_type"].as_object() {
            for (t, v) in types {
                println!(
                    "  {t:<20} pairs {:>4}  pairwise accuracy {}",
                    v["pairs"],
                    fmt(&v["pairwise_accuracy"])
                );
            }
        }
    }
}
