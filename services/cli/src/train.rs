//! `codeguardians train trustguard`: fit TrustGuard's grounding model on the HaluEval dev files,
//! leaving out the held-out pairs, and write `services/trustguard/model/grounding.json`. Same data,
//! same file: the procedure is deterministic.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use cg_trustguard::analysis::grounding::FEATURE_NAMES;
use cg_trustguard::analysis::model::{ModelFile, Task, is_held_out};
use cg_trustguard::analysis::training::{Row, fit_task};

use crate::eval::grounding_rows;

#[derive(Debug, clap::Args)]
pub struct TrainArgs {
    /// The guard: trustguard.
    guard: String,
    /// trustguard: the folder with halueval_{qa,dialogue,summarization}_dev.jsonl; healthguard and
    /// contextguard: the eval folder (injection/, grounding/ and drift/ inside).
    #[arg(long, default_value = "../shared/eval/grounding")]
    data: PathBuf,
    /// Where to write the model (default: the guard's shipped file; for contextguard a folder,
    /// default services/contextguard/model).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// The pair number of a HaluEval row id ("halueval-qa-123-right" → 123).
fn pair_number(id: &str) -> Option<u64> {
    id.rsplit_once('-')
        .and_then(|(pair, _)| pair.rsplit_once('-'))
        .and_then(|(_, n)| n.parse().ok())
}

pub async fn run(args: TrainArgs) -> anyhow::Result<ExitCode> {
    match args.guard.as_str() {
        "trustguard" => {}
        "healthguard" => return train_instruction_model(&args),
        "contextguard" => return train_drift_model(&args),
        "biasguard" => return train_bias_model(&args),
        other => bail!(
            "no trainable model for {other:?}; available: trustguard, healthguard, contextguard, biasguard"
        ),
    }
    let mut models = BTreeMap::new();
    for task in Task::ALL {
        let path = args
            .data
            .join(format!("halueval_{}_dev.jsonl", task.name()));
        let rows = grounding_rows(&path)?;
        let training: Vec<Row<'_>> = rows
            .iter()
            .filter(|r| !is_held_out(&r.id))
            .filter_map(|r| {
                Some(Row {
                    pair: pair_number(&r.id)?,
                    answer: &r.answer,
                    context: &r.context,
                    question: &r.question,
                    hallucinated: r.label == 1,
                })
            })
            .collect();
        if training.is_empty() {
            bail!("no training rows in {}", path.display());
        }
        let model = fit_task(&training);
        println!(
            "{}: {} training rows, {} word features, L2 {} (cross-validated AUROC {:.4})",
            task.name(),
            training.len(),
            model.lexical.len(),
            model.l2,
            model.cv_auroc
        );
        models.insert(task, model);
    }
    let file = ModelFile {
        version: 2,
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

/// L2 penalty and iterations of ContextGuard's drift model; the topic decay its features use.
const DRIFT_L2: f64 = 1e-3;
const DRIFT_ITERATIONS: usize = 3000;
const DRIFT_DECAY: f64 = 0.7;

/// ContextGuard's lexicon and drift model. The lexicon (word rarity and LSA word vectors) is fitted
/// on the HaluEval summarisation articles that no drift conversation quotes, plus the QA
/// knowledge passages; never on the drift conversations. The drift model is fitted, and its
/// threshold tuned, on the drift conversations whose id ends in an even number; odd ones are
/// held out for `codeguardians eval contextguard`.
fn train_drift_model(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    use cg_contextguard::analysis::lexicon::{FitSettings, Lexicon};
    use cg_contextguard::analysis::model::is_held_out;
    use cg_contextguard::analysis::training::{Conversation, fit, unquoted};

    let root = if args.data.ends_with("grounding") {
        args.data.parent().map(PathBuf::from).unwrap_or_default()
    } else {
        args.data.clone()
    };
    let read_rows = |path: PathBuf| -> anyhow::Result<Vec<serde_json::Value>> {
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).with_context(|| format!("in {}", path.display())))
            .collect()
    };
    let drift = read_rows(root.join("drift").join("conversations_dev.jsonl"))?;
    let text_of = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    let mut conversations: Vec<(String, Vec<String>, Option<usize>)> = Vec::new();
    for row in &drift {
        let turns: Vec<String> = row["turns"]
            .as_array()
            .map(|a| a.iter().filter_map(text_of).collect())
            .unwrap_or_default();
        let drift_at = row["drift_at"]
            .as_u64()
            .and_then(|d| usize::try_from(d).ok());
        conversations.push((row["id"].as_str().unwrap_or("").to_owned(), turns, drift_at));
    }
    // Every turn of every conversation (held out or not) marks its article as off limits.
    let quotes: Vec<&str> = conversations
        .iter()
        .flat_map(|c| c.1.iter().map(String::as_str))
        .collect();

    let mut seen = std::collections::HashSet::new();
    let news_rows = grounding_rows(
        &root
            .join("grounding")
            .join("halueval_summarization_dev.jsonl"),
    )?;
    let news: Vec<&str> = news_rows
        .iter()
        .map(|r| r.context.as_str())
        .filter(|c| seen.insert(*c))
        .collect();
    let mut documents = unquoted(&news, &quotes);
    let unquoted_news = documents.len();
    let qa_rows = grounding_rows(&root.join("grounding").join("halueval_qa_dev.jsonl"))?;
    documents.extend(
        qa_rows
            .iter()
            .map(|r| r.context.as_str())
            .filter(|c| seen.insert(*c)),
    );
    println!(
        "contextguard: lexicon from {unquoted_news} of {} news articles (the rest are quoted by drift conversations) and {} QA passages",
        news.len(),
        documents.len() - unquoted_news
    );
    let lexicon = Lexicon::fit(&documents, &FitSettings::default());
    let (words, with_vectors) = lexicon.len();
    println!("contextguard: {words} words, {with_vectors} with vectors");

    let training: Vec<Conversation<'_>> = conversations
        .iter()
        .filter(|c| !is_held_out(&c.0))
        .map(|c| Conversation {
            turns: c.1.iter().map(String::as_str).collect(),
            drift_at: c.2,
        })
        .collect();
    if training.is_empty() {
        bail!(
            "no training conversations in {}",
            root.join("drift").display()
        );
    }
    let (mut model, tuned) = fit(&training, &lexicon, DRIFT_DECAY, DRIFT_L2, DRIFT_ITERATIONS);
    model.provenance = format!(
        "Fitted by `codeguardians train contextguard` on the {} drift conversations of drift/conversations_dev.jsonl whose id ends in an even number (odd ones held out); threshold tuned on them for conversation F1 plus exact-turn rate",
        training.len()
    );
    println!(
        "contextguard: {} training conversations; threshold {:.2}: precision {:.3} recall {:.3} F1 {:.3} FPR {:.3} exact turn {:.3} (training set)",
        training.len(),
        tuned.threshold,
        tuned.precision,
        tuned.recall,
        tuned.f1,
        tuned.false_positive_rate,
        tuned.exact_turn
    );
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("services/contextguard/model"));
    let lexicon_path = out.join("lexicon.bin");
    std::fs::write(&lexicon_path, lexicon.to_bytes())
        .with_context(|| format!("writing {}", lexicon_path.display()))?;
    let model_path = out.join("drift.json");
    std::fs::write(&model_path, serde_json::to_string_pretty(&model)? + "\n")
        .with_context(|| format!("writing {}", model_path.display()))?;
    println!(
        "wrote {} and {}",
        lexicon_path.display(),
        model_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// BiasGuard's model: fitted on the RedditBias rows and, as pairwise constraints, the CrowS-Pairs
/// pairs of `bias/` whose id number is not divisible by 3; the threshold is tuned by 5-fold
/// cross-validation on those rows. Held-out rows are for `codeguardians eval biasguard`.
fn train_bias_model(args: &TrainArgs) -> anyhow::Result<ExitCode> {
    let root = if args.data.ends_with("grounding") {
        args.data.parent().map(PathBuf::from).unwrap_or_default()
    } else {
        args.data.clone()
    };
    let texts = crate::eval::bias_texts(&root.join("bias").join("redditbias_dev.jsonl"))?;
    let pairs = crate::eval::bias_pairs(&root.join("bias").join("crows_pairs_dev.jsonl"))?;
    let model = cg_biasguard::analysis::training::train(&texts, &pairs);
    println!(
        "biasguard: {} weights, L2 {}, pair weight {}, threshold {:.3}, cross-validated balanced accuracy {:.3} and pairwise accuracy {:.3} (held out: {})",
        model.weights.len(),
        model.l2,
        model.pair_weight,
        model.threshold,
        model.cv_balanced_accuracy,
        model.cv_pairwise_accuracy,
        model.held_out
    );
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from("services/biasguard/model/bias_model.json"));
    std::fs::write(&out, serde_json::to_string(&model)? + "\n")
        .with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {}", out.display());
    Ok(ExitCode::SUCCESS)
}
