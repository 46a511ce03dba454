//! Files organisations upload for the guards to check: streamed into the blob store (S3, or a
//! local folder in embedded mode) with their type checked by content, compressed when it pays,
//! hashed, and described by a `files` row. While S3 is unreachable uploads land on local disk
//! (`FILE_FALLBACK_DIR`) as `syncing`, and [`Files::sync_every`] pushes them to S3 when it is back.

pub mod codec;
mod ingest;
pub mod kind;
pub mod signing;
mod sync;

use std::ops::Range;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use actix_web::http::StatusCode;
use bytes::Bytes;
use cg_storage::config::BlobTarget;
use cg_storage::models::StoredFile;
use cg_storage::models::files::status;
use cg_storage::sql_types::Timestamp;
use cg_storage::{BlobStore, Db, Mode};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use sha2::{Digest, Sha256};

pub use ingest::{IngestError, Ingested};
use kind::AllowedTypes;
use signing::UrlSigner;

use crate::error::{GatewayError, Result};

/// Limits and settings of file handling (from `MAX_FILE_SIZE`, `ALLOWED_FILE_TYPES`,
/// `UPLOAD_EXPIRY_MINUTES`, `FILE_SCAN_MAX_BYTES`, `FILE_COMPRESSION`).
#[derive(Debug, Clone)]
pub struct FileLimits {
    pub max_size: u64,
    pub allowed: AllowedTypes,
    /// Validity of presigned URLs (and the most a request may ask for).
    pub url_expiry: Duration,
    /// Most bytes of a file the guards are sent.
    pub scan_max_bytes: u64,
    pub compress: bool,
}

/// File storage of one gateway process.
#[derive(Debug)]
pub struct Files {
    db: Db,
    store: BlobStore,
    /// Local disk for uploads while S3 is unreachable (S3 only).
    fallback: Option<BlobStore>,
    signer: UrlSigner,
    pub limits: FileLimits,
    /// When an upload last found S3 unreachable (unix ms; 0: not since it last answered).
    s3_failed_at: AtomicI64,
}

/// After an upload finds S3 unreachable, uploads go straight to local disk for this long instead
/// of each waiting for the S3 client's timeouts and retries; the next one tries S3 again.
const S3_REST: Duration = Duration::from_secs(10);

/// A byte stream read from storage.
pub type ByteStream = BoxStream<'static, cg_storage::Result<Bytes>>;

fn refused(status: StatusCode, code: &'static str, message: impl Into<String>) -> GatewayError {
    GatewayError::Refused {
        status,
        code,
        message: message.into(),
    }
}

impl Files {
    /// `store` is the configured blob store; with S3, `fallback_dir` receives uploads while it is
    /// unreachable.
    pub fn new(
        db: Db,
        store: BlobStore,
        fallback_dir: PathBuf,
        secret: &[u8],
        limits: FileLimits,
    ) -> Self {
        let fallback = match store.mode() {
            Mode::Centralized => {
                match BlobStore::open(&BlobTarget::Local {
                    root: fallback_dir.clone(),
                }) {
                    Ok(local) => Some(local),
                    // Uploads still work while S3 answers; only the fallback is missing.
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            dir = %fallback_dir.display(),
                            "FILE_FALLBACK_DIR is not writable: uploads fail while S3 is unreachable"
                        );
                        None
                    }
                }
            }
            Mode::Embedded => None,
        };
        Self {
            db,
            store,
            fallback,
            signer: UrlSigner::new(secret),
            limits,
            s3_failed_at: AtomicI64::new(0),
        }
    }

    /// The configured store.
    pub fn store(&self) -> &BlobStore {
        &self.store
    }

    /// Whether uploads can fall back to local disk while S3 is away.
    pub fn has_fallback(&self) -> bool {
        self.fallback.is_some()
    }

    pub fn signer(&self) -> &UrlSigner {
        &self.signer
    }

    /// Whether uploads should skip S3 for now (it failed an upload less than [`S3_REST`] ago).
    fn s3_resting(&self) -> bool {
        let failed = self.s3_failed_at.load(Ordering::Relaxed);
        failed != 0 && Timestamp::now().timestamp_millis() - failed < S3_REST.as_millis() as i64
    }

    /// Remember whether S3 took the last upload (or sync).
    fn note_s3(&self, answered: bool) {
        let at = if answered {
            0
        } else {
            Timestamp::now().timestamp_millis()
        };
        self.s3_failed_at.store(at, Ordering::Relaxed);
    }

    /// Where the bytes of `file` are now.
    fn holder(&self, file: &StoredFile) -> Result<&BlobStore> {
        if file.status == status::SYNCING {
            self.fallback.as_ref().ok_or(GatewayError::Unavailable(
                "the file waits for S3 on a local disk this gateway has no access to",
            ))
        } else {
            Ok(&self.store)
        }
    }

    /// The original bytes of `file` (or `range` of them), decompressed when stored compressed.
    pub async fn read(&self, file: &StoredFile, range: Option<Range<u64>>) -> Result<ByteStream> {
        let holder = self.holder(file)?;
        let stream = match holder
            .get_stream(&file.storage_key, raw_range(file, &range))
            .await
        {
            Ok(stream) => stream,
            // Synced (and removed from local disk) between reading the row and the file.
            Err(cg_storage::Error::NotFound) if file.status == status::SYNCING => {
                let mut pooled = self.db.get().await?;
                let now = StoredFile::find_by_id(&mut pooled.conn(), file.id).await?;
                if now.status == status::SYNCING {
                    return Err(GatewayError::Unavailable(
                        "the file waits for S3 on another replica's disk; FILE_FALLBACK_DIR must be a volume every replica shares",
                    ));
                }
                self.store
                    .get_stream(&now.storage_key, raw_range(&now, &range))
                    .await?
            }
            Err(e) => return Err(e.into()),
        };
        Ok(decode(file, stream, range))
    }

    /// Up to `FILE_SCAN_MAX_BYTES` of a file as text, for the guards: 413 when larger, 415 when not
    /// UTF-8.
    pub async fn read_text(&self, file: &StoredFile) -> Result<String> {
        let size = u64::try_from(file.size_bytes.unwrap_or(0)).unwrap_or(0);
        if size > self.limits.scan_max_bytes {
            return Err(refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large_to_scan",
                format!(
                    "the file has {size} bytes; at most {} (FILE_SCAN_MAX_BYTES) are scanned",
                    self.limits.scan_max_bytes
                ),
            ));
        }
        let bytes: Vec<u8> = self
            .read(file, None)
            .await?
            .try_fold(Vec::new(), |mut all, chunk| async move {
                all.extend_from_slice(&chunk);
                Ok(all)
            })
            .await?;
        String::from_utf8(bytes).map_err(|_| {
            refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "file_not_text",
                "only UTF-8 text files can be scanned",
            )
        })
    }

    /// Confirm a presigned upload: the object must be there, within `MAX_FILE_SIZE` and of an
    /// allowed type (else it is removed: 413/415); its size and hash are recorded. The client
    /// uploaded to the file's staging key ([`staging_key`]); what was checked is copied to the
    /// file's own key, so a later PUT on the same URL (valid until it expires) cannot replace
    /// the checked bytes.
    pub async fn confirm(&self, file: StoredFile) -> Result<StoredFile> {
        if file.status != status::PENDING {
            return Ok(file);
        }
        let staging = staging_key(&file.storage_key);
        let head = match self.store.head(&staging).await {
            Ok(head) => head,
            Err(cg_storage::Error::NotFound) => {
                return Err(GatewayError::Conflict(
                    "the file has not been uploaded yet".into(),
                ));
            }
            Err(e) => return Err(e.into()),
        };
        if head.size > self.limits.max_size {
            self.discard(&file).await?;
            return Err(IngestError::TooLarge {
                max: self.limits.max_size,
            }
            .into());
        }
        let mut stream = self.store.get_stream(&staging, None).await?;
        let mut hasher = Sha256::new();
        let mut head_bytes = Vec::new();
        let mut size = 0u64;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if head_bytes.len() < kind::SNIFF_LEN {
                let take = (kind::SNIFF_LEN - head_bytes.len()).min(chunk.len());
                head_bytes.extend_from_slice(&chunk[..take]);
            }
            size += chunk.len() as u64;
            hasher.update(&chunk);
        }
        let found = kind::sniff(&head_bytes, &file.filename);
        if !self.limits.allowed.allows(&found) {
            self.discard(&file).await?;
            return Err(IngestError::Type { found }.into());
        }
        self.store.copy(&staging, &file.storage_key).await?;
        self.store.delete(&staging).await?;
        let stored = cg_storage::models::FileStored {
            content_type: found.mime.to_owned(),
            size_bytes: i64::try_from(size).ok(),
            stored_size_bytes: i64::try_from(size).ok(),
            checksum_sha256: Some(hex::encode(hasher.finalize())),
            etag: head.etag,
            compression: "none".into(),
            storage_backend: self.store.backend().into(),
            status: status::STORED.into(),
            synced_at: None,
            updated_at: Timestamp::now(),
        };
        let mut pooled = self.db.get().await?;
        Ok(StoredFile::record_stored(&mut pooled.conn(), file.id, &stored).await?)
    }

    /// Remove a refused upload: its object and its row.
    async fn discard(&self, file: &StoredFile) -> Result<()> {
        self.store.delete(&staging_key(&file.storage_key)).await?;
        let mut pooled = self.db.get().await?;
        StoredFile::mark_deleted(&mut pooled.conn(), file.organization_id, file.id).await?;
        Ok(())
    }

    /// Delete a file's bytes wherever they are (the row is marked by the caller).
    pub async fn remove(&self, file: &StoredFile) -> Result<()> {
        if let Some(fallback) = &self.fallback {
            fallback.delete(&file.storage_key).await?;
        }
        // Still waiting on local disk: S3 has no copy (and may be away).
        let only_local = self.fallback.is_some() && file.storage_backend == "local";
        if !only_local {
            self.store.delete(&file.storage_key).await?;
            // A presigned upload's staging object (also one written after confirmation, while
            // its URL was still valid).
            self.store.delete(&staging_key(&file.storage_key)).await?;
        }
        Ok(())
    }

    /// How many uploads wait on local disk for S3 (none without S3; unknown when the database
    /// does not answer).
    pub async fn waiting(&self) -> Option<i64> {
        self.fallback.as_ref()?;
        let mut pooled = self.db.get().await.ok()?;
        let n = StoredFile::count_syncing(&mut pooled.conn()).await.ok()?;
        metrics::gauge!("cg_files_syncing").set(n as f64);
        Some(n)
    }

    /// The record of a finished upload.
    pub fn stored(ingested: &Ingested, backend: &str) -> cg_storage::models::FileStored {
        cg_storage::models::FileStored {
            content_type: ingested.kind.mime.to_owned(),
            size_bytes: i64::try_from(ingested.size).ok(),
            stored_size_bytes: i64::try_from(ingested.stored_size).ok(),
            checksum_sha256: Some(ingested.sha256.clone()),
            etag: ingested.etag.clone(),
            compression: if ingested.compressed { "zstd" } else { "none" }.into(),
            storage_backend: backend.into(),
            status: if ingested.on_fallback {
                status::SYNCING
            } else {
                status::STORED
            }
            .into(),
            synced_at: None,
            updated_at: Timestamp::now(),
        }
    }

    /// The backend name an upload ended on.
    pub fn backend_of(&self, ingested: &Ingested) -> &'static str {
        match (&self.fallback, ingested.on_fallback) {
            (Some(fallback), true) => fallback.backend(),
            _ => self.store.backend(),
        }
    }
}

/// What to ask the store for: the range itself when stored as is, everything when compressed.
fn raw_range(file: &StoredFile, range: &Option<Range<u64>>) -> Option<Range<u64>> {
    if file.compression == "zstd" {
        None
    } else {
        range.clone()
    }
}

fn decode(file: &StoredFile, stream: ByteStream, range: Option<Range<u64>>) -> ByteStream {
    if file.compression != "zstd" {
        return stream;
    }
    let plain = codec::decompress(stream);
    match range {
        Some(r) => codec::slice(plain, r.start, r.end),
        None => plain,
    }
}

/// The type a listing filter names, as stored.
pub fn content_type_filter(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        None
    } else if raw.contains('/') {
        Some(raw.to_ascii_lowercase())
    } else {
        Some(
            kind::by_extension(raw).map_or_else(|| raw.to_ascii_lowercase(), |k| k.mime.to_owned()),
        )
    }
}

/// Where a presigned upload to the store lands before it is checked and copied to `key`.
pub fn staging_key(key: &str) -> String {
    format!("{key}.upload")
}
