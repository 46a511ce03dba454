//! The cache: one interface over Redis (or Redis Cluster) and an in-process store, covering what
//! the services need: values with TTL, atomic counters, hashes, multi-window rate limiting and
//! pub/sub for configuration changes. Keys and channels are namespaced by a prefix.

mod memory;
pub mod rate_limit;
mod redis;

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use tokio::sync::broadcast;

pub use self::memory::MemoryCache;
pub use self::rate_limit::{RateDecision, RateWindow};
pub use self::redis::RedisCache;
use crate::config::{CacheTarget, Mode};
use crate::error::Result;

/// A cache on either backend (cheap to clone).
#[derive(Debug, Clone)]
#[expect(
    clippy::large_enum_variant,
    reason = "one long-lived value per service; a box buys nothing"
)]
pub enum Cache {
    Redis(RedisCache),
    Memory(MemoryCache),
}

/// A pub/sub subscription; [`Subscription::next`] yields message payloads.
pub enum Subscription {
    Redis(::redis::aio::PubSubStream),
    Memory {
        rx: broadcast::Receiver<(std::sync::Arc<str>, std::sync::Arc<str>)>,
        channel: std::sync::Arc<str>,
    },
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Redis(_) => "Subscription::Redis",
            Self::Memory { .. } => "Subscription::Memory",
        })
    }
}

impl Subscription {
    /// The next message, or `None` once the subscription has ended (connection lost); callers
    /// subscribe again.
    pub async fn next(&mut self) -> Option<String> {
        match self {
            Self::Redis(stream) => loop {
                let msg = stream.next().await?;
                if let Ok(payload) = msg.get_payload::<String>() {
                    return Some(payload);
                }
            },
            Self::Memory { rx, channel } => loop {
                match rx.recv().await {
                    Ok((ch, payload)) if ch == *channel => return Some(payload.to_string()),
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            },
        }
    }
}

/// Count an operation and its latency for `/metrics`.
fn record<T>(
    backend: &'static str,
    op: &'static str,
    started: Instant,
    result: &Result<T>,
    hit: Option<bool>,
) {
    metrics::histogram!("cg_cache_operation_duration_seconds", "backend" => backend, "op" => op)
        .record(started.elapsed().as_secs_f64());
    let outcome = match (result, hit) {
        (Err(_), _) => "error",
        (Ok(_), Some(true)) => "hit",
        (Ok(_), Some(false)) => "miss",
        (Ok(_), None) => "ok",
    };
    metrics::counter!("cg_cache_operations_total", "backend" => backend, "op" => op, "result" => outcome)
        .increment(1);
}

macro_rules! dispatch {
    ($self:ident, $op:literal, |$c:ident| redis: $redis:expr, memory: $memory:expr) => {{
        let started = Instant::now();
        let result = match $self {
            Cache::Redis($c) => $redis,
            Cache::Memory($c) => $memory,
        };
        record($self.backend(), $op, started, &result, None);
        result
    }};
}

impl Cache {
    /// Connect to the configured cache.
    pub async fn connect(target: &CacheTarget) -> Result<Self> {
        match target {
            CacheTarget::Redis(t) => Ok(Self::Redis(RedisCache::connect(t).await?)),
            CacheTarget::Memory {
                max_bytes,
                key_prefix,
            } => Ok(Self::Memory(MemoryCache::new(*max_bytes, key_prefix))),
        }
    }

    /// `redis` or `memory`.
    pub fn backend(&self) -> &'static str {
        match self {
            Self::Redis(_) => "redis",
            Self::Memory(_) => "memory",
        }
    }

    /// Embedded (in-process) or centralized (Redis).
    pub fn mode(&self) -> Mode {
        match self {
            Self::Redis(_) => Mode::Centralized,
            Self::Memory(_) => Mode::Embedded,
        }
    }

    /// The prefix every key and channel gets.
    pub fn prefix(&self) -> &str {
        match self {
            Self::Redis(c) => c.prefix(),
            Self::Memory(c) => c.prefix(),
        }
    }

    /// The same cache with `extra` appended to the prefix (a namespace: a service, a test).
    pub fn with_prefix(&self, extra: &str) -> Self {
        match self {
            Self::Redis(c) => Self::Redis(c.with_prefix(extra)),
            Self::Memory(c) => Self::Memory(c.with_prefix(extra)),
        }
    }

    /// Round trip; returns how long it took.
    pub async fn ping(&self) -> Result<Duration> {
        let started = Instant::now();
        if let Self::Redis(c) = self {
            c.ping().await?;
        }
        Ok(started.elapsed())
    }

    /// The value at `key`.
    pub async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let started = Instant::now();
        let result = match self {
            Self::Redis(c) => c.get(key).await,
            Self::Memory(c) => c.get(key),
        };
        let hit = result.as_ref().ok().map(Option::is_some);
        record(self.backend(), "get", started, &result, hit);
        result
    }

    /// The value at `key` as UTF-8 text.
    pub async fn get_string(&self, key: &str) -> Result<Option<String>> {
        self.get(key)
            .await?
            .map(|b| String::from_utf8(b).map_err(|e| crate::Error::Corrupt(e.to_string())))
            .transpose()
    }

    /// Remove `key` and return what it held, atomically (`GETDEL`): of two callers racing for the
    /// same key, one gets the value.
    pub async fn take(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let started = Instant::now();
        let result = match self {
            Self::Redis(c) => c.take(key).await,
            Self::Memory(c) => c.take(key),
        };
        let hit = result.as_ref().ok().map(Option::is_some);
        record(self.backend(), "take", started, &result, hit);
        result
    }

    /// Store `value` at `key`, replacing any value and TTL.
    pub async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        dispatch!(self, "set", |c| redis: c.set(key, value, ttl).await, memory: {
            c.set(key, value, ttl);
            Ok(())
        })
    }

    /// Store only if `key` holds nothing; returns whether it stored.
    pub async fn set_nx(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<bool> {
        dispatch!(self, "set_nx", |c| redis: c.set_nx(key, value, ttl).await, memory: Ok(c.set_nx(key, value, ttl)))
    }

    /// Remove `key`; returns whether it existed.
    pub async fn delete(&self, key: &str) -> Result<bool> {
        dispatch!(self, "delete", |c| redis: c.delete(key).await, memory: Ok(c.delete(key)))
    }

    /// Add `delta` to the counter at `key` atomically; a new key gets `ttl_if_new`, an existing
    /// one keeps its TTL. Returns the new value.
    pub async fn incr_by(
        &self,
        key: &str,
        delta: i64,
        ttl_if_new: Option<Duration>,
    ) -> Result<i64> {
        dispatch!(self, "incr", |c| redis: c.incr_by(key, delta, ttl_if_new).await, memory: c.incr_by(key, delta, ttl_if_new))
    }

    /// Set the TTL of `key`; returns whether it exists.
    pub async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        dispatch!(self, "expire", |c| redis: c.expire(key, ttl).await, memory: Ok(c.expire(key, ttl)))
    }

    /// Time left on `key`, `None` when it has no TTL or does not exist.
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        dispatch!(self, "ttl", |c| redis: c.ttl(key).await, memory: Ok(c.ttl(key)))
    }

    /// Set one field of the hash at `key`.
    pub async fn hset(&self, key: &str, field: &str, value: &[u8]) -> Result<()> {
        dispatch!(self, "hset", |c| redis: c.hset(key, field, value).await, memory: c.hset(key, field, value))
    }

    /// One field of the hash at `key`.
    pub async fn hget(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>> {
        let started = Instant::now();
        let result = match self {
            Self::Redis(c) => c.hget(key, field).await,
            Self::Memory(c) => c.hget(key, field),
        };
        let hit = result.as_ref().ok().map(Option::is_some);
        record(self.backend(), "hget", started, &result, hit);
        result
    }

    /// Remove one field of the hash at `key`; returns whether it existed.
    pub async fn hdel(&self, key: &str, field: &str) -> Result<bool> {
        dispatch!(self, "hdel", |c| redis: c.hdel(key, field).await, memory: c.hdel(key, field))
    }

    /// Add `delta` to one integer field of the hash at `key` atomically.
    pub async fn hincr_by(&self, key: &str, field: &str, delta: i64) -> Result<i64> {
        dispatch!(self, "hincr", |c| redis: c.hincr_by(key, field, delta).await, memory: c.hincr_by(key, field, delta))
    }

    /// Every field of the hash at `key` (empty when absent).
    pub async fn hgetall(&self, key: &str) -> Result<HashMap<String, Vec<u8>>> {
        dispatch!(self, "hgetall", |c| redis: c.hgetall(key).await, memory: c.hgetall(key))
    }

    /// Ask for `want` units (requests) for `key`: grant as many as every window admits (only
    /// one unit at a time when little is left, see [`rate_limit::LEASE_SHARE`]; none when one does
    /// not fit) and count them in every window: atomically, in one round trip. `want` = 1 is the
    /// plain check of one request.
    pub async fn rate_limit(
        &self,
        key: &str,
        windows: &[RateWindow],
        want: u64,
    ) -> Result<RateDecision> {
        let now_ms = now_ms();
        dispatch!(self, "rate_limit", |c| redis: c.rate_limit(key, windows, want, now_ms).await, memory: c.rate_limit(key, windows, want, now_ms))
    }

    /// Give back `units` granted by [`Cache::rate_limit`] for `key` and never used (`at_ms`: the
    /// decision's [`RateDecision::at_ms`]); a counter that has expired meanwhile is left alone.
    pub async fn rate_limit_release(
        &self,
        key: &str,
        windows: &[RateWindow],
        at_ms: u64,
        units: u64,
    ) -> Result<()> {
        dispatch!(self, "rate_limit", |c| redis: c.rate_limit_release(key, windows, at_ms, units).await, memory: c.rate_limit_release(key, windows, at_ms, units))
    }

    /// [`Cache::rate_limit`] for `key`, and [`Cache::incr_by`] of `counter` by `delta` (a new
    /// counter lives `ttl`), in one round trip where the backend allows. The counter is changed
    /// whatever the decision: a caller refused by the limit gives `delta` back. Returns the
    /// decision and the counter's new value, `None` when the decision was made but the counter
    /// could not be read back (on a Redis Cluster, where the two are separate calls, or after
    /// the server lost its scripts); the caller then counts on its own.
    pub async fn rate_limit_and_incr_by(
        &self,
        key: &str,
        windows: &[RateWindow],
        want: u64,
        counter: &str,
        delta: i64,
        ttl: Duration,
    ) -> Result<(RateDecision, Option<i64>)> {
        let now_ms = now_ms();
        dispatch!(self, "rate_limit", |c| redis: c.rate_limit_and_incr_by(key, windows, want, now_ms, counter, delta, ttl).await, memory: c.rate_limit(key, windows, want, now_ms).and_then(|d| Ok((d, Some(c.incr_by(counter, delta, Some(ttl))?)))))
    }

    /// Publish `message` on `channel`; returns how many subscribers received it (on Redis Cluster,
    /// those of the node that took the message: every node relays it to its own).
    pub async fn publish(&self, channel: &str, message: &str) -> Result<usize> {
        dispatch!(self, "publish", |c| redis: c.publish(channel, message).await, memory: Ok(c.publish(channel, message)))
    }

    /// Subscribe to `channel`.
    pub async fn subscribe(&self, channel: &str) -> Result<Subscription> {
        dispatch!(self, "subscribe", |c| redis: c.subscribe(channel).await, memory: Ok(c.subscribe(channel)))
    }
}

/// Wall-clock milliseconds; windows are aligned on it so every replica agrees on bucket edges.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}
