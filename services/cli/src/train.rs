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
    /// trustguard: the folder with halueval_{qa,dialogue,summarization}_dev.jsonl; healthguard:
    /// the eval folder (injection/ and grounding/ inside).
    #[arg(long, default_value = "../shared/eval/grounding")]
    data: PathBuf,
    /// Where to write the model (default: the guard's shipped file).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub async fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    match args.guard.as_str() {
        "trustguard" => {}
        "healthguard" => return train_instruction_model(&args),
        other => bail!("no trainable model for {other:?}; available: trustguard, healthguard"),
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
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("services/trustguard/model/grounding.json"));
    std::fs::write(&out, serde_json::to_string_pretty(&file)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}

/// Injected instructions kept from each text (the start is what gets hidden in data).
const INSTRUCTION_CHARS: usize = 300;
/// News sentences used as the "data" side.
const PROSE_SENTENCES: usize = 40_000;
const EPOCHS: usize = 6;

/// HealthGuard's instruction model. Instructions: the injection and jailbreak texts of
/// `injection/slabs_validation.jsonl` and `injection/neuralchemy_*.jsonl` (not
/// `slabs_train.jsonl`: the poison dev batches embed instructions taken from it, so training on it
/// would leak). Prose: sentences of the HaluEval summarisation documents (news; not the knowledge
/// passages the poison batches are made of).
fn train_instruction_model(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    use cg_healthguard::analysis::instruction;
    let root = if args.data.ends_with("grounding") {
        args.data.parent().map(PathBuf::from).unwrap_or_default()
    } else {
        args.data.clone()
    };
    let mut data: Vec<(String, bool)> = Vec::new();
    for file in [
        "slabs_validation.jsonl",
        "neuralchemy_train.jsonl",
        "neuralchemy_validation.jsonl",
    ] {
        let path = root.join("injection").join(file);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let row: serde_json::Value = serde_json::from_str(line)?;
            if row["label"] == 1
                && let Some(t) = row["text"].as_str()
            {
                data.push((t.chars().take(INSTRUCTION_CHARS).collect(), true));
            }
        }
    }
    let instructions = data.len();
    let news = grounding_rows(
        &root
            .join("grounding")
            .join("halueval_summarization_dev.jsonl"),
    )?;
    let mut seen = std::collections::HashSet::new();
    'docs: for row in &news {
        if !seen.insert(row.context.clone()) {
            continue;
        }
        for s in instruction::sentences(&row.context) {
            let sentence = row.context[s].trim();
            if sentence.len() > 20 {
                data.push((sentence.to_owned(), false));
                if data.len() - instructions >= PROSE_SENTENCES {
                    break 'docs;
                }
            }
        }
    }
    println!(
        "healthguard: {instructions} instructions, {} prose sentences",
        data.len() - instructions
    );
    let model = instruction::train(&data, EPOCHS);
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("services/healthguard/model/instruction.bin"));
    std::fs::write(&out, model.to_bytes()).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}
