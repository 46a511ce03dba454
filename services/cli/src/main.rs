//! `codeguardians`: the operator's command line.
//!
//! - `up`: run all six services on this machine with embedded storage (SQLite file, in-process
//!   cache, local folder under `./data`), building them first when run from the source tree.
//! - `migrate`: apply the database migrations to `DATABASE_URL` (and `HEALTHGUARD_DATABASE_URL`
//!   when it names another database); `--check` only reports what is pending.
//! - `eval`: measure a guard's detection on labelled data (`../shared/eval` formats).
//! - `train`: fit a guard's learned component on the dev data, leaving the held-out rows out.
//! - `probe`: one GET, exit 0 on 2xx (the container image's HEALTHCHECK, without curl).
//! - `org set-tier ORG TIER`: put an organisation on a subscription tier.
//! - `storage copy | migrate-healthguard-to-postgres | migrate-sessions-to-redis |
//!   migrate-config-to-redis | validate-storage`: move data between backends and check them
//!   (docs/operations.md, "Storage operations").
//!
//! Storage variables are those of `cg_storage::config`.

#![expect(clippy::print_stdout, reason = "a command-line tool reports on stdout")]

mod eval;
mod migrate;
mod org;
mod probe;
mod storage;
mod train;
mod up;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "codeguardians",
    version,
    about = "CodeGuardians Gateway operator commands"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway and the five guards locally on embedded storage.
    Up(up::UpArgs),
    /// Apply database migrations (DATABASE_URL, HEALTHGUARD_DATABASE_URL).
    Migrate(migrate::MigrateArgs),
    /// Measure a guard's detection on a labelled JSON Lines file.
    Eval(eval::EvalArgs),
    /// Fit a guard's learned component on the dev data (held-out rows left out).
    Train(train::TrainArgs),
    /// GET a URL; exit 0 on a 2xx answer (the container HEALTHCHECK).
    Probe(probe::ProbeArgs),
    /// Organisation administration (DATABASE_URL): `org set-tier ORG TIER`.
    Org(org::OrgArgs),
    /// Storage operations: copy, migrate-healthguard-to-postgres, migrate-sessions-to-redis,
    /// migrate-config-to-redis, validate-storage.
    Storage(storage::StorageArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Up(args) => up::run(args).await,
        Command::Migrate(args) => migrate::run(args).await,
        Command::Eval(args) => eval::run(args).await,
        Command::Train(args) => train::run(args).await,
        Command::Probe(args) => probe::run(args).await,
        Command::Org(args) => org::run(args).await,
        Command::Storage(args) => storage::run(args).await,
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("codeguardians: {err:#}");
            ExitCode::FAILURE
        }
    }
}
