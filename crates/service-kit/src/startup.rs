//! Start-up steps every service shares: opening its storage and checking the schema.

use anyhow::Context;
use cg_storage::config::Needs;
use cg_storage::{Mode, Storage, StorageConfig};

use crate::config::ConfigError;

/// Resolve and connect the backends `needs` names. An embedded (SQLite) database is migrated
/// here; a centralized one must already be migrated by `codeguardians migrate`, so replicas never
/// race to change the schema.
pub async fn open_storage(
    service: &str,
    config: &StorageConfig,
    needs: Needs,
) -> anyhow::Result<Storage> {
    let resolved = config.resolve(needs)?;
    let storage = Storage::connect(&resolved).await?;
    if let Some(db) = &storage.db {
        tracing::info!(service, db.backend = db.backend(), db.target = %db.display(), "database");
    }
    if let Some(cache) = &storage.cache {
        tracing::info!(
            service,
            cache.backend = cache.backend(),
            cache.prefix = cache.prefix(),
            "cache"
        );
    }
    if let Some(blobs) = &storage.blobs {
        tracing::info!(
            service,
            blobs.backend = blobs.backend(),
            blobs.target = blobs.display(),
            "blob store"
        );
    }
    if let Some(db) = &storage.db {
        match db.mode() {
            Mode::Embedded => {
                db.run_migrations()
                    .await
                    .context("migrating the embedded database")?;
            }
            Mode::Centralized => {
                let pending = cg_storage::db::pending_migrations(db).await?;
                if !pending.is_empty() {
                    return Err(ConfigError::err(format!(
                        "the database ({}) lacks {} migration(s) ({}); run `codeguardians migrate` first",
                        db.display(),
                        pending.len(),
                        pending.join(", ")
                    )));
                }
            }
        }
    }
    Ok(storage)
}
