//! One upload streamed into storage: the first bytes decide the type (415 before anything is
//! stored), every byte is counted (413 as soon as `MAX_FILE_SIZE` is passed, without reading the
//! rest), hashed, compressed when the type is worth it, and written as it arrives: small files in
//! one request, larger ones as an S3 multipart upload, so memory holds a few parts at most.
//!
//! With S3, the same bytes also go to local disk until S3 has acknowledged the whole file: if S3
//! fails at any point, the local copy is kept and the file is `syncing` instead of lost.

use actix_web::http::StatusCode;
use bytes::Bytes;
use cg_storage::BlobStore;
use cg_storage::blob::{BlobWriter, MULTIPART_PART_SIZE};
use futures::{Stream, StreamExt};
use sha2::{Digest, Sha256};

use super::codec::Compressor;
use super::kind::{self, FileKind};
use super::{Files, refused};
use crate::error::GatewayError;

/// What storing an upload established.
#[derive(Debug, Clone)]
pub struct Ingested {
    pub kind: FileKind,
    /// Original length.
    pub size: u64,
    /// Bytes stored (after compression).
    pub stored_size: u64,
    /// SHA-256 of the original bytes, hex.
    pub sha256: String,
    pub etag: Option<String>,
    pub compressed: bool,
    /// Written to local disk because S3 failed.
    pub on_fallback: bool,
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("the file is larger than MAX_FILE_SIZE ({max} bytes)")]
    TooLarge { max: u64 },
    #[error("files of type {} ({}) are not accepted (ALLOWED_FILE_TYPES)", found.mime, found.extension)]
    Type { found: FileKind },
    #[error("reading the upload failed: {0}")]
    Body(String),
    #[error("compressing the upload failed: {0}")]
    Compression(#[from] std::io::Error),
    #[error(transparent)]
    Store(#[from] cg_storage::Error),
}

impl From<IngestError> for GatewayError {
    fn from(e: IngestError) -> Self {
        match e {
            IngestError::TooLarge { .. } => refused(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file_too_large",
                e.to_string(),
            ),
            IngestError::Type { .. } => refused(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "file_type_not_allowed",
                e.to_string(),
            ),
            IngestError::Body(_) => {
                refused(StatusCode::BAD_REQUEST, "invalid_upload", e.to_string())
            }
            IngestError::Compression(e) => GatewayError::Internal(e.into()),
            IngestError::Store(e) => GatewayError::Storage(e),
        }
    }
}

impl Files {
    /// Stream `body` (the content of a file named `name`) to `key`.
    pub async fn ingest<S, E>(
        &self,
        key: &str,
        name: &str,
        body: S,
    ) -> Result<Ingested, IngestError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let max = self.limits.max_size;
        let mut body = body.fuse();
        let mut size = 0u64;
        let mut next = async |size: &mut u64| -> Result<Option<Bytes>, IngestError> {
            match body.next().await {
                Some(Ok(chunk)) => {
                    *size += chunk.len() as u64;
                    if *size > max {
                        return Err(IngestError::TooLarge { max });
                    }
                    Ok(Some(chunk))
                }
                Some(Err(e)) => Err(IngestError::Body(e.to_string())),
                None => Ok(None),
            }
        };
        // The first bytes, to decide the type before anything is stored.
        let mut head: Vec<Bytes> = Vec::new();
        let mut head_len = 0;
        while head_len < kind::SNIFF_LEN {
            match next(&mut size).await? {
                Some(chunk) => {
                    head_len += chunk.len();
                    head.push(chunk);
                }
                None => break,
            }
        }
        let sniffed: Vec<u8> = head
            .iter()
            .flat_map(|c| c.iter().copied())
            .take(kind::SNIFF_LEN)
            .collect();
        let found = kind::sniff(&sniffed, name);
        if !self.limits.allowed.allows(&found) {
            return Err(IngestError::Type { found });
        }
        let mut compressor = if found.compressible && self.limits.compress {
            Some(Compressor::new()?)
        } else {
            None
        };
        let mut hasher = Sha256::new();
        // S3 failed an upload moments ago: straight to local disk.
        let diverted = match &self.fallback {
            Some(local) if self.s3_resting() => Some(local),
            _ => None,
        };
        let mut sink = match diverted {
            Some(local) => Sink::new(local, None, key),
            None => Sink::new(&self.store, self.fallback.as_ref(), key),
        };
        let mut pending = head.into_iter();
        loop {
            let chunk = match pending.next() {
                Some(chunk) => chunk,
                None => match next(&mut size).await {
                    Ok(Some(chunk)) => chunk,
                    Ok(None) => break,
                    Err(e) => {
                        sink.abandon().await;
                        return Err(e);
                    }
                },
            };
            hasher.update(&chunk);
            let out = match &mut compressor {
                Some(c) => match c.push(&chunk) {
                    Ok(out) => out,
                    Err(e) => {
                        sink.abandon().await;
                        return Err(e.into());
                    }
                },
                None => chunk,
            };
            if let Err(e) = sink.write(out).await {
                sink.abandon().await;
                return Err(e.into());
            }
        }
        let compressed = compressor.is_some();
        if let Some(c) = compressor {
            // A failure here abandons the store's multipart upload like one in the loop does.
            let written = match c.finish() {
                Ok(tail) => sink.write(tail).await.map_err(IngestError::from),
                Err(e) => Err(e.into()),
            };
            if let Err(e) = written {
                sink.abandon().await;
                return Err(e);
            }
        }
        let stored_size = sink.stored;
        let (etag, fell_back) = sink.finish().await?;
        let on_fallback = fell_back || diverted.is_some();
        if diverted.is_none() && self.fallback.is_some() {
            self.note_s3(!fell_back);
        }
        metrics::counter!(
            "cg_file_uploads_total",
            "location" => if on_fallback { "local_fallback" } else { "store" }
        )
        .increment(1);
        Ok(Ingested {
            kind: found,
            size,
            stored_size,
            sha256: hex::encode(hasher.finalize()),
            etag,
            compressed,
            on_fallback,
        })
    }
}

/// One destination of the bytes.
enum Lane<'a> {
    /// Nothing sent yet (the file may still fit in one request).
    Idle(&'a BlobStore),
    Writing(BlobWriter),
    Failed(cg_storage::Error),
}

impl Lane<'_> {
    async fn write(&mut self, chunk: &Bytes) {
        if let Lane::Writing(w) = self
            && let Err(e) = w.write(chunk.clone()).await
            && let Lane::Writing(w) = std::mem::replace(self, Lane::Failed(e))
        {
            // The upload is being given up; the first error is the one to report.
            let _ = w.abort().await;
        }
    }

    async fn open(&mut self, key: &str, buffered: &[Bytes]) {
        if let Lane::Idle(store) = self {
            *self = match store.put_multipart(key).await {
                Ok(w) => Lane::Writing(w),
                Err(e) => Lane::Failed(e),
            };
            for chunk in buffered {
                self.write(chunk).await;
            }
        }
    }

    fn alive(&self) -> bool {
        !matches!(self, Lane::Failed(_))
    }

    async fn abort(self) {
        if let Lane::Writing(w) = self {
            // Abandoned parts expire with the bucket's lifecycle rules when this fails too.
            let _ = w.abort().await;
        }
    }
}

/// The configured store, plus local disk while S3 has not acknowledged the file.
struct Sink<'a> {
    key: &'a str,
    primary: Lane<'a>,
    fallback: Option<Lane<'a>>,
    /// What arrived before the file outgrew one part.
    buffered: Vec<Bytes>,
    buffered_len: usize,
    stored: u64,
}

impl<'a> Sink<'a> {
    fn new(primary: &'a BlobStore, fallback: Option<&'a BlobStore>, key: &'a str) -> Self {
        Self {
            key,
            primary: Lane::Idle(primary),
            fallback: fallback.map(Lane::Idle),
            buffered: Vec::new(),
            buffered_len: 0,
            stored: 0,
        }
    }

    async fn write(&mut self, chunk: Bytes) -> Result<(), cg_storage::Error> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.stored += chunk.len() as u64;
        if matches!(self.primary, Lane::Idle(_)) {
            if self.buffered_len + chunk.len() <= MULTIPART_PART_SIZE {
                self.buffered_len += chunk.len();
                self.buffered.push(chunk);
                return Ok(());
            }
            let buffered = std::mem::take(&mut self.buffered);
            self.buffered_len = 0;
            self.primary.open(self.key, &buffered).await;
            if let Some(f) = &mut self.fallback {
                f.open(self.key, &buffered).await;
            }
        }
        self.primary.write(&chunk).await;
        if let Some(f) = &mut self.fallback {
            f.write(&chunk).await;
        }
        self.failure()
    }

    /// An error once no destination is left.
    fn failure(&self) -> Result<(), cg_storage::Error> {
        match &self.primary {
            Lane::Failed(e) if !self.fallback.as_ref().is_some_and(Lane::alive) => {
                Err(cg_storage::Error::unavailable("blob store", e))
            }
            _ => Ok(()),
        }
    }

    /// Make the file visible; returns its ETag and whether it is on local disk.
    async fn finish(self) -> Result<(Option<String>, bool), cg_storage::Error> {
        match self.primary {
            Lane::Idle(store) => {
                let data = concat(&self.buffered, self.buffered_len);
                match store.put(self.key, data.clone()).await {
                    Ok(etag) => Ok((etag, false)),
                    Err(e) => match self.fallback {
                        Some(Lane::Idle(local)) => {
                            tracing::warn!(error = %e, "S3 refused an upload; kept on local disk until it is back");
                            local.put(self.key, data).await.map(|etag| (etag, true))
                        }
                        _ => Err(e),
                    },
                }
            }
            Lane::Writing(w) => match w.finish().await {
                Ok(etag) => {
                    if let Some(f) = self.fallback {
                        f.abort().await;
                    }
                    Ok((etag, false))
                }
                Err(e) => finish_fallback(self.fallback, e).await,
            },
            Lane::Failed(e) => finish_fallback(self.fallback, e).await,
        }
    }

    async fn abandon(self) {
        self.primary.abort().await;
        if let Some(f) = self.fallback {
            f.abort().await;
        }
    }
}

async fn finish_fallback(
    fallback: Option<Lane<'_>>,
    primary_error: cg_storage::Error,
) -> Result<(Option<String>, bool), cg_storage::Error> {
    match fallback {
        Some(Lane::Writing(w)) => {
            tracing::warn!(error = %primary_error, "S3 failed during an upload; kept on local disk until it is back");
            w.finish().await.map(|etag| (etag, true))
        }
        _ => Err(primary_error),
    }
}

fn concat(chunks: &[Bytes], len: usize) -> Bytes {
    if let [one] = chunks {
        return one.clone();
    }
    let mut all = Vec::with_capacity(len);
    for c in chunks {
        all.extend_from_slice(c);
    }
    Bytes::from(all)
}
