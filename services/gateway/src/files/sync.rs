//! Sync-back: files written to local disk while S3 was unreachable are pushed to S3 when it
//! answers again, read back and hashed (after decompression) against the SHA-256 recorded at
//! upload, and only then switched to S3 and removed from disk. The rows and the local copies are
//! durable, so a gateway restarted in between picks up where the previous one stopped.

use std::time::Duration;

use bytes::Bytes;
use cg_storage::BlobStore;
use cg_storage::blob::MULTIPART_PART_SIZE;
use cg_storage::models::StoredFile;
use futures::StreamExt;
use sha2::{Digest, Sha256};
use tokio_util::sync::CancellationToken;

use super::{ByteStream, Files, codec};

/// Files handled per round.
const BATCH: i64 = 50;

/// What one round did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncRound {
    pub synced: usize,
    /// Still waiting (S3 away, the copy on another replica's disk, or a hash mismatch).
    pub waiting: usize,
}

impl Files {
    /// Run [`Files::sync_once`] every `every` until `shutdown` (nothing to do without S3).
    pub async fn sync_every(
        self: std::sync::Arc<Self>,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        if self.fallback.is_none() {
            return;
        }
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            match self.sync_once().await {
                Ok(round) if round.synced > 0 => {
                    tracing::info!(
                        files.synced = round.synced,
                        files.waiting = round.waiting,
                        "local uploads synced to S3"
                    );
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(error = %e, "file sync round failed; retrying next round")
                }
            }
        }
    }

    /// Push the `syncing` files this replica can read to S3; returns what happened.
    pub async fn sync_once(&self) -> cg_storage::Result<SyncRound> {
        let Some(local) = &self.fallback else {
            return Ok(SyncRound::default());
        };
        let files = {
            let mut pooled = self.db.get().await?;
            StoredFile::syncing(&mut pooled.conn(), BATCH).await?
        };
        let mut round = SyncRound::default();
        for file in files {
            match self.sync_file(local, &file).await {
                Ok(true) => round.synced += 1,
                Ok(false) => round.waiting += 1,
                Err(e) => {
                    round.waiting += 1;
                    // S3 still away: the rest would fail the same way.
                    if matches!(e, cg_storage::Error::Unavailable { .. }) {
                        break;
                    }
                    tracing::warn!(file.id = %file.id, error = %e, "syncing a local upload failed");
                }
            }
        }
        // Refreshes the gauge.
        self.waiting().await;
        Ok(round)
    }

    async fn sync_file(&self, local: &BlobStore, file: &StoredFile) -> cg_storage::Result<bool> {
        let key = &file.storage_key;
        let source = match local.get_stream(key, None).await {
            Ok(s) => s,
            // On another replica's disk (no shared FILE_FALLBACK_DIR): that replica syncs it.
            Err(cg_storage::Error::NotFound) => return Ok(false),
            Err(e) => return Err(e),
        };
        let etag = copy(source, &self.store, key).await?;
        let stored = self.store.get_stream(key, None).await?;
        let plain: ByteStream = if file.compression == "zstd" {
            codec::decompress(stored)
        } else {
            stored
        };
        let hash = sha256(plain).await?;
        if file.checksum_sha256.as_deref() != Some(hash.as_str()) {
            tracing::error!(file.id = %file.id, "the copy in S3 does not match the upload's SHA-256; kept on local disk");
            metrics::counter!("cg_file_sync_mismatches_total").increment(1);
            self.store.delete(key).await?;
            return Ok(false);
        }
        let switched = {
            let mut pooled = self.db.get().await?;
            StoredFile::mark_synced(&mut pooled.conn(), file.id, etag).await?
        };
        self.note_s3(true);
        if switched {
            local.delete(key).await?;
            metrics::counter!("cg_file_syncs_total").increment(1);
        }
        Ok(switched)
    }
}

/// Write a stream to `store` at `key` (one request when it fits one part).
async fn copy(
    mut source: ByteStream,
    store: &BlobStore,
    key: &str,
) -> cg_storage::Result<Option<String>> {
    let mut first: Vec<u8> = Vec::new();
    while first.len() <= MULTIPART_PART_SIZE {
        match source.next().await {
            Some(chunk) => first.extend_from_slice(&chunk?),
            None => return store.put(key, Bytes::from(first)).await,
        }
    }
    let mut writer = store.put_multipart(key).await?;
    writer.write(Bytes::from(first)).await?;
    while let Some(chunk) = source.next().await {
        match chunk {
            Ok(chunk) => writer.write(chunk).await?,
            Err(e) => {
                let _ = writer.abort().await;
                return Err(e);
            }
        }
    }
    writer.finish().await
}

async fn sha256(mut stream: ByteStream) -> cg_storage::Result<String> {
    let mut hasher = Sha256::new();
    while let Some(chunk) = stream.next().await {
        hasher.update(&chunk?);
    }
    Ok(hex::encode(hasher.finalize()))
}
