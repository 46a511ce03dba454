//! `codeguardians storage migrate-sessions-to-redis`: the refresh sessions kept in the database
//! (`SESSION_STORAGE_TYPE=database`, or written while Redis was away) move into Redis with the
//! lifetime they have left, in the gateway's own format, and leave the table. Expired sessions are
//! skipped and counted; rows of rotated or revoked sessions stay, since they are what detects the
//! reuse of an old token. The database and Redis come from the storage variables.

use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use cg_gateway::auth::revocations::Revocations;
use cg_gateway::auth::sessions::SessionStore;
use cg_gateway::config::GatewaySettings;
use cg_storage::config::{Mode, SessionStorageType};
use cg_storage::models::Session;
use cg_storage::sql_types::Timestamp;
use cg_storage::{Needs, Storage, StorageConfig};

/// Sessions read per page.
const PAGE: i64 = 500;

#[derive(Debug, clap::Args)]
pub struct SessionsArgs {
    /// Count what would move; change nothing.
    #[arg(long)]
    dry_run: bool,
}

pub async fn run(args: SessionsArgs) -> anyhow::Result<ExitCode> {
    let config = StorageConfig::from_env()?;
    let resolved = config.resolve(Needs {
        database: true,
        cache: true,
        blobs: false,
    })?;
    let storage = Storage::connect(&resolved).await?;
    let db = storage.db()?.clone();
    let cache = storage.cache()?.clone();
    anyhow::ensure!(
        cache.mode() == Mode::Centralized,
        "no Redis configured (REDIS_URL or REDIS_HOST): sessions have nowhere to move"
    );
    // Moving a session reads neither the family's maximum lifetime nor the revocation list: the
    // gateway's defaults stand in for them.
    let defaults = GatewaySettings::default();
    let store = SessionStore::new(
        SessionStorageType::Redis,
        cache.clone(),
        db.clone(),
        config.session_ttl(),
        defaults.session_max_lifetime(),
        Arc::new(Revocations::new(cache, defaults.access_token_ttl())),
    );
    let now = Timestamp::now();
    let mut pooled = db.get().await?;
    let expired = Session::count_expired(&mut pooled.conn(), now).await?;
    let mut moved = 0u64;
    let mut after = None;
    loop {
        let page = Session::live_page(&mut pooled.conn(), now, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        for row in &page {
            if !args.dry_run {
                store
                    .move_to_cache(row, now)
                    .await
                    .with_context(|| format!("moving session {}", row.id))?;
            }
            moved += 1;
        }
    }
    let verb = if args.dry_run { "would move" } else { "moved" };
    println!(
        "{verb} {moved} live session(s) from {} to Redis with their remaining lifetime; \
         skipped {expired} expired",
        db.display()
    );
    Ok(ExitCode::SUCCESS)
}
