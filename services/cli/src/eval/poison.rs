//! Poison batches (`{id, samples: [{id, content, label}], poisoned: [{id, kind}]}`) through
//! HealthGuard: per-sample precision, recall and F1, overall and per kind.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use cg_healthguard::analysis::{Sample, analyze};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Split;
use super::metrics::binary;

#[derive(Debug, Deserialize)]
pub struct Batch {
    pub id: String,
    pub samples: Vec<Row>,
    #[serde(default)]
    pub poisoned: Vec<Poisoned>,
}

#[derive(Debug, Deserialize)]
pub struct Row {
    pub id: String,
    pub content: String,
    #[serde(default)]
    pub label: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Poisoned {
    pub id: String,
    pub kind: String,
}

pub fn load(path: &Path) -> anyhow::Result<Vec<Batch>> {
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

/// Batches are split by the parity of their last number: even ones tuned the thresholds, odd ones
/// are held out.
pub fn is_held_out(batch_id: &str) -> bool {
    batch_id
        .rsplit('-')
        .next()
        .and_then(|n| n.parse::<u64>().ok())
        .is_some_and(|n| n % 2 == 1)
}

fn prf(tp: usize, fp: usize, fnn: usize) -> Value {
    let p = if tp + fp == 0 {
        0.0
    } else {
        tp as f64 / (tp + fp) as f64
    };
    let r = if tp + fnn == 0 {
        0.0
    } else {
        tp as f64 / (tp + fnn) as f64
    };
    let f1 = if p + r == 0.0 {
        0.0
    } else {
        2.0 * p * r / (p + r)
    };
    json!({"precision": p, "recall": r, "f1": f1, "support": tp + fnn, "predicted": tp + fp})
}

pub fn evaluate(batches: &[Batch], split: Split) -> Value {
    let chosen: Vec<&Batch> = batches
        .iter()
        .filter(|b| match split {
            Split::All => true,
            Split::Heldout => is_held_out(&b.id),
            Split::Train => !is_held_out(&b.id),
        })
        .collect();
    let started = Instant::now();
    let mut truth = Vec::new();
    let mut predicted = Vec::new();
    let mut confidences = Vec::new();
    let mut bytes = 0;
    for b in &chosen {
        let kinds: HashMap<&str, &str> = b
            .poisoned
            .iter()
            .map(|p| (p.id.as_str(), p.kind.as_str()))
            .collect();
        let samples: Vec<Sample<'_>> = b
            .samples
            .iter()
            .map(|s| Sample {
                id: &s.id,
                content: &s.content,
                label: s.label.as_deref(),
            })
            .collect();
        bytes += b.samples.iter().map(|s| s.content.len()).sum::<usize>();
        for (s, r) in b.samples.iter().zip(analyze(&samples)) {
            truth.push(kinds.get(s.id.as_str()).map(|k| (*k).to_owned()));
            predicted.push(r.kind.map(str::to_owned));
            confidences.push(r.confidence);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let labels: Vec<bool> = truth.iter().map(Option::is_some).collect();
    let overall = binary(&confidences, &labels, cg_healthguard::analysis::POISONED_AT);
    let mut per_kind = BTreeMap::new();
    let kinds: std::collections::BTreeSet<&str> =
        truth.iter().flatten().map(String::as_str).collect();
    for kind in kinds {
        let (mut tp, mut fp, mut fnn, mut detected) = (0, 0, 0, 0);
        for (t, p) in truth.iter().zip(&predicted) {
            let is = t.as_deref() == Some(kind);
            let said = p.as_deref() == Some(kind);
            match (is, said) {
                (true, true) => tp += 1,
                (false, true) => fp += 1,
                (true, false) => fnn += 1,
                _ => {}
            }
            if is && p.is_some() {
                detected += 1;
            }
        }
        let mut m = prf(tp, fp, fnn);
        m["detected_as_any_kind"] = json!(detected as f64 / (tp + fnn).max(1) as f64);
        per_kind.insert(kind, m);
    }
    json!({
        "guard": "healthguard",
        "format": "poison",
        "split": split.name(),
        "batches": chosen.len(),
        "rows": truth.len(),
        "overall": overall,
        "per_kind": per_kind,
        "rows_per_second": truth.len() as f64 / elapsed.max(1e-9),
        "mb_per_second": bytes as f64 / 1e6 / elapsed.max(1e-9),
    })
}
