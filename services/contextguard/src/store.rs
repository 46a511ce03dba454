//! ContextGuard's memory: Redis shared by every replica, with a bounded in-process store in its
//! place while Redis is away (or before it first answers).
//!
//! Every write also lands in the in-process store (so what this replica wrote stays readable
//! during an outage). While Redis is away, writes go to the in-process store and to a journal (a
//! durable SQLite outbox under `CG_DATA_DIR`, so a replica that restarts mid-outage still writes
//! them back); once Redis answers again the journal is written back in order (TTLs kept as
//! deadlines, so an item that expired meanwhile is deleted rather than revived) and only then does
//! Redis serve again. A full journal refuses writes (503) rather than lose them. In embedded mode
//! the in-process store is the store.
//!
//! What an outage costs: a replica reads only what it holds itself, so items written through other
//! replicas (or before this one started) are missing until Redis is back.

use std::collections::HashMap;
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

use cg_storage::cache::MemoryCache;
use cg_storage::config::CacheTarget;
use cg_storage::{Cache, Outbox};
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

/// The outbox record kind of a journalled write.
const JOURNAL_KIND: &str = "contextguard_write";
/// Journalled writes read per round of write-back.
const WRITE_BACK_BATCH: i64 = 256;

/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Redis is unavailable and {0} writes already wait for it; try again later")]
    JournalFull(usize),
    #[error(transparent)]
    Storage(#[from] cg_storage::Error),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Bytes as a hex string in the journal.
mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        hex::decode(text).map_err(serde::de::Error::custom)
    }
}

/// A write, as replayed into Redis.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum Write {
    Set {
        key: String,
        #[serde(with = "hex_bytes")]
        value: Vec<u8>,
        deadline: Option<SystemTime>,
    },
    Delete {
        key: String,
    },
    HSet {
        key: String,
        field: String,
        #[serde(with = "hex_bytes")]
        value: Vec<u8>,
    },
    HDel {
        key: String,
        field: String,
    },
    Expire {
        key: String,
        deadline: SystemTime,
    },
}

impl Write {
    async fn apply(&self, cache: &Cache) -> cg_storage::Result<()> {
        let left = |deadline: SystemTime| deadline.duration_since(SystemTime::now()).ok();
        match self {
            Self::Set {
                key,
                value,
                deadline,
            } => match deadline {
                None => cache.set(key, value, None).await,
                Some(d) => match left(*d) {
                    Some(ttl) if !ttl.is_zero() => cache.set(key, value, Some(ttl)).await,
                    _ => cache.delete(key).await.map(drop),
                },
            },
            Self::Delete { key } => cache.delete(key).await.map(drop),
            Self::HSet { key, field, value } => cache.hset(key, field, value).await,
            Self::HDel { key, field } => cache.hdel(key, field).await.map(drop),
            Self::Expire { key, deadline } => match left(*deadline) {
                Some(ttl) if !ttl.is_zero() => cache.expire(key, ttl).await.map(drop),
                _ => cache.delete(key).await.map(drop),
            },
        }
    }
}

#[derive(Debug, Default)]
struct Journal {
    /// Redis is not serving: writes are journalled.
    down: bool,
    /// Writes waiting in the outbox.
    pending: usize,
    since: Option<Instant>,
    last_error: Option<String>,
}

#[derive(Debug)]
struct Remote {
    target: CacheTarget,
    cache: OnceLock<Cache>,
    outbox: Outbox,
}

/// What `/health` says about the memory store.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoreHealth {
    /// `redis` or `memory`.
    pub backend: &'static str,
    /// Whether the configured store serves (Redis up, or the embedded store).
    pub ok: bool,
    /// The in-process store serves in Redis's place.
    pub fallback: bool,
    pub pending_writes: usize,
    pub down_for_seconds: Option<f64>,
    pub latency_ms: Option<f64>,
    pub error: Option<String>,
}

macro_rules! read {
    ($store:expr, |$c:ident| $op:expr) => {{
        let store: &Store = $store;
        if let Some($c) = store.serving() {
            match $op {
                Ok(v) => return Ok(v),
                Err(e) => {
                    let mut journal = store.journal().await;
                    store.mark_down(&mut journal, &e);
                }
            }
        }
        let $c = &store.local;
        Ok($op?)
    }};
}

/// The memory store (share it in an `Arc`).
#[derive(Debug)]
pub struct Store {
    remote: Option<Remote>,
    local: Cache,
    journal: Mutex<Journal>,
    /// Mirrors `journal.down` for the read path, which must not wait for the lock.
    down: std::sync::atomic::AtomicBool,
    journal_max: usize,
}

impl Store {
    /// A store over `target`; with Redis, its journal is the outbox file `journal`. The store
    /// journals until [`Store::maintain`] has connected and written back whatever an earlier run
    /// left in the journal; nothing is refused meanwhile.
    pub async fn open(
        target: CacheTarget,
        journal: &Path,
        fallback_max_bytes: u64,
        journal_max: usize,
    ) -> cg_storage::Result<Self> {
        use std::sync::atomic::AtomicBool;
        match target {
            CacheTarget::Memory {
                max_bytes,
                key_prefix,
            } => Ok(Self {
                remote: None,
                local: Cache::Memory(MemoryCache::new(max_bytes, &key_prefix)),
                journal: Mutex::new(Journal::default()),
                down: AtomicBool::new(false),
                journal_max,
            }),
            CacheTarget::Redis(ref redis) => {
                let local = Cache::Memory(MemoryCache::new(fallback_max_bytes, &redis.key_prefix));
                let outbox = Outbox::open(journal).await?;
                let pending = usize::try_from(outbox.depth().await?).unwrap_or(0);
                Ok(Self {
                    remote: Some(Remote {
                        target,
                        cache: OnceLock::new(),
                        outbox,
                    }),
                    local,
                    journal: Mutex::new(Journal {
                        down: true,
                        pending,
                        since: Some(Instant::now()),
                        last_error: Some("not connected yet".into()),
                    }),
                    down: AtomicBool::new(true),
                    journal_max,
                })
            }
        }
    }

    async fn journal(&self) -> MutexGuard<'_, Journal> {
        self.journal.lock().await
    }

    /// Redis, when it is the store and serving.
    fn serving(&self) -> Option<&Cache> {
        let cache = self.remote.as_ref()?.cache.get()?;
        (!self.down.load(std::sync::atomic::Ordering::Acquire)).then_some(cache)
    }

    fn mark_down(&self, journal: &mut Journal, error: &cg_storage::Error) {
        if !journal.down {
            tracing::warn!(error = %error, "Redis unavailable: ContextGuard memory falls back to this replica");
            metrics::counter!("cg_contextguard_fallback_total").increment(1);
            journal.down = true;
            self.down.store(true, std::sync::atomic::Ordering::Release);
            journal.since = Some(Instant::now());
        }
        journal.last_error = Some(error.to_string());
    }

    async fn write(&self, write: Write) -> Result<()> {
        if let Some(redis) = self.serving() {
            match write.apply(redis).await {
                Ok(()) => {
                    write.apply(&self.local).await?;
                    return Ok(());
                }
                Err(e) => {
                    let mut journal = self.journal().await;
                    self.mark_down(&mut journal, &e);
                }
            }
        }
        if let Some(remote) = &self.remote {
            // Under the lock: journalled writes keep their order, and write-back cannot declare
            // the journal empty between this check and the push.
            let mut journal = self.journal().await;
            if journal.pending >= self.journal_max {
                return Err(StoreError::JournalFull(journal.pending));
            }
            let record = serde_json::to_value(&write)
                .map_err(|e| cg_storage::Error::Corrupt(e.to_string()))?;
            remote.outbox.push(JOURNAL_KIND, &record).await?;
            journal.pending += 1;
            metrics::gauge!("cg_contextguard_pending_writes").set(journal.pending as f64);
        }
        write.apply(&self.local).await?;
        Ok(())
    }

    /// Redis when it serves (falling back on an error), else this replica's store. A macro rather
    /// than a function over an async closure: rustc cannot prove such futures `Send`, and
    /// background tasks read too.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        read!(self, |c| c.get(key).await)
    }

    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        read!(self, |c| c.ttl(key).await)
    }

    pub async fn hgetall(&self, key: &str) -> Result<HashMap<String, Vec<u8>>> {
        read!(self, |c| c.hgetall(key).await)
    }

    pub async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        self.write(Write::Set {
            key: key.to_owned(),
            value: value.to_vec(),
            deadline: ttl.map(|t| SystemTime::now() + t),
        })
        .await
    }

    pub async fn delete(&self, key: &str) -> Result<()> {
        self.write(Write::Delete {
            key: key.to_owned(),
        })
        .await
    }

    pub async fn hset(&self, key: &str, field: &str, value: &[u8]) -> Result<()> {
        self.write(Write::HSet {
            key: key.to_owned(),
            field: field.to_owned(),
            value: value.to_vec(),
        })
        .await
    }

    pub async fn hdel(&self, key: &str, field: &str) -> Result<()> {
        self.write(Write::HDel {
            key: key.to_owned(),
            field: field.to_owned(),
        })
        .await
    }

    pub async fn expire(&self, key: &str, ttl: Duration) -> Result<()> {
        self.write(Write::Expire {
            key: key.to_owned(),
            deadline: SystemTime::now() + ttl,
        })
        .await
    }

    /// Where things stand, probing Redis when it is the store.
    pub async fn health(&self) -> StoreHealth {
        let (down, pending, since, error) = {
            let j = self.journal().await;
            (j.down, j.pending, j.since, j.last_error.clone())
        };
        let Some(remote) = &self.remote else {
            return StoreHealth {
                backend: "memory",
                ok: true,
                fallback: false,
                pending_writes: 0,
                down_for_seconds: None,
                latency_ms: Some(0.0),
                error: None,
            };
        };
        let probe = match remote.cache.get() {
            Some(cache) => cache.ping().await.map_err(|e| e.to_string()),
            None => Err(error.clone().unwrap_or_else(|| "not connected".into())),
        };
        let ok = !down && probe.is_ok();
        StoreHealth {
            backend: "redis",
            ok,
            fallback: down,
            pending_writes: pending,
            down_for_seconds: since.filter(|_| down).map(|s| s.elapsed().as_secs_f64()),
            latency_ms: probe.as_ref().ok().map(|d| d.as_secs_f64() * 1000.0),
            error: probe.err().or(if down { error } else { None }),
        }
    }

    /// Connect to Redis, and whenever it is away, probe it and write the journal back, every
    /// `every` until `shutdown`.
    pub async fn maintain(
        self: std::sync::Arc<Self>,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let Some(remote) = &self.remote else {
            return;
        };
        loop {
            if remote.cache.get().is_none() {
                match Cache::connect(&remote.target).await {
                    Ok(cache) => {
                        let _ = remote.cache.set(cache);
                    }
                    Err(e) => {
                        tracing::debug!(error = %e, "Redis not reachable yet");
                        self.journal().await.last_error = Some(e.to_string());
                    }
                }
            }
            if let Some(cache) = remote.cache.get()
                && self.down.load(std::sync::atomic::Ordering::Acquire)
            {
                self.write_back(cache, &remote.outbox).await;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(every) => {}
            }
        }
    }

    /// Replay the journal into Redis, oldest first; Redis serves again once it is empty. Returns
    /// how many writes were replayed.
    async fn write_back(&self, cache: &Cache, outbox: &Outbox) -> usize {
        let note = async |e: &(dyn std::fmt::Display + Sync)| {
            self.journal().await.last_error = Some(e.to_string());
        };
        if let Err(e) = cache.ping().await {
            note(&e).await;
            return 0;
        }
        let mut replayed = 0;
        loop {
            let batch = match outbox.pending(WRITE_BACK_BATCH).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the ContextGuard journal");
                    note(&e).await;
                    return replayed;
                }
            };
            if batch.is_empty() {
                let mut journal = self.journal().await;
                // Writers push under this lock: if one got in since the read, go round again.
                match outbox.depth().await {
                    Ok(0) => {
                        journal.down = false;
                        journal.pending = 0;
                        journal.since = None;
                        journal.last_error = None;
                        self.down.store(false, std::sync::atomic::Ordering::Release);
                        metrics::gauge!("cg_contextguard_pending_writes").set(0.0);
                        tracing::info!(replayed, "Redis is back: ContextGuard memory written back");
                        return replayed;
                    }
                    Ok(_) => continue,
                    Err(e) => {
                        drop(journal);
                        note(&e).await;
                        return replayed;
                    }
                }
            }
            for entry in batch {
                if entry.kind == JOURNAL_KIND {
                    match serde_json::from_str::<Write>(&entry.payload) {
                        Ok(write) => {
                            if let Err(e) = write.apply(cache).await {
                                tracing::warn!(error = %e, replayed, "write-back to Redis paused");
                                note(&e).await;
                                return replayed;
                            }
                        }
                        Err(e) => {
                            tracing::error!(error = %e, id = entry.id, "dropping an unreadable journal record")
                        }
                    }
                }
                if let Err(e) = outbox.remove(&entry.id).await {
                    note(&e).await;
                    return replayed;
                }
                replayed += 1;
                let mut journal = self.journal().await;
                journal.pending = journal.pending.saturating_sub(1);
                metrics::counter!("cg_contextguard_written_back_total").increment(1);
            }
        }
    }
}
