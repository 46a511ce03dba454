//! HaluEval grounding rows (`{id, task, context, question, answer, label}`) through TrustGuard.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use cg_trustguard::analysis::grounding::measure;
use cg_trustguard::analysis::{Input, Task, model, validate};
use serde::Deserialize;
use serde_json::{Value, json};

use super::metrics::{auroc, binary, pairwise};
use super::{Scorer, Split};

#[derive(Debug, Deserialize)]
pub struct Row {
    pub id: String,
    pub task: String,
    pub context: String,
    /// Absent (`null`) for summaries.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub question: String,
    pub answer: String,
    pub label: u8,
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(Option::<String>::deserialize(d)?.unwrap_or_default())
}

pub fn load(path: &Path) -> anyhow::Result<Vec<Row>> {
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

/// Risk 0–1 of one row: in process, or from a running TrustGuard.
async fn risk(scorer: &Scorer, row: &Row) -> anyhow::Result<f64> {
    match scorer {
        Scorer::InProcess => {
            let v = validate(&Input {
                content: &row.answer,
                context: Some(&row.context),
                question: Some(&row.question),
                task: None,
            });
            Ok(v.overall_score / 10.0)
        }
        Scorer::Remote { client, url, token } => {
            let resp: Value = client
                .post(format!("{url}/v1/validate"))
                .header("x-internal-token", token)
                .json(&json!({"validation_type": "grounding", "content": row.answer, "context": row.context, "question": row.question}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            resp["overall_score"]
                .as_f64()
                .map(|s| s / 10.0)
                .context("the answer has no overall_score")
        }
    }
}

/// Measure every task in `rows` of `split`.
pub async fn evaluate(rows: &[Row], split: Split, scorer: &Scorer) -> anyhow::Result<Value> {
    let chosen: Vec<&Row> = rows
        .iter()
        .filter(|r| match split {
            Split::All => true,
            Split::Heldout => model::is_held_out(&r.id),
            Split::Train => !model::is_held_out(&r.id),
        })
        .collect();
    let started = Instant::now();
    let bytes: usize = chosen
        .iter()
        .map(|r| r.answer.len() + r.context.len() + r.question.len())
        .sum();
    let mut by_task: BTreeMap<String, Vec<(&Row, f64)>> = BTreeMap::new();
    for row in &chosen {
        let r = risk(scorer, row).await?;
        by_task.entry(row.task.clone()).or_default().push((row, r));
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut tasks = serde_json::Map::new();
    for (task, scored) in &by_task {
        let scores: Vec<f64> = scored.iter().map(|(_, s)| *s).collect();
        let labels: Vec<bool> = scored.iter().map(|(r, _)| r.label == 1).collect();
        // Pairs: the same context answered faithfully and with a hallucination.
        let mut halves: BTreeMap<&str, [Option<f64>; 2]> = BTreeMap::new();
        for (row, s) in scored {
            let pair = row.id.rsplit_once('-').map_or(row.id.as_str(), |(p, _)| p);
            halves.entry(pair).or_default()[usize::from(row.label.min(1))] = Some(*s);
        }
        let pairs: Vec<(f64, f64)> = halves
            .values()
            .filter_map(|[faithful, halluc]| Some(((*halluc)?, (*faithful)?)))
            .collect();
        let detected: Vec<&str> = scored
            .iter()
            .map(|(r, _)| Task::detect(&r.question, &r.context).name())
            .collect();
        let task_detection = detected.iter().filter(|t| **t == task.as_str()).count() as f64
            / detected.len().max(1) as f64;
        // The naive baseline on the same rows: share of the answer's content words missing from
        // the context.
        let baseline: Vec<f64> = scored
            .iter()
            .map(|(r, _)| measure(&r.answer, &r.context, &r.question).unsupported_ratio())
            .collect();
        tasks.insert(
            task.clone(),
            json!({
                "rows": scored.len(),
                "auroc": auroc(&scores, &labels),
                "baseline_auroc": auroc(&baseline, &labels),
                "pairwise_accuracy": pairwise(&pairs),
                "pairs": pairs.len(),
                "at_risk_0_5": binary(&scores, &labels, 0.5),
                "task_detected_correctly": task_detection,
            }),
        );
    }
    Ok(json!({
        "guard": "trustguard",
        "format": "grounding",
        "split": split.name(),
        "rows": chosen.len(),
        "tasks": tasks,
        "rows_per_second": chosen.len() as f64 / elapsed.max(1e-9),
        "mb_per_second": bytes as f64 / 1e6 / elapsed.max(1e-9),
    }))
}
