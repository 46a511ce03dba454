//! `codeguardians storage …`: the operator commands that move a deployment's data between
//! backends (see docs/operations.md).

mod config;
mod copy;
mod healthguard;
mod sessions;
mod validate;

use std::process::ExitCode;

use anyhow::Context;
use cg_storage::config::DatabaseTarget;
use cg_storage::{Db, StorageConfig};

#[derive(Debug, clap::Args)]
pub struct StorageArgs {
    #[command(subcommand)]
    command: StorageCommand,
}

#[derive(Debug, clap::Subcommand)]
enum StorageCommand {
    /// Copy every table of an embedded deployment (SQLite) into PostgreSQL: idempotent,
    /// resumable, verified by row counts and checksums.
    Copy(copy::CopyArgs),
    /// Round trips on every configured backend and a check that no service is left on local
    /// storage in centralized mode; exit 1 on any failure.
    ValidateStorage(validate::ValidateArgs),
    /// Load a YAML or JSON configuration file into the dynamic configuration as one new version.
    MigrateConfigToRedis(config::ConfigArgs),
    /// Copy HealthGuard's results (a legacy HealthGuard SQLite database or this project's
    /// embedded file) into PostgreSQL beside any already there.
    MigrateHealthguardToPostgres(healthguard::HealthguardArgs),
    /// Move live database sessions into Redis with their remaining lifetime (storage variables).
    MigrateSessionsToRedis(sessions::SessionsArgs),
}

pub async fn run(args: StorageArgs) -> anyhow::Result<ExitCode> {
    match args.command {
        StorageCommand::Copy(args) => copy::run(args).await,
        StorageCommand::ValidateStorage(args) => validate::run(args).await,
        StorageCommand::MigrateConfigToRedis(args) => config::run(args).await,
        StorageCommand::MigrateHealthguardToPostgres(args) => healthguard::run(args).await,
        StorageCommand::MigrateSessionsToRedis(args) => sessions::run(args).await,
    }
}

/// Open the database a command-line URL names (`sqlite://…` or `postgres://…`). A source must
/// already exist: opening a missing SQLite file would create an empty one.
async fn open(url: &str, flag: &str, must_exist: bool) -> anyhow::Result<Db> {
    let config = StorageConfig::from_pairs([("DATABASE_URL", url)])
        .with_context(|| format!("{flag} {url}"))?;
    let target = crate::migrate::database(&config).context(flag.to_owned())?;
    if let DatabaseTarget::Sqlite { path, .. } = &target {
        anyhow::ensure!(
            !must_exist || path.is_file(),
            "{flag}: no SQLite file at {}",
            path.display()
        );
    }
    Db::connect(&target)
        .await
        .with_context(|| format!("{flag}: connecting to {}", target.display()))
}
