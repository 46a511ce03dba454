//! The in-process cache: TTL-aware, bounded by an approximate byte budget, with the same
//! semantics as the Redis commands it stands in for (counters are decimal strings, `SET` clears a
//! TTL, `INCRBY` keeps it). One process only: embedded mode and the per-replica fallback.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use moka::ops::compute::Op;
use moka::sync::Cache as Moka;
use tokio::sync::broadcast;

use super::Subscription;
use super::rate_limit::{self, RateDecision, RateWindow};
use crate::error::{Error, Result};

/// Striped locks for multi-key rate-limit checks; increments themselves are atomic per key.
const RATE_LOCK_STRIPES: usize = 64;
const PUBSUB_CAPACITY: usize = 1024;

#[derive(Debug, Clone)]
enum Value {
    Bytes(Vec<u8>),
    Hash(HashMap<String, Vec<u8>>),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires_at: Option<Instant>,
}

impl Entry {
    fn live(&self, now: Instant) -> bool {
        self.expires_at.is_none_or(|t| t > now)
    }

    fn weight(&self, key: &str) -> u32 {
        let size = match &self.value {
            Value::Bytes(b) => b.len(),
            Value::Hash(h) => h.iter().map(|(k, v)| k.len() + v.len() + 16).sum(),
        };
        u32::try_from(key.len() + size + 64).unwrap_or(u32::MAX)
    }
}

struct EntryExpiry;

impl moka::Expiry<String, Arc<Entry>> for EntryExpiry {
    fn expire_after_create(&self, _: &String, v: &Arc<Entry>, now: Instant) -> Option<Duration> {
        v.expires_at.map(|t| t.saturating_duration_since(now))
    }

    fn expire_after_update(
        &self,
        _: &String,
        v: &Arc<Entry>,
        now: Instant,
        _: Option<Duration>,
    ) -> Option<Duration> {
        v.expires_at.map(|t| t.saturating_duration_since(now))
    }
}

struct Shared {
    store: Moka<String, Arc<Entry>>,
    rate_locks: Vec<Mutex<()>>,
    bus: broadcast::Sender<(Arc<str>, Arc<str>)>,
}

/// The in-process cache (cheap to clone; clones share the store).
#[derive(Clone)]
pub struct MemoryCache {
    shared: Arc<Shared>,
    prefix: Arc<str>,
}

impl std::fmt::Debug for MemoryCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryCache")
            .field("prefix", &self.prefix)
            .field("entries", &self.shared.store.entry_count())
            .finish()
    }
}

impl MemoryCache {
    /// A store holding at most about `max_bytes` of keys and values.
    pub fn new(max_bytes: u64, prefix: &str) -> Self {
        // LRU rather than moka's default TinyLFU: a new entry (a fresh rate-limit bucket) is always
        // admitted, and what goes under pressure is what was used longest ago.
        let store = Moka::builder()
            .eviction_policy(moka::policy::EvictionPolicy::lru())
            .max_capacity(max_bytes)
            .weigher(|k: &String, v: &Arc<Entry>| v.weight(k))
            .expire_after(EntryExpiry)
            .build();
        let (bus, _) = broadcast::channel(PUBSUB_CAPACITY);
        Self {
            shared: Arc::new(Shared {
                store,
                rate_locks: (0..RATE_LOCK_STRIPES).map(|_| Mutex::new(())).collect(),
                bus,
            }),
            prefix: prefix.into(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn with_prefix(&self, extra: &str) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
            prefix: format!("{}{extra}", self.prefix).into(),
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn live(&self, full_key: &str) -> Option<Arc<Entry>> {
        self.shared
            .store
            .get(full_key)
            .filter(|e| e.live(Instant::now()))
    }

    pub(crate) fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        match self.live(&self.key(key)).as_deref() {
            None => Ok(None),
            Some(Entry {
                value: Value::Bytes(b),
                ..
            }) => Ok(Some(b.clone())),
            Some(_) => Err(wrong_type()),
        }
    }

    pub(crate) fn take(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let now = Instant::now();
        match self
            .shared
            .store
            .remove(&self.key(key))
            .filter(|e| e.live(now))
            .as_deref()
        {
            None => Ok(None),
            Some(Entry {
                value: Value::Bytes(b),
                ..
            }) => Ok(Some(b.clone())),
            Some(_) => Err(wrong_type()),
        }
    }

    pub(crate) fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) {
        let entry = Entry {
            value: Value::Bytes(value.to_vec()),
            expires_at: ttl.map(|t| Instant::now() + t),
        };
        self.shared.store.insert(self.key(key), Arc::new(entry));
    }

    pub(crate) fn set_nx(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> bool {
        let mut inserted = false;
        let now = Instant::now();
        self.shared
            .store
            .entry(self.key(key))
            .and_compute_with(|existing| {
                if existing.is_some_and(|e| e.value().live(now)) {
                    return Op::Nop;
                }
                inserted = true;
                Op::Put(Arc::new(Entry {
                    value: Value::Bytes(value.to_vec()),
                    expires_at: ttl.map(|t| now + t),
                }))
            });
        inserted
    }

    pub(crate) fn delete(&self, key: &str) -> bool {
        self.shared
            .store
            .remove(&self.key(key))
            .is_some_and(|e| e.live(Instant::now()))
    }

    pub(crate) fn incr_by(
        &self,
        key: &str,
        delta: i64,
        ttl_if_new: Option<Duration>,
    ) -> Result<i64> {
        let full = self.key(key);
        self.incr_full(&full, delta, ttl_if_new)
    }

    fn incr_full(&self, full: &str, delta: i64, ttl_if_new: Option<Duration>) -> Result<i64> {
        let mut outcome: Result<i64> = Err(wrong_type());
        let now = Instant::now();
        self.shared
            .store
            .entry(full.to_owned())
            .and_compute_with(|existing| {
                let existing = existing.map(|e| e.into_value()).filter(|e| e.live(now));
                let (current, expires_at) = match existing.as_deref() {
                    None => (0, ttl_if_new.map(|t| now + t)),
                    Some(Entry {
                        value: Value::Bytes(b),
                        expires_at,
                    }) => {
                        match std::str::from_utf8(b)
                            .ok()
                            .and_then(|s| s.parse::<i64>().ok())
                        {
                            Some(n) => (n, *expires_at),
                            None => {
                                outcome = Err(Error::Corrupt("value is not an integer".into()));
                                return Op::Nop;
                            }
                        }
                    }
                    Some(_) => return Op::Nop,
                };
                let Some(next) = current.checked_add(delta) else {
                    outcome = Err(Error::Corrupt("increment would overflow".into()));
                    return Op::Nop;
                };
                outcome = Ok(next);
                Op::Put(Arc::new(Entry {
                    value: Value::Bytes(next.to_string().into_bytes()),
                    expires_at,
                }))
            });
        outcome
    }

    pub(crate) fn expire(&self, key: &str, ttl: Duration) -> bool {
        let mut found = false;
        let now = Instant::now();
        self.shared
            .store
            .entry(self.key(key))
            .and_compute_with(|existing| {
                match existing.map(|e| e.into_value()).filter(|e| e.live(now)) {
                    None => Op::Nop,
                    Some(e) => {
                        found = true;
                        Op::Put(Arc::new(Entry {
                            value: e.value.clone(),
                            expires_at: Some(now + ttl),
                        }))
                    }
                }
            });
        found
    }

    pub(crate) fn ttl(&self, key: &str) -> Option<Duration> {
        let now = Instant::now();
        self.live(&self.key(key))
            .and_then(|e| e.expires_at)
            .map(|t| t.saturating_duration_since(now))
    }

    fn update_hash<T>(
        &self,
        key: &str,
        f: impl FnOnce(&mut HashMap<String, Vec<u8>>) -> Result<T>,
    ) -> Result<T> {
        let mut outcome: Result<T> = Err(wrong_type());
        let now = Instant::now();
        self.shared
            .store
            .entry(self.key(key))
            .and_compute_with(|existing| {
                let existing = existing.map(|e| e.into_value()).filter(|e| e.live(now));
                let (mut map, expires_at) = match existing.as_deref() {
                    None => (HashMap::new(), None),
                    Some(Entry {
                        value: Value::Hash(h),
                        expires_at,
                    }) => (h.clone(), *expires_at),
                    Some(_) => return Op::Nop,
                };
                outcome = f(&mut map);
                if outcome.is_err() {
                    return Op::Nop;
                }
                if map.is_empty() {
                    return Op::Remove;
                }
                Op::Put(Arc::new(Entry {
                    value: Value::Hash(map),
                    expires_at,
                }))
            });
        outcome
    }

    pub(crate) fn hset(&self, key: &str, field: &str, value: &[u8]) -> Result<()> {
        self.update_hash(key, |h| {
            h.insert(field.to_owned(), value.to_vec());
            Ok(())
        })
    }

    pub(crate) fn hdel(&self, key: &str, field: &str) -> Result<bool> {
        self.update_hash(key, |h| Ok(h.remove(field).is_some()))
    }

    pub(crate) fn hincr_by(&self, key: &str, field: &str, delta: i64) -> Result<i64> {
        self.update_hash(key, |h| {
            let current = match h.get(field) {
                None => 0,
                Some(b) => std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .ok_or_else(|| Error::Corrupt("hash value is not an integer".into()))?,
            };
            let next = current
                .checked_add(delta)
                .ok_or_else(|| Error::Corrupt("increment would overflow".into()))?;
            h.insert(field.to_owned(), next.to_string().into_bytes());
            Ok(next)
        })
    }

    pub(crate) fn hgetall(&self, key: &str) -> Result<HashMap<String, Vec<u8>>> {
        match self.live(&self.key(key)).as_deref() {
            None => Ok(HashMap::new()),
            Some(Entry {
                value: Value::Hash(h),
                ..
            }) => Ok(h.clone()),
            Some(_) => Err(wrong_type()),
        }
    }

    pub(crate) fn hget(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>> {
        Ok(self.hgetall(key)?.remove(field))
    }

    /// The lock stripe of a rate-limited key.
    fn rate_stripe(key: &str) -> usize {
        let mut h = std::hash::DefaultHasher::new();
        key.hash(&mut h);
        usize::try_from(h.finish() % RATE_LOCK_STRIPES as u64).unwrap_or(0)
    }

    pub(crate) fn rate_limit(
        &self,
        key: &str,
        windows: &[RateWindow],
        want: u64,
        now_ms: u64,
    ) -> Result<RateDecision> {
        let keys = rate_limit::bucket_keys(&self.prefix, key, windows, now_ms);
        let _guard = self.shared.rate_locks[Self::rate_stripe(key)]
            .lock()
            .map_err(|_| Error::Corrupt("rate-limit lock poisoned".into()))?;
        let read = |k: &str| -> u64 {
            match self.live(k).as_deref() {
                Some(Entry {
                    value: Value::Bytes(b),
                    ..
                }) => std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
                _ => 0,
            }
        };
        let counts: Vec<u64> = keys.iter().map(|k| read(k)).collect();
        let granted = rate_limit::grant(windows, want, &counts, now_ms);
        if granted > 0 {
            for (i, w) in windows.iter().enumerate() {
                let delta = i64::try_from(granted).unwrap_or(i64::MAX);
                self.incr_full(&keys[2 * i], delta, Some(w.window * 2))?;
            }
        }
        Ok(rate_limit::decide(windows, granted, &counts, now_ms))
    }

    /// Give back `units` counted at `at_ms` in the current bucket of each window.
    pub(crate) fn rate_limit_release(
        &self,
        key: &str,
        windows: &[RateWindow],
        at_ms: u64,
        units: u64,
    ) -> Result<()> {
        let keys = rate_limit::bucket_keys(&self.prefix, key, windows, at_ms);
        let _guard = self.shared.rate_locks[Self::rate_stripe(key)]
            .lock()
            .map_err(|_| Error::Corrupt("rate-limit lock poisoned".into()))?;
        for k in keys.iter().step_by(2) {
            let held = match self.live(k).as_deref() {
                Some(Entry {
                    value: Value::Bytes(b),
                    ..
                }) => std::str::from_utf8(b)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok()),
                _ => None,
            };
            if let Some(held) = held {
                let back = i64::try_from(units.min(held)).unwrap_or(0);
                // Keeps the counter's expiry.
                self.incr_full(k, -back, None)?;
            }
        }
        Ok(())
    }

    pub(crate) fn publish(&self, channel: &str, message: &str) -> usize {
        let full: Arc<str> = self.key(channel).into();
        self.shared.bus.send((full, message.into())).unwrap_or(0)
    }

    pub(crate) fn subscribe(&self, channel: &str) -> Subscription {
        Subscription::Memory {
            rx: self.shared.bus.subscribe(),
            channel: self.key(channel).into(),
        }
    }

    /// Entries currently held (approximate; for metrics).
    pub fn entry_count(&self) -> u64 {
        self.shared.store.entry_count()
    }
}

fn wrong_type() -> Error {
    Error::Corrupt("operation against a key holding the wrong kind of value".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_stays_within_its_budget() {
        let cache = MemoryCache::new(64 * 1024, "t:");
        for i in 0..1000 {
            cache.set(&format!("k{i}"), &[7u8; 1024], None);
        }
        cache.shared.store.run_pending_tasks();
        let used = cache.shared.store.weighted_size();
        assert!(used <= 64 * 1024, "holds {used} bytes");
        assert!(cache.entry_count() < 100, "{} entries", cache.entry_count());
        // The newest writes are still readable; eviction took older ones.
        assert!(cache.get("k999").unwrap().is_some());
    }

    #[test]
    fn counters_and_hashes_refuse_the_wrong_kind() {
        let cache = MemoryCache::new(1024 * 1024, "t:");
        cache.hset("h", "f", b"1").unwrap();
        assert!(cache.get("h").is_err());
        assert!(cache.incr_by("h", 1, None).is_err());
        cache.set("s", b"x", None);
        assert!(cache.hset("s", "f", b"1").is_err());
    }
}
