//! Monthly USD budgets per organisation (the tier's `monthly_budget_usd_micros`), shared by every
//! replica through one Redis counter per organisation and month.
//!
//! Before a guard call the gateway reserves `GATEWAY_BUDGET_RESERVE_USD_MICROS` (10,000 = one
//! cent) per guard with one atomic `INCRBY`; a reservation that takes the month past the budget is
//! returned at once and the request refused (402 `budget_exceeded`). After the call the
//! reservation is settled to the cost TokenGuard reported (other guards cost nothing). So the
//! reserved-plus-settled total never passes the budget by more than one call's excess over its
//! reservation, however many replicas serve the organisation at once.
//!
//! Settlements that return money (the usual case: a call costs less than its reservation) are
//! batched per replica and applied every 200 ms ([`Budgets::refund_every`]), which saves a Redis
//! round trip per request; until then the month's total reads slightly high, which can only refuse
//! early, never overspend. A call that cost more than its reservation is settled at once.
//!
//! While Redis is away the same happens on a per-replica counter (`local` fail mode), nothing is
//! checked (`open`), or guard calls are refused (`closed`), as for rate limits.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use cg_storage::Cache;
use cg_storage::cache::MemoryCache;
use cg_storage::sql_types::Id;
use chrono::{Datelike, Utc};

use crate::error::{GatewayError, Result};
use crate::traffic::{FailMode, WorkerCaches};

const KEEP: Duration = Duration::from_secs(40 * 24 * 3600);

/// The budget keeper of one replica.
#[derive(Debug)]
pub struct Budgets {
    shared: Cache,
    local: Cache,
    fail_mode: FailMode,
    reserve_micros: i64,
    /// Refunds waiting to be applied: (key, on the local counter) → micro-dollars (negative).
    refunds: Mutex<HashMap<(String, bool), i64>>,
    /// Per-worker connections to the same Redis as `shared`.
    workers: WorkerCaches,
}

/// A reservation to settle after the call.
#[derive(Debug, Clone)]
#[must_use = "settle a reservation once the call's cost is known"]
pub struct Reservation {
    key: String,
    reserved: i64,
    local: bool,
}

fn key(org: Id) -> String {
    let now = Utc::now();
    format!("budget:{org}:{:04}{:02}", now.year(), now.month())
}

impl Budgets {
    pub fn new(shared: Cache, fail_mode: FailMode, reserve_micros: i64) -> Self {
        Self {
            shared,
            local: Cache::Memory(MemoryCache::new(8 << 20, "local-budget:")),
            fail_mode,
            reserve_micros: reserve_micros.max(0),
            refunds: Mutex::default(),
            workers: WorkerCaches::new(None),
        }
    }

    /// Reserve through a connection of the calling worker thread once it is open.
    pub fn with_worker_connections(mut self, workers: WorkerCaches) -> Self {
        self.workers = workers;
        self
    }

    /// Reserve for `calls` guard calls against `budget_micros` (0: no budget, nothing reserved).
    pub async fn reserve(
        &self,
        org: Id,
        calls: usize,
        budget_micros: i64,
    ) -> Result<Option<Reservation>> {
        if budget_micros <= 0 {
            return Ok(None);
        }
        let key = key(org);
        let amount = self.reserve_micros * i64::try_from(calls).unwrap_or(1);
        // The worker's own connection first, the shared one if it fails (see `WorkerCaches`).
        let own = self.workers.get();
        let reserved = match &own {
            Some(c) => match c.incr_by(&key, amount, Some(KEEP)).await {
                Ok(total) => Ok((c, total)),
                Err(_) => self
                    .shared
                    .incr_by(&key, amount, Some(KEEP))
                    .await
                    .map(|t| (&self.shared, t)),
            },
            None => self
                .shared
                .incr_by(&key, amount, Some(KEEP))
                .await
                .map(|t| (&self.shared, t)),
        };
        let (cache, local) = match reserved {
            Ok((shared, total)) => {
                return self
                    .check(shared, key, amount, total, budget_micros, false)
                    .await;
            }
            Err(e) => match self.fail_mode {
                FailMode::Local => (&self.local, true),
                FailMode::Open => {
                    tracing::debug!(error = %e, "budget unchecked while Redis is away");
                    return Ok(None);
                }
                FailMode::Closed => {
                    return Err(GatewayError::Unavailable(
                        "budgets cannot be checked and the gateway is configured to fail closed",
                    ));
                }
            },
        };
        let total = cache.incr_by(&key, amount, Some(KEEP)).await?;
        self.check(cache, key, amount, total, budget_micros, local)
            .await
    }

    async fn check(
        &self,
        cache: &Cache,
        key: String,
        amount: i64,
        total: i64,
        budget_micros: i64,
        local: bool,
    ) -> Result<Option<Reservation>> {
        if total > budget_micros {
            let _ = cache.incr_by(&key, -amount, Some(KEEP)).await;
            return Err(GatewayError::BudgetExceeded {
                budget_usd: budget_micros as f64 / 1e6,
                spent_usd: (total - amount) as f64 / 1e6,
            });
        }
        Ok(Some(Reservation {
            key,
            reserved: amount,
            local,
        }))
    }

    /// Replace the reservation by the cost actually incurred: an excess at once, a refund with
    /// the next batch.
    pub async fn settle(&self, reservation: Option<Reservation>, cost_micros: i64) {
        let Some(r) = reservation else {
            return;
        };
        let delta = cost_micros.max(0) - r.reserved;
        if delta < 0
            && let Ok(mut refunds) = self.refunds.lock()
        {
            *refunds.entry((r.key, r.local)).or_default() += delta;
            return;
        }
        if delta != 0 {
            self.apply(&r.key, r.local, delta).await;
        }
    }

    async fn apply(&self, key: &str, local: bool, delta: i64) -> bool {
        let cache = if local { &self.local } else { &self.shared };
        match cache.incr_by(key, delta, Some(KEEP)).await {
            Ok(_) => true,
            Err(e) => {
                tracing::warn!(error = %e, delta, "a budget settlement is waiting for Redis");
                false
            }
        }
    }

    /// Apply the waiting refunds; those Redis does not take wait for the next round.
    pub async fn flush_refunds(&self) {
        let waiting: Vec<((String, bool), i64)> = match self.refunds.lock() {
            Ok(mut r) => r.drain().collect(),
            Err(_) => return,
        };
        for ((key, local), delta) in waiting {
            if !self.apply(&key, local, delta).await
                && let Ok(mut r) = self.refunds.lock()
            {
                *r.entry((key, local)).or_default() += delta;
            }
        }
    }

    /// Apply refunds every `every` until `shutdown`, and once more on the way out.
    pub async fn refund_every(
        self: std::sync::Arc<Self>,
        every: Duration,
        shutdown: CancellationToken,
    ) {
        loop {
            let stop = tokio::select! {
                () = shutdown.cancelled() => true,
                () = tokio::time::sleep(every) => false,
            };
            self.flush_refunds().await;
            if stop {
                return;
            }
        }
    }

    /// This month's spent and reserved total for `org`, in micro-dollars.
    pub async fn spent(&self, org: Id) -> Option<i64> {
        self.shared
            .get_string(&key(org))
            .await
            .ok()
            .map(|v| v.and_then(|s| s.parse().ok()).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budgets(reserve: i64) -> Budgets {
        Budgets::new(
            Cache::Memory(MemoryCache::new(1 << 20, "t:")),
            FailMode::Local,
            reserve,
        )
    }

    #[tokio::test]
    async fn reservations_stop_at_the_budget_and_settle_to_the_cost() {
        let b = budgets(100);
        let org = Id::new();
        let first = b.reserve(org, 1, 250).await.unwrap();
        let second = b.reserve(org, 1, 250).await.unwrap();
        assert!(matches!(
            b.reserve(org, 1, 250).await,
            Err(GatewayError::BudgetExceeded { .. })
        ));
        assert_eq!(
            b.spent(org).await,
            Some(200),
            "the refused reservation was returned"
        );
        b.settle(first, 30).await;
        b.settle(second, 0).await;
        assert_eq!(
            b.spent(org).await,
            Some(200),
            "refunds wait for their batch"
        );
        b.flush_refunds().await;
        assert_eq!(b.spent(org).await, Some(30));
        // A call that cost more than its reservation is charged at once.
        let third = b.reserve(org, 1, 250).await.unwrap();
        b.settle(third, 150).await;
        assert_eq!(b.spent(org).await, Some(180));
        assert!(
            b.reserve(org, 1, 250).await.is_err(),
            "180 + 100 is past 250"
        );
        assert!(
            b.reserve(org, 1, 0).await.unwrap().is_none(),
            "no budget, no reservation"
        );
    }
}
