//! `codeguardians migrate`: apply pending migrations, one database at a time (concurrent runs wait
//! for each other). In Kubernetes this is the Job that runs before a rollout.

use std::process::ExitCode;

use anyhow::Context;
use cg_storage::config::{DatabaseTarget, Needs};
use cg_storage::db::pending_migrations;
use cg_storage::{Db, StorageConfig};

#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Only report pending migrations; exit 1 if any.
    #[arg(long)]
    check: bool,
}

const DATABASE_ONLY: Needs = Needs {
    database: true,
    cache: false,
    blobs: false,
};

pub async fn run(args: MigrateArgs) -> anyhow::Result<ExitCode> {
    let config = StorageConfig::from_env()?;
    let mut targets = vec![database(&config)?];
    if config.healthguard_database_url.is_some() {
        let healthguard = database(&config.clone().for_healthguard())?;
        if healthguard.display() != targets[0].display() {
            targets.push(healthguard);
        }
    }
    let mut behind = false;
    for target in targets {
        let db = Db::connect(&target).await?;
        let pending = pending_migrations(&db).await?;
        if args.check {
            if pending.is_empty() {
                println!("{} ({}): up to date", db.display(), db.backend());
            } else {
                behind = true;
                println!(
                    "{} ({}): pending {}",
                    db.display(),
                    db.backend(),
                    pending.join(", ")
                );
            }
            continue;
        }
        let applied = db
            .run_migrations()
            .await
            .with_context(|| format!("migrating {}", db.display()))?;
        if applied.is_empty() {
            println!("{} ({}): up to date", db.display(), db.backend());
        } else {
            println!(
                "{} ({}): applied {}",
                db.display(),
                db.backend(),
                applied.join(", ")
            );
        }
    }
    Ok(if behind {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The database the storage variables name (`DATABASE_URL`, `POSTGRES_*`).
pub fn database(config: &StorageConfig) -> anyhow::Result<DatabaseTarget> {
    config
        .resolve(DATABASE_ONLY)?
        .database
        .context("no database configured")
}
