//! Rate limits: three windows checked together in one atomic Redis call (burst 10 s, minute,
//! hour; sliding-window counters with constant memory per key, see
//! `cg_storage::cache::RateWindow`), per client (API key, else user) and endpoint class, with
//! limits from the organisation's tier.
//!
//! The tier's `requests_per_minute` is the minute limit of the `process` class (guard calls);
//! `read` requests get twice that, `admin` writes half (at least 1). The 10-second burst allows
//! `GATEWAY_RATE_BURST_SHARE` (0.5) of the minute limit, the hour 30 minutes' worth.
//!
//! Requests are counted in Redis in leases (see [`super::lease`]): a busy client's replica takes
//! several units at once and hands them out without a round trip; a slow client, or one close to
//! its limit, is counted one request at a time.
//!
//! While Redis does not answer, each replica limits on its own with the same windows
//! (`GATEWAY_RATE_LIMIT_FAIL_MODE=local`, the default; a client spread over N replicas then gets
//! up to N times its limit), or lets everything through (`open`) or refuses everything (`closed`,
//! 503). Which one is in force shows in `/health` and in `cg_gateway_rate_limiter_fallback_total`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::HeaderValue;
use actix_web::middleware::Next;
use cg_storage::Cache;
use cg_storage::cache::{MemoryCache, RateDecision, RateWindow};
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::auth::caller::Metered;
use crate::error::{GatewayError, LIMIT_HEADER, REMAINING_HEADER, RESET_HEADER, Result};
use crate::state::AppState;
use crate::traffic::budget::PreReserved;
use crate::traffic::lease::{self, Leases, Taken, Unused};
use crate::traffic::{Sample, WorkerCaches};

/// The class of an endpoint, which sets its share of the tier's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointClass {
    /// `POST /api/v1/guards/process` and `/scan`: the guarded path.
    Process,
    /// Other writes (create, change, delete): administration.
    Admin,
    /// Reads.
    Read,
}

impl EndpointClass {
    pub fn of(method: &Method, path: &str) -> Self {
        if method == Method::POST
            && (path.starts_with("/api/v1/guards/")
                || path == "/api/v1/ab-testing/results"
                || path == "/api/v1/ab-testing/assign-user")
        {
            // Guard calls, and what client applications send per end user alongside them.
            Self::Process
        } else if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
            Self::Read
        } else {
            Self::Admin
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Process => "process",
            Self::Admin => "admin",
            Self::Read => "read",
        }
    }

    /// This class's per-minute limit for a tier allowing `per_minute` guard calls.
    pub fn per_minute(self, per_minute: u64) -> u64 {
        match self {
            Self::Process => per_minute,
            Self::Read => per_minute.saturating_mul(2),
            Self::Admin => (per_minute / 2).max(1),
        }
    }
}

/// What to do while Redis does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Limit per replica.
    #[default]
    Local,
    /// Let requests through unlimited.
    Open,
    /// Refuse requests (503).
    Closed,
}

/// The limiter of one replica.
#[derive(Debug)]
pub struct RateLimiter {
    shared: Cache,
    local: Cache,
    fail_mode: FailMode,
    burst_share: f64,
    /// Whether the last check fell back (for `/health`).
    degraded: AtomicBool,
    /// Per-worker connections to the same Redis as `shared`.
    workers: WorkerCaches,
    /// Requests counted in Redis and not handed out yet, by counter key.
    leases: Arc<Leases<String, Granted>>,
}

/// What a lease was granted under: enough to answer for each unit handed out and to give the
/// rest back.
#[derive(Debug, Clone, Copy)]
struct Granted {
    windows: [RateWindow; 3],
    /// Redis's decision, counting every unit of the lease.
    decision: RateDecision,
    at: Instant,
}

impl Granted {
    fn new(windows: [RateWindow; 3], decision: RateDecision) -> Self {
        Self {
            windows,
            decision,
            at: Instant::now(),
        }
    }

    /// The decision for a unit handed out with `left` units still in the lease: the units not
    /// handed out yet are not spent as far as the client is concerned.
    fn decision(&self, left: u64) -> RateDecision {
        RateDecision {
            granted: 1,
            remaining: self.decision.remaining.saturating_add(left),
            reset_after: self.decision.reset_after.saturating_sub(self.at.elapsed()),
            ..self.decision
        }
    }
}

/// A decision and where it was made.
#[derive(Debug, Clone, Copy)]
pub struct Limit {
    pub decision: RateDecision,
    /// `redis`, `local` or `open`.
    pub source: &'static str,
}

impl RateLimiter {
    pub fn new(shared: Cache, fail_mode: FailMode, burst_share: f64) -> Self {
        Self {
            local: Cache::Memory(MemoryCache::new(32 * 1024 * 1024, "local-rl:")),
            shared,
            fail_mode,
            burst_share: if burst_share.is_finite() && burst_share > 0.0 {
                burst_share.min(1.0)
            } else {
                0.5
            },
            degraded: AtomicBool::new(false),
            workers: WorkerCaches::new(None),
            leases: Arc::new(Leases::new(lease::LIFETIME, lease::MAX_UNITS)),
        }
    }

    /// Check through a connection of the calling worker thread once it is open.
    pub fn with_worker_connections(mut self, workers: WorkerCaches) -> Self {
        self.workers = workers;
        self
    }

    /// The windows for a class under a tier allowing `per_minute` guard calls a minute (the
    /// burst share from dynamic configuration when set, else this replica's).
    pub fn windows(
        &self,
        class: EndpointClass,
        per_minute: u64,
        burst_share: Option<f64>,
    ) -> [RateWindow; 3] {
        let minute = class.per_minute(per_minute.max(1));
        let share = burst_share
            .filter(|s| *s > 0.0 && *s <= 1.0)
            .unwrap_or(self.burst_share);
        let burst = ((minute as f64 * share).ceil() as u64).max(1);
        [
            RateWindow::new(burst, Duration::from_secs(10)),
            RateWindow::new(minute, Duration::from_secs(60)),
            RateWindow::new(minute.saturating_mul(30), Duration::from_secs(3600)),
        ]
    }

    /// Whether the limiter is running without Redis.
    pub fn is_degraded(&self) -> bool {
        self.degraded.load(Ordering::Relaxed)
    }

    pub fn fail_mode(&self) -> FailMode {
        self.fail_mode
    }

    /// Count one request of `client` in `class`; `Err` with 429 when a window is spent, 503 when
    /// Redis is away and the mode is `closed`.
    pub async fn check(
        &self,
        client: &str,
        class: EndpointClass,
        per_minute: u64,
        burst_share: Option<f64>,
    ) -> Result<Limit> {
        let (limit, _) = self
            .decide(client, class, per_minute, burst_share, None)
            .await?;
        Self::enforce(limit)
    }

    /// Decide on one request of `client` in `class` without refusing it yet ([`Self::enforce`]
    /// does), and when `counter` is given add its delta to that Redis counter in the same round
    /// trip, whatever the decision. The counter's new total is `None` when Redis did not decide
    /// (the caller then counts it itself).
    pub async fn decide(
        &self,
        client: &str,
        class: EndpointClass,
        per_minute: u64,
        burst_share: Option<f64>,
        counter: Option<(&str, i64, Duration)>,
    ) -> Result<(Limit, Option<i64>)> {
        let windows = self.windows(class, per_minute, burst_share);
        let key = format!("rl:{}:{client}", class.as_str());
        // A unit of this client's lease, while it lasts: no round trip.
        if let Some(Taken { meta, left, refill }) = self.leases.take(&key, 1) {
            if refill {
                self.refill_in_background(key, windows);
            }
            let limit = Limit {
                decision: meta.decision(left),
                source: "lease",
            };
            Self::count(class, limit);
            return Ok((limit, None));
        }
        let want = self.leases.want(&key, 1);
        let run = async |cache: &Cache, counter: Option<(&str, i64, Duration)>| match counter {
            Some((counter, delta, ttl)) => {
                cache
                    .rate_limit_and_incr_by(&key, &windows, want, counter, delta, ttl)
                    .await
            }
            None => cache
                .rate_limit(&key, &windows, want)
                .await
                .map(|d| (d, None)),
        };
        // The worker's own connection first; if it fails (it reconnects lazily after an outage),
        // the shared one before falling back. The retry leaves the counter out: the failed call
        // may have changed it already, and a caller without a total counts on its own.
        let decided = match self.workers.get() {
            Some(own) => match run(&own, counter).await {
                Ok(d) => Ok(d),
                Err(_) => run(&self.shared, None).await,
            },
            None => run(&self.shared, counter).await,
        };
        // This request takes the lease's first unit; the rest wait for the client's next ones.
        let decided = decided.map(|(decision, total)| {
            if !decision.allowed {
                // A lease filled meanwhile by a concurrent request of the same client.
                return match self.leases.take(&key, 1) {
                    Some(Taken { meta, left, .. }) => (meta.decision(left), total),
                    None => (decision, total),
                };
            }
            let granted = Granted::new(windows, decision);
            self.leases.fill(key.clone(), decision.granted, 1, granted);
            (granted.decision(decision.granted - 1), total)
        });
        let (limit, total) = match decided {
            Ok((decision, total)) => {
                self.degraded.store(false, Ordering::Relaxed);
                (
                    Limit {
                        decision,
                        source: "redis",
                    },
                    total,
                )
            }
            Err(e) => {
                if !self.degraded.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, mode = ?self.fail_mode, "rate limiting without Redis");
                }
                metrics::counter!("cg_gateway_rate_limiter_fallback_total", "mode" => format!("{:?}", self.fail_mode).to_lowercase()).increment(1);
                let limit = match self.fail_mode {
                    FailMode::Local => Limit {
                        decision: self.local.rate_limit(&key, &windows, 1).await?,
                        source: "local",
                    },
                    FailMode::Open => Limit {
                        decision: RateDecision {
                            allowed: true,
                            granted: 1,
                            at_ms: 0,
                            limit: windows[1].limit,
                            remaining: windows[1].limit,
                            reset_after: Duration::from_secs(60),
                            retry_after: None,
                            window_index: 1,
                        },
                        source: "open",
                    },
                    FailMode::Closed => {
                        return Err(GatewayError::Unavailable(
                            "rate limiting is unavailable and the gateway is configured to fail closed",
                        ));
                    }
                };
                (limit, None)
            }
        };
        Self::count(class, limit);
        Ok((limit, total))
    }

    /// Take the next lease for `key` before this one runs out, off the request path; it replaces
    /// this one, whose unused units go back with the next release.
    fn refill_in_background(&self, key: String, windows: [RateWindow; 3]) {
        let want = self.leases.want(&key, 1);
        let cache = self.workers.get().unwrap_or_else(|| self.shared.clone());
        let leases = self.leases.clone();
        tokio::spawn(async move {
            // Refused or failed: the next request that finds the lease spent asks again.
            if let Ok(decision) = cache.rate_limit(&key, &windows, want).await
                && decision.allowed
            {
                leases.fill(key, decision.granted, 0, Granted::new(windows, decision));
            }
        });
    }

    fn count(class: EndpointClass, limit: Limit) {
        metrics::counter!(
            "cg_gateway_rate_limit_checks_total",
            "class" => class.as_str(),
            "allowed" => if limit.decision.allowed { "true" } else { "false" },
            "source" => limit.source,
        )
        .increment(1);
    }

    /// Give the unused units of leases that ran out of time or were replaced (of every lease when
    /// `all`) back to Redis; what Redis does not take stays counted (it can only refuse early).
    pub async fn release_unused(&self, all: bool) {
        for Unused { key, units, meta } in self.leases.collect(all) {
            if let Err(e) = self
                .shared
                .rate_limit_release(&key, &meta.windows, meta.decision.at_ms, units)
                .await
            {
                tracing::debug!(error = %e, units, "unused rate-limit units not given back");
            }
        }
    }

    /// Give unused units back every `every` until `shutdown`, then all of them.
    pub async fn release_every(&self, every: Duration, shutdown: CancellationToken) {
        super::every_until(every, shutdown, |last| self.release_unused(last)).await;
    }

    /// The limit when it admits the request; 429 `rate_limited` when it does not.
    pub fn enforce(limit: Limit) -> Result<Limit> {
        if limit.decision.allowed {
            Ok(limit)
        } else {
            Err(GatewayError::RateLimited {
                limit: limit.decision.limit,
                reset_secs: limit.decision.reset_after.as_secs().max(1),
                retry_after_secs: limit
                    .decision
                    .retry_after
                    .unwrap_or(limit.decision.reset_after)
                    .as_secs()
                    .max(1),
            })
        }
    }
}

/// Middleware for routes that authenticate a caller: copies the rate-limit decision the `Caller`
/// extractor made into `X-RateLimit-Limit`, `-Remaining` and `-Reset` (refusals carry them in the
/// error already) and counts the request in the organisation's usage.
pub async fn rate_limit_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> std::result::Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request = req.request().clone();
    let mut res = next.call(req).await?;
    let (limit, metered, unused) = {
        let mut ext = request.extensions_mut();
        (
            ext.get::<Limit>().copied(),
            ext.get::<Metered>().copied(),
            ext.remove::<PreReserved>(),
        )
    };
    // A budget reservation made with the rate-limit check that the handler never took (the
    // request was refused before its guard calls): given back.
    if let Some(pre) = unused
        && let Some(state) = request.app_data::<actix_web::web::Data<AppState>>()
    {
        state.budgets.give_back(pre).await;
    }
    if let Some(Metered(org)) = metered
        && let Some(state) = request.app_data::<actix_web::web::Data<AppState>>()
    {
        let endpoint = request
            .match_pattern()
            .unwrap_or_else(|| request.path().to_owned());
        state.usage.record(
            org,
            &endpoint,
            "",
            &Sample {
                error: res.status().as_u16() >= 400,
                latency_ms: i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX),
                ..Sample::default()
            },
        );
    }
    if let Some(limit) = limit {
        let headers = res.headers_mut();
        for (name, value) in [
            (&LIMIT_HEADER, limit.decision.limit),
            (&REMAINING_HEADER, limit.decision.remaining),
            (&RESET_HEADER, limit.decision.reset_after.as_secs().max(1)),
        ] {
            if let Ok(v) = HeaderValue::from_str(&value.to_string()) {
                headers.insert(name.clone(), v);
            }
        }
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_follow_method_and_path() {
        assert_eq!(
            EndpointClass::of(&Method::POST, "/api/v1/guards/process"),
            EndpointClass::Process
        );
        assert_eq!(
            EndpointClass::of(&Method::POST, "/api/v1/ab-testing/results"),
            EndpointClass::Process
        );
        assert_eq!(
            EndpointClass::of(&Method::POST, "/api/v1/ab-testing/experiments"),
            EndpointClass::Admin
        );
        assert_eq!(
            EndpointClass::of(&Method::GET, "/api/v1/guards/services"),
            EndpointClass::Read
        );
        assert_eq!(
            EndpointClass::of(&Method::DELETE, "/api/v1/api-keys/1"),
            EndpointClass::Admin
        );
    }

    #[test]
    fn windows_scale_with_the_tier() {
        let rl = RateLimiter::new(
            Cache::Memory(MemoryCache::new(1024, "t:")),
            FailMode::Local,
            0.5,
        );
        let w = rl.windows(EndpointClass::Process, 60, None);
        assert_eq!(
            w.map(|w| (w.limit, w.window.as_secs())),
            [(30, 10), (60, 60), (1800, 3600)]
        );
        assert_eq!(rl.windows(EndpointClass::Read, 60, None)[1].limit, 120);
        assert_eq!(rl.windows(EndpointClass::Admin, 1, None)[1].limit, 1);
        assert_eq!(rl.windows(EndpointClass::Admin, 1, None)[0].limit, 1);
    }

    #[tokio::test]
    async fn the_limit_is_exact_and_refusals_say_when_to_retry() {
        let rl = RateLimiter::new(
            Cache::Memory(MemoryCache::new(1 << 20, "t:")),
            FailMode::Local,
            1.0,
        );
        for _ in 0..5 {
            rl.check("key:a", EndpointClass::Process, 5, None)
                .await
                .unwrap();
        }
        let Err(GatewayError::RateLimited {
            limit,
            retry_after_secs,
            ..
        }) = rl.check("key:a", EndpointClass::Process, 5, None).await
        else {
            panic!("the sixth request passed");
        };
        assert_eq!(limit, 5);
        // A full bucket of a sliding-window counter weighs on the next one: up to two windows.
        assert!((1..=120).contains(&retry_after_secs), "{retry_after_secs}");
        // Another client and another class have their own budgets.
        rl.check("key:b", EndpointClass::Process, 5, None)
            .await
            .unwrap();
        rl.check("key:a", EndpointClass::Read, 5, None)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_busy_client_is_served_from_a_lease_and_its_unused_units_go_back() {
        let shared = Cache::Memory(MemoryCache::new(1 << 20, "t:"));
        let rl = RateLimiter::new(shared.clone(), FailMode::Local, 1.0);
        // 6,400 a minute: up to 400 of them in one lease, 64 at most.
        let first = rl
            .check("key:a", EndpointClass::Process, 6400, None)
            .await
            .unwrap();
        assert_eq!((first.source, first.decision.remaining), ("redis", 6399));
        let second = rl
            .check("key:a", EndpointClass::Process, 6400, None)
            .await
            .unwrap();
        assert_eq!(second.source, "redis", "a new lease");
        // Every unit of the lease is counted in the shared windows; the client sees only what it
        // used.
        assert_eq!(second.decision.remaining, 6398);
        let windows = rl.windows(EndpointClass::Process, 6400, None);
        let seen = shared
            .rate_limit("rl:process:key:a", &windows, 1)
            .await
            .unwrap();
        assert_eq!(seen.remaining, 6400 - 1 - 64 - 1, "{seen:?}");
        for left in (0..63).rev() {
            let l = rl
                .check("key:a", EndpointClass::Process, 6400, None)
                .await
                .unwrap();
            assert_eq!(l.source, "lease");
            assert_eq!(l.decision.remaining, 6335 + left);
        }
        let next = rl
            .check("key:a", EndpointClass::Process, 6400, None)
            .await
            .unwrap();
        assert_eq!(next.source, "redis", "the lease is spent");
        // On the way out the unused units go back to the shared windows.
        rl.release_unused(true).await;
        let after = shared
            .rate_limit("rl:process:key:a", &windows, 1)
            .await
            .unwrap();
        assert_eq!(after.remaining, 6400 - 1 - 64 - 1 - 1 - 1, "{after:?}");
    }

    #[tokio::test]
    async fn the_next_lease_is_taken_before_this_one_runs_out() {
        let shared = Cache::Memory(MemoryCache::new(1 << 20, "t:"));
        let rl = RateLimiter::new(shared.clone(), FailMode::Local, 1.0);
        let check = || rl.check("key:a", EndpointClass::Process, 6400, None);
        check().await.unwrap();
        assert_eq!(check().await.unwrap().source, "redis", "a lease of 64");
        // 55 units later 8 are left: the next lease is asked for in the background.
        for _ in 0..55 {
            assert_eq!(check().await.unwrap().source, "lease");
        }
        tokio::task::yield_now().await;
        // It replaced the old one: 64 more requests without a round trip.
        for _ in 0..64 {
            assert_eq!(check().await.unwrap().source, "lease");
        }
        // The 8 the old lease still held go back: 121 requests admitted, 121 counted.
        rl.release_unused(true).await;
        let windows = rl.windows(EndpointClass::Process, 6400, None);
        let seen = shared
            .rate_limit("rl:process:key:a", &windows, 1)
            .await
            .unwrap();
        assert_eq!(seen.remaining, 6400 - 121 - 1, "{seen:?}");
    }
}
