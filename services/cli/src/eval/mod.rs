//! `codeguardians eval`: run a guard's analysis over a labelled JSON Lines file (the formats of
//! `../shared/eval`), in process or against a running guard (`--url`), and print precision, recall,
//! F1, false-positive rate, AUROC, pairwise accuracy where the data has pairs, and throughput.
//!
//! Formats land with their guards; today: `grounding` (HaluEval) through TrustGuard, `poison`
//! batches through HealthGuard, `drift` conversations through ContextGuard, `bias` (RedditBias,
//! CrowS-Pairs) through BiasGuard.

mod baseline;
mod bias;
mod drift;
mod grounding;
pub mod metrics;
mod poison;
mod tfidf;

pub use bias::{labelled_texts as bias_texts, pairs as bias_pairs};
pub use grounding::load as grounding_rows;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};

#[derive(Debug, clap::Args)]
pub struct EvalArgs {
    /// The guard: trustguard, healthguard, contextguard or biasguard.
    guard: String,
    /// A JSON Lines file in one of the formats of ../shared/eval.
    file: PathBuf,
    /// Which rows: heldout (never used for training or tuning), train, or all.
    #[arg(long, default_value = "heldout")]
    split: Split,
    /// Evaluate a running guard at this URL instead of in process (needs CG_INTERNAL_TOKEN).
    #[arg(long)]
    url: Option<String>,
    /// Also write the figures as JSON to this file (for biasguard and contextguard with the rows
    /// the guard got wrong, under `errors`).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Train the same-run baseline (biasguard, contextguard) on this file's rows instead of the
    /// scored file's tuning rows. Scored rows are never used to train it: they are left out of
    /// this file too, and without `--train`, `--split train` and `--split all` cross-fit the
    /// baseline (each of five folds scored by a baseline trained without it).
    #[arg(long)]
    train: Option<PathBuf>,
}

/// Which rows to measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Split {
    Heldout,
    Train,
    All,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Self::Heldout => "heldout",
            Self::Train => "train",
            Self::All => "all",
        }
    }
}

/// Where the guard's answers come from.
pub enum Scorer {
    InProcess,
    Remote {
        client: reqwest::Client,
        url: String,
        token: String,
    },
}

pub async fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    let scorer = match &args.url {
        None => Scorer::InProcess,
        Some(url) => Scorer::Remote {
            client: reqwest::Client::new(),
            url: url.trim_end_matches('/').to_owned(),
            token: std::env::var("CG_INTERNAL_TOKEN").context("--url needs CG_INTERNAL_TOKEN")?,
        },
    };
    if args.train.is_some() && !matches!(args.guard.as_str(), "biasguard" | "contextguard") {
        bail!("--train is for the learned baselines of biasguard and contextguard");
    }
    let report = match args.guard.as_str() {
        "trustguard" => {
            let rows = grounding::load(&args.file)?;
            grounding::evaluate(&rows, args.split, &scorer).await?
        }
        "healthguard" => {
            if args.url.is_some() {
                bail!("--url is not supported for healthguard yet; run it in process");
            }
            poison::evaluate(&poison::load(&args.file)?, args.split)
        }
        "contextguard" => {
            if args.url.is_some() {
                bail!("--url is not supported for contextguard yet; run it in process");
            }
            let pool = args.train.as_deref().map(drift::load).transpose()?;
            drift::evaluate(&drift::load(&args.file)?, args.split, pool.as_deref())?
        }
        "biasguard" => {
            if args.url.is_some() {
                bail!("--url is not supported for biasguard yet; run it in process");
            }
            let pool = args.train.as_deref().map(bias::load).transpose()?;
            bias::evaluate(&bias::load(&args.file)?, args.split, pool.as_ref())?
        }
        other => bail!(
            "no evaluation for {other:?} yet; available: trustguard (grounding), healthguard (poison), contextguard (drift), biasguard (bias)"
        ),
    };
    print(&report);
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

fn fmt(v: &serde_json::Value) -> String {
    v.as_f64()
        .map_or_else(|| "n/a".to_owned(), |x| format!("{x:.3}"))
}

fn print(report: &serde_json::Value) {
    println!(
        "{} on {} rows ({} split): {:.0} rows/s, {:.2} MB/s",
        report["guard"].as_str().unwrap_or("?"),
        report["rows"],
        report["split"].as_str().unwrap_or("?"),
        report["rows_per_second"].as_f64().unwrap_or(0.0),
        report["mb_per_second"].as_f64().unwrap_or(0.0),
    );
    if report["format"] == "redditbias" || report["format"] == "crows_pairs" {
        bias::print(report, fmt);
    }
    if report["format"] == "drift" {
        drift::print(report, fmt);
    }
    if report["format"] == "poison" {
        let o = &report["overall"];
        println!(
            "  every sample: precision {} recall {} F1 {} FPR {}",
            fmt(&o["precision"]),
            fmt(&o["recall"]),
            fmt(&o["f1"]),
            fmt(&o["false_positive_rate"])
        );
        if let Some(kinds) = report["per_kind"].as_object() {
            for (kind, m) in kinds {
                println!(
                    "  {kind:<22} support {:>4}  precision {} recall {} F1 {}  (flagged as any kind: {})",
                    m["support"],
                    fmt(&m["precision"]),
                    fmt(&m["recall"]),
                    fmt(&m["f1"]),
                    fmt(&m["detected_as_any_kind"])
                );
            }
        }
    }
    if let Some(tasks) = report["tasks"].as_object() {
        for (task, t) in tasks {
            let b = &t["at_risk_0_5"];
            println!(
                "  {task:<14} rows {:>5}  AUROC {} (baseline {})  pairwise {}  | risk ≥ 0.5: precision {} recall {} F1 {} FPR {}",
                t["rows"],
                fmt(&t["auroc"]),
                fmt(&t["baseline_auroc"]),
                fmt(&t["pairwise_accuracy"]),
                fmt(&b["precision"]),
                fmt(&b["recall"]),
                fmt(&b["f1"]),
                fmt(&b["false_positive_rate"]),
            );
        }
    }
}
