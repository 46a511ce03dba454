//! `codeguardians train trustguard`: fit TrustGuard's grounding model on the HaluEval dev files,
//! leaving out the held-out pairs, and write `services/trustguard/model/grounding.json`. Same data,
//! same file: the procedure is deterministic.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use cg_trustguard::analysis::grounding::{FEATURE_NAMES, measure};
use cg_trustguard::analysis::model::{ModelFile, Task, is_held_out, train};

use crate::eval::grounding_rows;

/// L2 penalty and iterations of the logistic fit.
const L2: f64 = 1e-3;
const ITERATIONS: usize = 3000;

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The guard: trustguard.
    guard: String,
    /// Folder with halueval_{qa,dialogue,summarization}_dev.jsonl.
    #[arg(long, default_value = "../shared/eval/grounding")]
    data: PathBuf,
    /// Where to write the model.
    #[arg(long, default_value = "services/trustguard/model/grounding.json")]
    out: PathBuf,
}

pub async fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    if args.guard != "trustguard" {
        bail!(
            "no trainable model for {:?}; available: trustguard",
            args.guard
        );
    }
    let mut models = BTreeMap::new();
    for task in Task::ALL {
        let path = args
            .data
            .join(format!("halueval_{}_dev.jsonl", task.name()));
        let rows = grounding_rows(&path)?;
        let (xs, ys): (Vec<Vec<f64>>, Vec<bool>) = rows
            .iter()
            .filter(|r| !is_held_out(&r.id))
            .map(|r| {
                (
                    measure(&r.answer, &r.context, &r.question)
                        .vector()
                        .to_vec(),
                    r.label == 1,
                )
            })
            .unzip();
        if xs.is_empty() {
            bail!("no training rows in {}", path.display());
        }
        println!("{}: {} training rows", task.name(), xs.len());
        models.insert(task, train(&xs, &ys, L2, ITERATIONS));
    }
    let file = ModelFile {
        version: 1,
        features: FEATURE_NAMES.iter().map(|s| (*s).to_owned()).collect(),
        held_out: "HaluEval pairs whose number is divisible by 4".into(),
        models,
    };
    std::fs::write(&args.out, serde_json::to_string_pretty(&file)? + "\n")
        .with_context(|| format!("writing {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(ExitCode::SUCCESS)
}
