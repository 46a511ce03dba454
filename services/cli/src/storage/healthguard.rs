//! `codeguardians storage migrate-healthguard-to-postgres --from sqlite://…`: HealthGuard's
//! analysis results and health samples into PostgreSQL, from a legacy HealthGuard database or
//! this project's embedded file (see `cg_storage::db::copy::healthguard` and
//! docs/operations.md for the column mapping). Same guarantees and exit status as `storage copy`.

use std::process::ExitCode;

use anyhow::Context;
use cg_storage::StorageConfig;
use cg_storage::db::copy::{Scope, healthguard};

#[derive(Debug, clap::Args)]
pub struct HealthguardArgs {
    /// The SQLite file: `sqlite://PATH`.
    #[arg(long)]
    from: String,
    /// The PostgreSQL database; default: HealthGuard's (`HEALTHGUARD_DATABASE_URL`, else
    /// `DATABASE_URL`).
    #[arg(long)]
    to: Option<String>,
    #[command(flatten)]
    run: super::copy::RunArgs,
}

pub async fn run(args: HealthguardArgs) -> anyhow::Result<ExitCode> {
    let source = super::open(&args.from, "--from", true).await?;
    let target = match &args.to {
        Some(url) => super::open(url, "--to", false).await?,
        None => {
            let config = StorageConfig::from_env()?.for_healthguard();
            let target = crate::migrate::database(&config)
                .context("no --to and no HEALTHGUARD_DATABASE_URL or DATABASE_URL")?;
            cg_storage::Db::connect(&target).await?
        }
    };
    let plan = healthguard::plan(&source).await?;
    super::copy::run_copy(&source, &target, Some(plan), Scope::SourceRows, &args.run).await
}
