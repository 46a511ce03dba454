//! Blobs (uploaded files): S3 or any S3-compatible store through `object_store`, or a local folder
//! in embedded mode, behind one interface. Presigned URLs exist only on S3.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    ClientOptions, GetOptions, GetRange, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig,
    WriteMultipart,
};
use secrecy::ExposeSecret;

pub use object_store::signer::Method;

use crate::config::{BlobTarget, Mode, S3Target};
use crate::error::{Error, Result};

const S3_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const S3_REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
const S3_MAX_RETRIES: usize = 2;
const S3_RETRY_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest validity S3 accepts for a presigned URL.
pub const MAX_PRESIGN_EXPIRY: Duration = Duration::from_secs(7 * 24 * 3600);

/// Metadata of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobMeta {
    pub key: String,
    pub size: u64,
    pub etag: Option<String>,
    pub last_modified: chrono::DateTime<chrono::Utc>,
}

/// A blob store (cheap to clone).
#[derive(Clone)]
pub struct BlobStore {
    store: Arc<dyn ObjectStore>,
    signer: Option<Arc<AmazonS3>>,
    backend: &'static str,
    display: Arc<str>,
}

impl std::fmt::Debug for BlobStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobStore")
            .field("backend", &self.backend)
            .field("target", &self.display)
            .finish()
    }
}

impl BlobStore {
    /// Open the configured store. A local folder is created if missing; S3 is probed by
    /// [`BlobStore::ping`] (the caller decides whether an unreachable bucket stops start-up).
    pub fn open(target: &BlobTarget) -> Result<Self> {
        match target {
            BlobTarget::Local { root } => {
                std::fs::create_dir_all(root).map_err(|e| {
                    Error::Config(format!(
                        "cannot create CG_DATA_DIR blobs folder {}: {e}",
                        root.display()
                    ))
                })?;
                let store = LocalFileSystem::new_with_prefix(root)
                    .map_err(|e| Error::Config(format!("blobs folder {}: {e}", root.display())))?
                    .with_automatic_cleanup(true);
                Ok(Self {
                    store: Arc::new(store),
                    signer: None,
                    backend: "local",
                    display: root.display().to_string().into(),
                })
            }
            BlobTarget::S3(s3) => {
                let store = Arc::new(s3_store(s3)?);
                Ok(Self {
                    store: store.clone(),
                    signer: Some(store),
                    backend: "s3",
                    display: match &s3.endpoint {
                        Some(e) => format!("{e}/{}", s3.bucket),
                        None => format!("s3://{}", s3.bucket),
                    }
                    .into(),
                })
            }
        }
    }

    /// `s3` or `local`.
    pub fn backend(&self) -> &'static str {
        self.backend
    }

    /// Embedded (local folder) or centralized (S3).
    pub fn mode(&self) -> Mode {
        if self.signer.is_some() {
            Mode::Centralized
        } else {
            Mode::Embedded
        }
    }

    /// Where it points, safe to log.
    pub fn display(&self) -> &str {
        &self.display
    }

    fn record<T>(&self, op: &'static str, started: Instant, result: &Result<T>) {
        metrics::histogram!("cg_blob_operation_duration_seconds", "backend" => self.backend, "op" => op)
            .record(started.elapsed().as_secs_f64());
        let outcome = match result {
            Ok(_) | Err(Error::NotFound) => "ok",
            Err(_) => "error",
        };
        metrics::counter!("cg_blob_operations_total", "backend" => self.backend, "op" => op, "result" => outcome)
            .increment(1);
    }

    fn bytes(&self, direction: &'static str, n: usize) {
        metrics::counter!("cg_blob_bytes_total", "backend" => self.backend, "direction" => direction)
            .increment(u64::try_from(n).unwrap_or(u64::MAX));
    }

    /// Store `data` at `key` (replacing); returns the ETag when the backend gives one.
    pub async fn put(&self, key: &str, data: Bytes) -> Result<Option<String>> {
        let started = Instant::now();
        let path = parse_key(key)?;
        let len = data.len();
        let result = self
            .store
            .put(&path, PutPayload::from_bytes(data))
            .await
            .map(|r| r.e_tag)
            .map_err(Error::from);
        self.record("put", started, &result);
        if result.is_ok() {
            self.bytes("in", len);
        }
        result
    }

    /// Start writing a large object at `key` in parts (S3 multipart upload), so memory holds at
    /// most a few parts whatever the object's size.
    pub async fn put_multipart(&self, key: &str) -> Result<BlobWriter> {
        let started = Instant::now();
        let path = parse_key(key)?;
        let result = self.store.put_multipart(&path).await.map_err(Error::from);
        self.record("put_multipart", started, &result);
        Ok(BlobWriter {
            inner: WriteMultipart::new_with_chunk_size(result?, MULTIPART_PART_SIZE),
            store: self.clone(),
            written: 0,
        })
    }

    /// The object at `key` (or the bytes `range` of it) as a stream of chunks.
    pub async fn get_stream(
        &self,
        key: &str,
        range: Option<std::ops::Range<u64>>,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        let started = Instant::now();
        let path = parse_key(key)?;
        let options = GetOptions {
            range: range.map(GetRange::Bounded),
            ..GetOptions::default()
        };
        let result = self
            .store
            .get_opts(&path, options)
            .await
            .map_err(Error::from);
        self.record("get", started, &result);
        let store = self.clone();
        Ok(result?
            .into_stream()
            .map(move |chunk| {
                let chunk = chunk.map_err(Error::from);
                if let Ok(b) = &chunk {
                    store.bytes("out", b.len());
                }
                chunk
            })
            .boxed())
    }

    /// The whole object at `key`.
    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let started = Instant::now();
        let path = parse_key(key)?;
        let result = match self.store.get(&path).await {
            Ok(r) => r.bytes().await.map_err(Error::from),
            Err(e) => Err(Error::from(e)),
        };
        self.record("get", started, &result);
        if let Ok(b) = &result {
            self.bytes("out", b.len());
        }
        result
    }

    /// Metadata of the object at `key`.
    pub async fn head(&self, key: &str) -> Result<BlobMeta> {
        let started = Instant::now();
        let path = parse_key(key)?;
        let result = self.store.head(&path).await.map(meta).map_err(Error::from);
        self.record("head", started, &result);
        result
    }

    /// Copy the object at `from` to `to` (replacing), inside the store.
    pub async fn copy(&self, from: &str, to: &str) -> Result<()> {
        let started = Instant::now();
        let (from, to) = (parse_key(from)?, parse_key(to)?);
        let result = self.store.copy(&from, &to).await.map_err(Error::from);
        self.record("copy", started, &result);
        result
    }

    /// Remove the object at `key` (absent is fine).
    pub async fn delete(&self, key: &str) -> Result<()> {
        let started = Instant::now();
        let path = parse_key(key)?;
        let result = match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::from(e)),
        };
        self.record("delete", started, &result);
        result
    }

    /// Every object under `prefix`, in no particular order.
    pub async fn list(&self, prefix: &str) -> Result<Vec<BlobMeta>> {
        let started = Instant::now();
        let prefix = if prefix.is_empty() {
            None
        } else {
            Some(parse_key(prefix)?)
        };
        let result = self
            .store
            .list(prefix.as_ref())
            .map_ok(meta)
            .try_collect::<Vec<_>>()
            .await
            .map_err(Error::from);
        self.record("list", started, &result);
        result
    }

    /// A URL that lets its holder `GET` or `PUT` the object at `key` for `expires_in`, without
    /// credentials. S3 only: a local folder has no URL of its own.
    pub async fn presign(
        &self,
        method: Method,
        key: &str,
        expires_in: Duration,
    ) -> Result<url::Url> {
        let started = Instant::now();
        let Some(signer) = &self.signer else {
            return Err(Error::Unsupported("presigned URLs"));
        };
        if expires_in.is_zero() || expires_in > MAX_PRESIGN_EXPIRY {
            return Err(Error::Invalid(format!(
                "presigned URL expiry must be between 1 s and {} s",
                MAX_PRESIGN_EXPIRY.as_secs()
            )));
        }
        let path = parse_key(key)?;
        let result = signer
            .signed_url(method, &path, expires_in)
            .await
            .map_err(Error::from);
        self.record("presign", started, &result);
        result
    }

    /// A cheap request that proves the bucket (or folder) answers; returns how long it took.
    pub async fn ping(&self) -> Result<Duration> {
        let started = Instant::now();
        let probe = Path::from("__cg_health_probe__");
        let result = match self.store.head(&probe).await {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => Ok(started.elapsed()),
            Err(e) => Err(Error::unavailable(self.backend, e)),
        };
        self.record("ping", started, &result);
        result
    }
}

/// Size of the parts of a multipart upload (S3's minimum is 5 MiB for every part but the last).
pub const MULTIPART_PART_SIZE: usize = 5 * 1024 * 1024;

/// Parts of one multipart upload sent at once: memory holds about this many parts plus the one
/// being filled.
const MULTIPART_CONCURRENCY: usize = 2;

/// An object being written in parts ([`BlobStore::put_multipart`]). Dropped without
/// [`BlobWriter::finish`], nothing becomes visible (the parts are abandoned; [`BlobWriter::abort`]
/// also tells the store).
pub struct BlobWriter {
    inner: WriteMultipart,
    store: BlobStore,
    written: usize,
}

impl std::fmt::Debug for BlobWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobWriter")
            .field("store", &self.store)
            .field("written", &self.written)
            .finish()
    }
}

impl BlobWriter {
    /// Append `data`, first waiting while too many parts are in flight.
    pub async fn write(&mut self, data: Bytes) -> Result<()> {
        let started = Instant::now();
        let waited = self
            .inner
            .wait_for_capacity(MULTIPART_CONCURRENCY)
            .await
            .map_err(Error::from);
        self.store.record("put_part", started, &waited);
        waited?;
        self.written += data.len();
        self.inner.put(data);
        Ok(())
    }

    /// Send the last part and make the object visible; returns its ETag.
    pub async fn finish(self) -> Result<Option<String>> {
        let started = Instant::now();
        let result = self
            .inner
            .finish()
            .await
            .map(|r| r.e_tag)
            .map_err(Error::from);
        self.store.record("put_multipart_finish", started, &result);
        if result.is_ok() {
            self.store.bytes("in", self.written);
        }
        result
    }

    /// Give up: the parts already sent are discarded.
    pub async fn abort(self) -> Result<()> {
        let started = Instant::now();
        let result = self.inner.abort().await.map_err(Error::from);
        self.store.record("put_multipart_abort", started, &result);
        result
    }
}

fn s3_store(s3: &S3Target) -> Result<AmazonS3> {
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(&s3.bucket)
        .with_region(&s3.region)
        .with_retry(RetryConfig {
            max_retries: S3_MAX_RETRIES,
            retry_timeout: S3_RETRY_TIMEOUT,
            ..RetryConfig::default()
        });
    let mut client = ClientOptions::new()
        .with_connect_timeout(S3_CONNECT_TIMEOUT)
        .with_timeout(S3_REQUEST_TIMEOUT);
    if let (Some(id), Some(secret)) = (&s3.access_key_id, &s3.secret_access_key) {
        builder = builder
            .with_access_key_id(id)
            .with_secret_access_key(secret.expose_secret());
    }
    if let Some(endpoint) = &s3.endpoint {
        // S3-compatible stores (MinIO, moto, s3s) address buckets by path.
        builder = builder
            .with_endpoint(endpoint)
            .with_virtual_hosted_style_request(false);
        if endpoint.starts_with("http://") {
            client = client.with_allow_http(true);
        }
    }
    builder.with_client_options(client).build().map_err(|e| {
        Error::Config(format!(
            "S3 (S3_BUCKET_NAME/S3_REGION/S3_ENDPOINT_URL): {e}"
        ))
    })
}

/// Object keys are relative paths of non-empty segments; `..` and absolute paths are refused.
fn parse_key(key: &str) -> Result<Path> {
    if key.is_empty()
        || key.starts_with('/')
        || key
            .split('/')
            .any(|s| s.is_empty() || s == "." || s == "..")
    {
        return Err(Error::Invalid(format!("object key {key:?}")));
    }
    Path::parse(key).map_err(|e| Error::Invalid(format!("object key {key:?}: {e}")))
}

fn meta(m: object_store::ObjectMeta) -> BlobMeta {
    BlobMeta {
        key: m.location.to_string(),
        size: m.size,
        etag: m.e_tag,
        last_modified: m.last_modified,
    }
}
