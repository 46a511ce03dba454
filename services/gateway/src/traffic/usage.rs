//! Usage metering: per organisation, hour and day, endpoint and guard — requests, errors,
//! tokens, estimated cost and latency.
//!
//! A request adds to this replica's in-process tally (no I/O on the request path). Every second
//! the tally goes to Redis (`HINCRBY` on one hash per organisation and hour and one per day, so
//! every replica adds to the same totals), and the totals of the periods this replica touched go
//! to `usage_records` as idempotent upserts that never lower a figure. While Redis is away the
//! tally keeps growing and is pushed once Redis answers again: nothing is lost unless the replica
//! dies first (at most its last second, or its whole Redis outage). The month's guard-call count
//! (the quota) is a Redis counter too; each replica reads it back when it pushes.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// How long a month total read from Redis is trusted without this replica pushing.
const MONTH_FRESH: Duration = Duration::from_secs(5);

use cg_storage::models::UsageRecord;
use cg_storage::sql_types::{Id, Timestamp};
use cg_storage::{Cache, Db};
use chrono::{DateTime, Datelike, TimeZone, Utc};
use tokio_util::sync::CancellationToken;

/// The endpoint each guard call is recorded under (by guard).
pub const GUARD_CALL_ENDPOINT: &str = "/api/v1/guards/process";
/// Hash fields are `endpoint SEP guard SEP counter` (SEP cannot occur in a route pattern).
const SEP: char = '\u{1f}';
const KEEP_HOURS: Duration = Duration::from_secs(3 * 24 * 3600);
const KEEP_DAYS: Duration = Duration::from_secs(40 * 24 * 3600);
const COUNTERS: [&str; 6] = [
    "requests",
    "errors",
    "tokens_input",
    "tokens_output",
    "cost_usd_micros",
    "latency_ms_total",
];

/// What one request (or one guard call) adds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sample {
    pub error: bool,
    pub tokens_input: i64,
    pub tokens_output: i64,
    pub cost_usd_micros: i64,
    pub latency_ms: i64,
}

/// Running figures of one (organisation, period, endpoint, guard).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: i64,
    pub errors: i64,
    pub tokens_input: i64,
    pub tokens_output: i64,
    pub cost_usd_micros: i64,
    pub latency_ms_total: i64,
    pub latency_ms_max: i64,
}

impl Counts {
    fn add(&mut self, s: &Sample) {
        self.requests += 1;
        self.errors += i64::from(s.error);
        self.tokens_input += s.tokens_input;
        self.tokens_output += s.tokens_output;
        self.cost_usd_micros += s.cost_usd_micros;
        self.latency_ms_total += s.latency_ms;
        self.latency_ms_max = self.latency_ms_max.max(s.latency_ms);
    }

    fn counter(&self, name: &str) -> i64 {
        match name {
            "requests" => self.requests,
            "errors" => self.errors,
            "tokens_input" => self.tokens_input,
            "tokens_output" => self.tokens_output,
            "cost_usd_micros" => self.cost_usd_micros,
            "latency_ms_total" => self.latency_ms_total,
            _ => 0,
        }
    }

    fn counter_mut(&mut self, name: &str) -> Option<&mut i64> {
        Some(match name {
            "requests" => &mut self.requests,
            "errors" => &mut self.errors,
            "tokens_input" => &mut self.tokens_input,
            "tokens_output" => &mut self.tokens_output,
            "cost_usd_micros" => &mut self.cost_usd_micros,
            "latency_ms_total" => &mut self.latency_ms_total,
            _ => return None,
        })
    }

    fn merge(&mut self, other: &Counts) {
        for name in COUNTERS {
            if let Some(c) = self.counter_mut(name) {
                *c += other.counter(name);
            }
        }
        self.latency_ms_max = self.latency_ms_max.max(other.latency_ms_max);
    }
}

/// A period: `hour` or `day` and its start (unix seconds, UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Period {
    pub granularity: &'static str,
    pub start: i64,
}

impl Period {
    fn of(granularity: &'static str, at: DateTime<Utc>) -> Self {
        let secs = at.timestamp();
        let span = Self {
            granularity,
            start: 0,
        }
        .span();
        Self {
            granularity,
            start: secs - secs.rem_euclid(span),
        }
    }

    /// Its length in seconds.
    fn span(&self) -> i64 {
        if self.granularity == "hour" {
            3600
        } else {
            86_400
        }
    }

    fn hash_key(&self, org: Id) -> String {
        format!("usage:{}:{org}:{}", self.granularity, self.start)
    }

    fn keep(&self) -> Duration {
        if self.granularity == "hour" {
            KEEP_HOURS
        } else {
            KEEP_DAYS
        }
    }
}

type Slot = (Id, Period, String, String);

/// One replica's meter.
#[derive(Debug)]
pub struct UsageMeter {
    cache: Cache,
    db: Db,
    replica: String,
    pending: Mutex<HashMap<Slot, Counts>>,
    /// This replica's largest latency per slot (written under its own field: Redis has no
    /// "max" increment).
    maxima: Mutex<HashMap<Slot, i64>>,
    /// Periods whose Redis totals are to be written to the database.
    touched: Mutex<HashSet<(Id, Period)>>,
    /// Guard calls this month per organisation, as Redis last said: (month, count).
    month: Mutex<HashMap<Id, (String, i64, Instant)>>,
    /// Guard requests counted against the quota but not yet added to the month counter.
    month_pending: Mutex<HashMap<(Id, String), i64>>,
    /// Slots taken out of `pending` by a flush in progress.
    in_flight: AtomicUsize,
}

fn month_of(at: DateTime<Utc>) -> String {
    format!("{:04}{:02}", at.year(), at.month())
}

fn month_key(org: Id, month: &str) -> String {
    format!("usage:month:{org}:{month}")
}

impl UsageMeter {
    pub fn new(cache: Cache, db: Db) -> Self {
        Self {
            cache,
            db,
            replica: format!("{}-{}", std::process::id(), Id::new()),
            pending: Mutex::default(),
            maxima: Mutex::default(),
            touched: Mutex::default(),
            month: Mutex::default(),
            month_pending: Mutex::default(),
            in_flight: AtomicUsize::new(0),
        }
    }

    /// Count one request (`guard` empty) or one guard call; no I/O.
    pub fn record(&self, org: Id, endpoint: &str, guard: &str, sample: &Sample) {
        let now = Utc::now();
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        for granularity in ["hour", "day"] {
            pending
                .entry((
                    org,
                    Period::of(granularity, now),
                    endpoint.to_owned(),
                    guard.to_owned(),
                ))
                .or_default()
                .add(sample);
        }
    }

    /// Count one guard request against the organisation's monthly quota (called once the request
    /// has passed the quota and budget checks; refusals do not count). No I/O.
    pub fn count_quota(&self, org: Id) {
        if let Ok(mut m) = self.month_pending.lock() {
            *m.entry((org, month_of(Utc::now()))).or_default() += 1;
        }
    }

    /// Guard calls this month: the total Redis last reported plus this replica's count not yet
    /// pushed. Reads Redis at most every few seconds per organisation and replica.
    pub async fn month_requests(&self, org: Id) -> i64 {
        let month = month_of(Utc::now());
        let owed: i64 = self
            .month_pending
            .lock()
            .map(|m| m.get(&(org, month.clone())).copied().unwrap_or(0))
            .unwrap_or(0);
        let local = owed;
        let known = self.month.lock().ok().and_then(|m| {
            m.get(&org)
                .filter(|(mo, _, at)| *mo == month && at.elapsed() < MONTH_FRESH)
                .map(|(_, n, _)| *n)
        });
        let shared = match known {
            Some(n) => n,
            None => {
                let n = self
                    .cache
                    .get_string(&month_key(org, &month))
                    .await
                    .ok()
                    .flatten()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if let Ok(mut m) = self.month.lock() {
                    m.insert(org, (month, n, Instant::now()));
                }
                n
            }
        };
        shared + local
    }

    /// Push the tally to Redis, then the touched periods' totals to the database. A failure
    /// keeps what was not pushed for the next round.
    pub async fn flush_once(&self) -> cg_storage::Result<()> {
        let batch: Vec<(Slot, Counts)> = match self.pending.lock() {
            Ok(mut p) => p.drain().collect(),
            Err(_) => return Ok(()),
        };
        self.in_flight.store(batch.len(), Ordering::Relaxed);
        let mut result = Ok(());
        let mut unsent: Vec<(Slot, Counts)> = Vec::new();
        for (slot, counts) in batch {
            if result.is_err() {
                unsent.push((slot, counts));
                continue;
            }
            match self.push(&slot, counts).await {
                Ok(()) => {
                    if let Ok(mut t) = self.touched.lock() {
                        t.insert((slot.0, slot.1));
                    }
                }
                Err((left, e)) => {
                    unsent.push((slot, left));
                    result = Err(e);
                }
            }
        }
        if !unsent.is_empty()
            && let Ok(mut p) = self.pending.lock()
        {
            for (slot, counts) in unsent {
                p.entry(slot).or_default().merge(&counts);
            }
        }
        self.in_flight.store(0, Ordering::Relaxed);
        // A period over for more than a period takes no more samples: forget its maximum.
        let now = Utc::now().timestamp();
        if let Ok(mut maxima) = self.maxima.lock() {
            maxima.retain(|(_, period, _, _), _| now - period.start < 2 * period.span());
        }
        result?;
        self.push_months().await?;
        self.write_touched().await
    }

    /// Add the guard calls pushed since the last round to the month counters.
    async fn push_months(&self) -> cg_storage::Result<()> {
        let owed: Vec<((Id, String), i64)> = match self.month_pending.lock() {
            Ok(mut m) => m.drain().collect(),
            Err(_) => return Ok(()),
        };
        let mut failed = None;
        let mut unsent = Vec::new();
        for ((org, month), n) in owed {
            if failed.is_some() {
                unsent.push(((org, month), n));
                continue;
            }
            match self
                .cache
                .incr_by(&month_key(org, &month), n, Some(KEEP_DAYS))
                .await
            {
                Ok(total) => {
                    if let Ok(mut m) = self.month.lock() {
                        m.insert(org, (month, total, Instant::now()));
                    }
                }
                Err(e) => {
                    unsent.push(((org, month), n));
                    failed = Some(e);
                }
            }
        }
        if let Ok(mut m) = self.month_pending.lock() {
            for (k, n) in unsent {
                *m.entry(k).or_default() += n;
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Push one slot; on failure return what is still unsent.
    async fn push(&self, slot: &Slot, counts: Counts) -> Result<(), (Counts, cg_storage::Error)> {
        let (org, period, endpoint, guard) = slot;
        let key = period.hash_key(*org);
        let mut left = counts;
        for name in COUNTERS {
            let value = counts.counter(name);
            if value == 0 {
                continue;
            }
            let field = format!("{endpoint}{SEP}{guard}{SEP}{name}");
            if let Err(e) = self.cache.hincr_by(&key, &field, value).await {
                return Err((left, e));
            }
            if let Some(c) = left.counter_mut(name) {
                *c = 0;
            }
        }
        let max = {
            let mut maxima = self.maxima.lock().map_err(|_| {
                (
                    left,
                    cg_storage::Error::Corrupt("usage maxima poisoned".into()),
                )
            })?;
            let m = maxima.entry(slot.clone()).or_default();
            *m = (*m).max(counts.latency_ms_max);
            *m
        };
        let field = format!(
            "{endpoint}{SEP}{guard}{SEP}latency_ms_max{SEP}{}",
            self.replica
        );
        if let Err(e) = self
            .cache
            .hset(&key, &field, max.to_string().as_bytes())
            .await
        {
            return Err((left, e));
        }
        let _ = self.cache.expire(&key, period.keep()).await;
        Ok(())
    }

    /// Write the Redis totals of every touched period to `usage_records`.
    async fn write_touched(&self) -> cg_storage::Result<()> {
        let touched: Vec<(Id, Period)> = match self.touched.lock() {
            Ok(t) => t.iter().copied().collect(),
            Err(_) => return Ok(()),
        };
        for (org, period) in touched {
            let totals = self.totals(org, period).await?;
            let now = Timestamp::now();
            let start: Timestamp = Utc
                .timestamp_opt(period.start, 0)
                .single()
                .unwrap_or_default()
                .into();
            let mut pooled = self.db.get().await?;
            let conn = &mut pooled.conn();
            for ((endpoint, guard), c) in totals {
                UsageRecord {
                    id: Id::new(),
                    organization_id: org,
                    granularity: period.granularity.into(),
                    period_start: start,
                    endpoint,
                    guard,
                    requests: c.requests,
                    errors: c.errors,
                    tokens_input: c.tokens_input,
                    tokens_output: c.tokens_output,
                    cost_usd_micros: c.cost_usd_micros,
                    latency_ms_total: c.latency_ms_total,
                    latency_ms_max: c.latency_ms_max,
                    created_at: now,
                    updated_at: now,
                }
                .upsert_max(conn)
                .await?;
            }
            if let Ok(mut t) = self.touched.lock() {
                t.remove(&(org, period));
            }
        }
        Ok(())
    }

    /// A period's totals in Redis, by (endpoint, guard).
    pub async fn totals(
        &self,
        org: Id,
        period: Period,
    ) -> cg_storage::Result<HashMap<(String, String), Counts>> {
        let raw = self.cache.hgetall(&period.hash_key(org)).await?;
        let mut out: HashMap<(String, String), Counts> = HashMap::new();
        for (field, value) in raw {
            let mut parts = field.split(SEP);
            let (Some(endpoint), Some(guard), Some(name)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            let value: i64 = std::str::from_utf8(&value)
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let c = out
                .entry((endpoint.to_owned(), guard.to_owned()))
                .or_default();
            if name == "latency_ms_max" {
                c.latency_ms_max = c.latency_ms_max.max(value);
            } else if let Some(slot) = c.counter_mut(name) {
                *slot = value;
            }
        }
        Ok(out)
    }

    /// Flush every `every` until `shutdown`, and once more on the way out.
    pub async fn flush_every(
        self: std::sync::Arc<Self>,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        let failing = AtomicBool::new(false);
        super::every_until(every, shutdown, |_| async {
            match self.flush_once().await {
                Ok(()) if failing.load(Ordering::Relaxed) => {
                    failing.store(false, Ordering::Relaxed);
                    tracing::info!("usage flushing resumed");
                }
                Ok(()) => {}
                Err(e) if !failing.load(Ordering::Relaxed) => {
                    failing.store(true, Ordering::Relaxed);
                    tracing::warn!(error = %e, "usage kept in memory until Redis and the database take it");
                }
                Err(_) => {}
            }
        })
        .await;
    }

    /// Slots waiting to be pushed, or being pushed (for `/health`).
    pub fn backlog(&self) -> usize {
        self.pending.lock().map(|p| p.len()).unwrap_or(0) + self.in_flight.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cg_storage::cache::MemoryCache;

    #[test]
    fn periods_align_on_utc_hours_and_days() {
        let at = Utc.with_ymd_and_hms(2026, 11, 28, 21, 37, 5).unwrap();
        let h = Period::of("hour", at);
        let d = Period::of("day", at);
        assert_eq!(
            h.start,
            Utc.with_ymd_and_hms(2026, 11, 28, 21, 0, 0)
                .unwrap()
                .timestamp()
        );
        assert_eq!(
            d.start,
            Utc.with_ymd_and_hms(2026, 11, 28, 0, 0, 0)
                .unwrap()
                .timestamp()
        );
        assert_eq!(month_of(at), "202611");
    }

    #[test]
    fn counts_add_and_merge() {
        let mut a = Counts::default();
        a.add(&Sample {
            error: true,
            tokens_input: 5,
            latency_ms: 7,
            ..Sample::default()
        });
        let mut b = Counts::default();
        b.add(&Sample {
            latency_ms: 3,
            cost_usd_micros: 2,
            ..Sample::default()
        });
        a.merge(&b);
        assert_eq!(
            (
                a.requests,
                a.errors,
                a.tokens_input,
                a.cost_usd_micros,
                a.latency_ms_total,
                a.latency_ms_max
            ),
            (2, 1, 5, 2, 10, 7)
        );
    }

    #[tokio::test]
    async fn a_flush_moves_the_tally_into_the_shared_totals() {
        let cache = Cache::Memory(MemoryCache::new(1 << 20, "t:"));
        let storage = cg_storage::testing::TestDb::sqlite().await;
        let meter = UsageMeter::new(cache, storage.db.clone());
        let org = Id::new();
        for ms in [4, 9] {
            meter.count_quota(org);
            meter.record(
                org,
                GUARD_CALL_ENDPOINT,
                "",
                &Sample {
                    latency_ms: ms,
                    ..Sample::default()
                },
            );
        }
        assert_eq!(
            meter.month_requests(org).await,
            2,
            "counted before any flush"
        );
        // No organisation row: the database write fails, Redis keeps the totals.
        assert!(meter.flush_once().await.is_err());
        assert_eq!(meter.backlog(), 0, "pushed to the cache");
        let totals = meter
            .totals(org, Period::of("hour", Utc::now()))
            .await
            .unwrap();
        let c = totals[&(GUARD_CALL_ENDPOINT.to_owned(), String::new())];
        assert_eq!(
            (c.requests, c.latency_ms_total, c.latency_ms_max),
            (2, 13, 9)
        );
        assert_eq!(
            meter.month_requests(org).await,
            2,
            "now from the shared month counter"
        );
    }
}
