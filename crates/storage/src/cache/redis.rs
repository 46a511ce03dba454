//! The Redis cache: one multiplexed connection (`ConnectionManager`, reconnecting) or a cluster
//! connection, a separate connection for pub/sub, and the rate-limit Lua script.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, FromRedisValue, Script};
use secrecy::ExposeSecret;

use super::Subscription;
use super::rate_limit::{self, RateDecision, RateWindow};
use crate::config::RedisTarget;
use crate::error::{Error, Result};

/// Reconnection attempts per failed command before the error reaches the caller.
const RECONNECT_RETRIES: usize = 2;

/// The rate-limit script: read every window, grant what fits (`rate_limit::grant`, the same
/// arithmetic; 1/16 is `LEASE_SHARE`, 256 `LEASE_MIN_ROOM`) and count it in all of them. KEYS: per window its current
/// and previous bucket. ARGV: units wanted, then per window limit, window_ms, elapsed_ms. Returns
/// `{granted, cur1, prev1, cur2, prev2, …}` read before the increment.
///
/// `INCRBY key delta` (its reply kept) and `PEXPIRE key ttl NX` (ignored) on `pipe`: NX gives a
/// TTL only to a key without one, so a running counter is not extended.
fn push_incr_by(pipe: &mut redis::Pipeline, key: &str, delta: i64, ttl: Duration) {
    pipe.cmd("INCRBY")
        .arg(key)
        .arg(delta)
        .cmd("PEXPIRE")
        .arg(key)
        .arg(millis(ttl))
        .arg("NX")
        .ignore();
}

/// The rate-limit script called for `keys` (the buckets of `windows`).
fn rate_limit_invocation(
    keys: &[String],
    windows: &[RateWindow],
    want: u64,
    now_ms: u64,
) -> redis::ScriptInvocation<'static> {
    let mut invocation = RATE_LIMIT_SCRIPT.prepare_invoke();
    for k in keys {
        invocation.key(k);
    }
    invocation.arg(want);
    for w in windows {
        invocation
            .arg(w.limit)
            .arg(w.window_ms())
            .arg(rate_limit::elapsed_in_bucket(w, now_ms));
    }
    invocation
}

/// The script's reply: the units granted, and the counts it read (one per key).
fn split_reply(reply: &[u64], keys: usize) -> Result<(u64, &[u64])> {
    let Some((&granted, counts)) = reply.split_first() else {
        return Err(Error::Corrupt("empty rate-limit reply".into()));
    };
    if counts.len() != keys {
        return Err(Error::Corrupt("short rate-limit reply".into()));
    }
    Ok((granted, counts))
}

static RATE_LIMIT_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = #KEYS / 2
local out = {tonumber(ARGV[1])}
for i = 1, n do
  local limit = tonumber(ARGV[3 * i - 1])
  local window = tonumber(ARGV[3 * i])
  local elapsed = tonumber(ARGV[3 * i + 1])
  local cur = tonumber(redis.call('GET', KEYS[2 * i - 1]) or '0')
  local prev = tonumber(redis.call('GET', KEYS[2 * i]) or '0')
  out[2 * i] = cur
  out[2 * i + 1] = prev
  local room = math.floor(limit - (prev * (window - elapsed) / window + cur))
  if room < 1 then
    out[1] = 0
  else
    local cap = 1
    if room >= 256 then cap = math.floor(room / 16) end
    if cap < out[1] then out[1] = cap end
  end
end
if out[1] > 0 then
  for i = 1, n do
    redis.call('INCRBY', KEYS[2 * i - 1], out[1])
    redis.call('PEXPIRE', KEYS[2 * i - 1], 2 * tonumber(ARGV[3 * i]))
  end
end
return out
",
    )
});

/// Take `ARGV[1]` units back from each counter in KEYS that still exists (never below zero).
static RATE_RELEASE_SCRIPT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
for _, k in ipairs(KEYS) do
  if redis.call('EXISTS', k) == 1 then
    if redis.call('DECRBY', k, ARGV[1]) < 0 then redis.call('SET', k, 0, 'KEEPTTL') end
  end
end
return 0
",
    )
});

#[derive(Clone)]
enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

/// A Redis server or cluster (cheap to clone; clones share connections).
#[derive(Clone)]
pub struct RedisCache {
    conn: Connection,
    /// Pub/sub needs its own connection; any node of a cluster relays every message.
    pubsub_client: redis::Client,
    connect_timeout: Duration,
    prefix: Arc<str>,
    display: Arc<str>,
}

impl std::fmt::Debug for RedisCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisCache")
            .field("target", &self.display)
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisCache {
    /// Connect, so a wrong address fails at start-up with the variable named.
    pub async fn connect(target: &RedisTarget) -> Result<Self> {
        let fail = |e: &dyn std::fmt::Display| {
            Error::unavailable(
                "redis",
                format!(
                    "cannot connect to Redis ({}) given by {}: {e}",
                    target.display, target.source
                ),
            )
        };
        let first = target
            .urls
            .first()
            .ok_or_else(|| Error::Config(format!("{} names no Redis node", target.source)))?;
        let pubsub_client = redis::Client::open(first.expose_secret()).map_err(|e| fail(&e))?;
        let conn = if target.cluster {
            let nodes: Vec<String> = target
                .urls
                .iter()
                .map(|u| u.expose_secret().to_owned())
                .collect();
            let client = redis::cluster::ClusterClient::builder(nodes)
                .connection_timeout(target.connect_timeout)
                .response_timeout(target.response_timeout)
                .retries(u32::try_from(RECONNECT_RETRIES).unwrap_or(2))
                .build()
                .map_err(|e| fail(&e))?;
            let connect = client.get_async_connection();
            let conn = tokio::time::timeout(target.connect_timeout * 2, connect)
                .await
                .map_err(|_| fail(&"timed out"))?
                .map_err(|e| fail(&e))?;
            Connection::Cluster(conn)
        } else {
            let config = ConnectionManagerConfig::new()
                .set_connection_timeout(Some(target.connect_timeout))
                .set_response_timeout(Some(target.response_timeout))
                .set_number_of_retries(RECONNECT_RETRIES)
                .set_max_delay(Duration::from_millis(500));
            let connect = ConnectionManager::new_with_config(pubsub_client.clone(), config);
            let conn = tokio::time::timeout(target.connect_timeout * 2, connect)
                .await
                .map_err(|_| fail(&"timed out"))?
                .map_err(|e| fail(&e))?;
            Connection::Single(conn)
        };
        let cache = Self {
            conn,
            pubsub_client,
            connect_timeout: target.connect_timeout,
            prefix: target.key_prefix.as_str().into(),
            display: target.display.as_str().into(),
        };
        cache.ping().await.map_err(|e| fail(&e))?;
        Ok(cache)
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    pub(crate) fn with_prefix(&self, extra: &str) -> Self {
        Self {
            prefix: format!("{}{extra}", self.prefix).into(),
            ..self.clone()
        }
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T> {
        let result = match &self.conn {
            Connection::Single(c) => cmd.query_async(&mut c.clone()).await,
            Connection::Cluster(c) => cmd.query_async(&mut c.clone()).await,
        };
        Ok(result?)
    }

    pub(crate) async fn ping(&self) -> Result<()> {
        let pong: String = self.query(&redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(Error::Corrupt(format!("PING answered {pong:?}")))
        }
    }

    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.query(redis::cmd("GET").arg(self.key(key))).await
    }

    pub(crate) async fn take(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.query(redis::cmd("GETDEL").arg(self.key(key))).await
    }

    pub(crate) async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<()> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value);
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(millis(ttl));
        }
        self.query::<()>(&cmd).await
    }

    pub(crate) async fn set_nx(
        &self,
        key: &str,
        value: &[u8],
        ttl: Option<Duration>,
    ) -> Result<bool> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key)).arg(value).arg("NX");
        if let Some(ttl) = ttl {
            cmd.arg("PX").arg(millis(ttl));
        }
        let reply: Option<String> = self.query(&cmd).await?;
        Ok(reply.is_some())
    }

    pub(crate) async fn delete(&self, key: &str) -> Result<bool> {
        let n: i64 = self.query(redis::cmd("DEL").arg(self.key(key))).await?;
        Ok(n > 0)
    }

    pub(crate) async fn incr_by(
        &self,
        key: &str,
        delta: i64,
        ttl_if_new: Option<Duration>,
    ) -> Result<i64> {
        let full = self.key(key);
        let Some(ttl) = ttl_if_new else {
            return self.query(redis::cmd("INCRBY").arg(&full).arg(delta)).await;
        };
        // One round trip, atomically.
        let mut pipe = redis::pipe();
        push_incr_by(pipe.atomic(), &full, delta, ttl);
        let (value,): (i64,) = match &self.conn {
            Connection::Single(c) => pipe.query_async(&mut c.clone()).await,
            Connection::Cluster(c) => pipe.query_async(&mut c.clone()).await,
        }?;
        Ok(value)
    }

    pub(crate) async fn expire(&self, key: &str, ttl: Duration) -> Result<bool> {
        let n: i64 = self
            .query(redis::cmd("PEXPIRE").arg(self.key(key)).arg(millis(ttl)))
            .await?;
        Ok(n == 1)
    }

    pub(crate) async fn ttl(&self, key: &str) -> Result<Option<Duration>> {
        let ms: i64 = self.query(redis::cmd("PTTL").arg(self.key(key))).await?;
        Ok(u64::try_from(ms).ok().map(Duration::from_millis))
    }

    pub(crate) async fn hset(&self, key: &str, field: &str, value: &[u8]) -> Result<()> {
        self.query::<i64>(redis::cmd("HSET").arg(self.key(key)).arg(field).arg(value))
            .await
            .map(|_| ())
    }

    pub(crate) async fn hget(&self, key: &str, field: &str) -> Result<Option<Vec<u8>>> {
        self.query(redis::cmd("HGET").arg(self.key(key)).arg(field))
            .await
    }

    pub(crate) async fn hdel(&self, key: &str, field: &str) -> Result<bool> {
        let n: i64 = self
            .query(redis::cmd("HDEL").arg(self.key(key)).arg(field))
            .await?;
        Ok(n > 0)
    }

    pub(crate) async fn hincr_by(&self, key: &str, field: &str, delta: i64) -> Result<i64> {
        self.query(
            redis::cmd("HINCRBY")
                .arg(self.key(key))
                .arg(field)
                .arg(delta),
        )
        .await
    }

    pub(crate) async fn hgetall(&self, key: &str) -> Result<HashMap<String, Vec<u8>>> {
        self.query(redis::cmd("HGETALL").arg(self.key(key))).await
    }

    pub(crate) async fn rate_limit(
        &self,
        key: &str,
        windows: &[RateWindow],
        want: u64,
        now_ms: u64,
    ) -> Result<RateDecision> {
        let keys = rate_limit::bucket_keys(&self.prefix, key, windows, now_ms);
        let invocation = rate_limit_invocation(&keys, windows, want, now_ms);
        let reply: Vec<u64> = match &self.conn {
            Connection::Single(c) => invocation.invoke_async(&mut c.clone()).await,
            Connection::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
        }?;
        let (granted, counts) = split_reply(&reply, keys.len())?;
        Ok(rate_limit::decide(windows, granted, counts, now_ms))
    }

    /// Give back `units` counted at `at_ms` in the current bucket of each window.
    pub(crate) async fn rate_limit_release(
        &self,
        key: &str,
        windows: &[RateWindow],
        at_ms: u64,
        units: u64,
    ) -> Result<()> {
        let keys = rate_limit::bucket_keys(&self.prefix, key, windows, at_ms);
        let mut invocation = RATE_RELEASE_SCRIPT.prepare_invoke();
        for k in keys.iter().step_by(2) {
            invocation.key(k);
        }
        invocation.arg(units);
        let _: i64 = match &self.conn {
            Connection::Single(c) => invocation.invoke_async(&mut c.clone()).await,
            Connection::Cluster(c) => invocation.invoke_async(&mut c.clone()).await,
        }?;
        Ok(())
    }

    /// [`Self::rate_limit`] and [`Self::incr_by`] (with a TTL for a new counter) in one round
    /// trip: a pipeline on a single server (the counter is added whatever the decision; callers
    /// return it when refused), two calls on a cluster, where the keys live in other slots.
    #[expect(
        clippy::too_many_arguments,
        reason = "two operations' arguments, one round trip"
    )]
    pub(crate) async fn rate_limit_and_incr_by(
        &self,
        key: &str,
        windows: &[RateWindow],
        want: u64,
        now_ms: u64,
        counter: &str,
        delta: i64,
        ttl: Duration,
    ) -> Result<(RateDecision, Option<i64>)> {
        let Connection::Single(conn) = &self.conn else {
            // The decision stands even if the counter fails (the caller then counts it itself).
            let decision = self.rate_limit(key, windows, want, now_ms).await?;
            let total = self.incr_by(counter, delta, Some(ttl)).await.ok();
            return Ok((decision, total));
        };
        let keys = rate_limit::bucket_keys(&self.prefix, key, windows, now_ms);
        let invocation = rate_limit_invocation(&keys, windows, want, now_ms);
        let full = self.key(counter);
        let mut pipe = redis::pipe();
        push_incr_by(pipe.invoke_script(&invocation), &full, delta, ttl);
        let replied: redis::RedisResult<(Vec<u64>, i64)> =
            pipe.query_async(&mut conn.clone()).await;
        let (reply, total) = match replied {
            Ok(r) => r,
            // A server that has not seen the script yet (a restart, a flush): the INCRBY ran
            // anyway, so only the script is run again, which loads it.
            Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                let decision = self.rate_limit(key, windows, want, now_ms).await?;
                let total: Option<i64> = self.query(redis::cmd("GET").arg(&full)).await.ok();
                return Ok((decision, total));
            }
            Err(e) => return Err(e.into()),
        };
        let (granted, counts) = split_reply(&reply, keys.len())?;
        Ok((
            rate_limit::decide(windows, granted, counts, now_ms),
            Some(total),
        ))
    }

    pub(crate) async fn publish(&self, channel: &str, message: &str) -> Result<usize> {
        self.query(redis::cmd("PUBLISH").arg(self.key(channel)).arg(message))
            .await
    }

    pub(crate) async fn subscribe(&self, channel: &str) -> Result<Subscription> {
        let connect = self.pubsub_client.get_async_pubsub();
        let mut pubsub = tokio::time::timeout(self.connect_timeout * 2, connect)
            .await
            .map_err(|_| Error::timeout("redis", self.connect_timeout * 2))??;
        pubsub.subscribe(self.key(channel)).await?;
        Ok(Subscription::Redis(pubsub.into_on_message()))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}
