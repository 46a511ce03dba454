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
use std::sync::{Arc, Mutex};
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

/// A reservation for one guard call made in the same Redis round trip as the rate-limit check
/// (see [`Budgets::pre_reservation`]), not yet checked against the budget. Kept in the request's
/// extensions until [`Budgets::reserve`] takes it; dropped untaken (the request was refused,
/// failed before its guard calls, or was cancelled) it gives itself back with the next batch of
/// refunds.
#[derive(Debug)]
pub struct PreReserved {
    key: String,
    amount: i64,
    /// The month's total right after the reservation.
    total: i64,
    /// Who gets it back if it is dropped untaken.
    owner: Option<Arc<Budgets>>,
}

impl PreReserved {
    pub fn new(owner: Arc<Budgets>, key: String, amount: i64, total: i64) -> Self {
        Self {
            key,
            amount,
            total,
            owner: Some(owner),
        }
    }

    /// The key, amount and total, no longer given back on drop.
    fn take(mut self) -> (String, i64, i64) {
        self.owner = None;
        (std::mem::take(&mut self.key), self.amount, self.total)
    }
}

impl Drop for PreReserved {
    fn drop(&mut self) {
        if let Some(owner) = self.owner.take() {
            owner.give_back_later(std::mem::take(&mut self.key), self.amount);
        }
    }
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

    /// What to add to which Redis counter to reserve one guard call of `org` in the same round
    /// trip as its rate-limit check: `(key, amount, ttl)`.
    pub fn pre_reservation(&self, org: Id) -> (String, i64, Duration) {
        (key(org), self.reserve_micros, KEEP)
    }

    /// Give back `amount` reserved under `key` and never used, with the next batch of refunds.
    pub fn give_back_later(&self, key: String, amount: i64) {
        if let Ok(mut refunds) = self.refunds.lock() {
            *refunds.entry((key, false)).or_default() -= amount;
        }
    }

    /// Give back a reservation that was never used (the request was refused or failed before
    /// its guard calls) at once, so it holds no headroom meanwhile; with the next batch if Redis
    /// does not take it.
    pub async fn give_back(&self, pre: PreReserved) {
        let (key, amount, _) = pre.take();
        if !self.apply(&key, false, -amount).await {
            self.give_back_later(key, amount);
        }
    }

    /// Reserve for `calls` guard calls against `budget_micros` (0: no budget, nothing reserved),
    /// counting `pre` (made with the rate-limit check) towards it.
    pub async fn reserve(
        &self,
        org: Id,
        calls: usize,
        budget_micros: i64,
        pre: Option<PreReserved>,
    ) -> Result<Option<Reservation>> {
        if budget_micros <= 0 {
            if let Some(pre) = pre {
                self.give_back(pre).await;
            }
            return Ok(None);
        }
        let amount = self.reserve_micros * i64::try_from(calls).unwrap_or(1);
        if let Some(pre) = pre {
            let (pre_key, pre_amount, pre_total) = pre.take();
            let extra = amount - pre_amount;
            let total = if extra == 0 {
                Ok(pre_total)
            } else {
                // Several guards: the rest of the reservation (or the excess back) now.
                self.shared.incr_by(&pre_key, extra, Some(KEEP)).await
            };
            match total {
                Ok(total) => {
                    return self
                        .check(&self.shared, pre_key, amount, total, budget_micros, false)
                        .await;
                }
                Err(_) => self.give_back_later(pre_key, pre_amount),
            }
        }
        let key = key(org);
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
    pub async fn refund_every(self: Arc<Self>, every: Duration, shutdown: CancellationToken) {
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
        let first = b.reserve(org, 1, 250, None).await.unwrap();
        let second = b.reserve(org, 1, 250, None).await.unwrap();
        assert!(matches!(
            b.reserve(org, 1, 250, None).await,
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
        let third = b.reserve(org, 1, 250, None).await.unwrap();
        b.settle(third, 150).await;
        assert_eq!(b.spent(org).await, Some(180));
        assert!(
            b.reserve(org, 1, 250, None).await.is_err(),
            "180 + 100 is past 250"
        );
        assert!(
            b.reserve(org, 1, 0, None).await.unwrap().is_none(),
            "no budget, no reservation"
        );
    }

    #[tokio::test]
    async fn a_reservation_made_with_the_rate_limit_check_counts_once() {
        let b = Arc::new(budgets(100));
        let org = Id::new();
        let pre = |b: &Arc<Budgets>| {
            let (key, amount, ttl) = b.pre_reservation(org);
            let (shared, owner) = (b.shared.clone(), b.clone());
            async move {
                let total = shared.incr_by(&key, amount, Some(ttl)).await.unwrap();
                PreReserved::new(owner, key, amount, total)
            }
        };
        // One guard: nothing more to reserve.
        let one = b.reserve(org, 1, 1000, Some(pre(&b).await)).await.unwrap();
        assert_eq!(b.spent(org).await, Some(100));
        // Three guards: the other two now.
        let three = b.reserve(org, 3, 1000, Some(pre(&b).await)).await.unwrap();
        assert_eq!(b.spent(org).await, Some(400));
        // Past the budget: all of it returned at once.
        let p = pre(&b).await;
        assert!(matches!(
            b.reserve(org, 7, 1000, Some(p)).await,
            Err(GatewayError::BudgetExceeded { .. })
        ));
        assert_eq!(b.spent(org).await, Some(400));
        // A request refused before its guard calls gives its share back at once; one dropped
        // on the way (cancelled) gives it back with the refunds.
        let unused = pre(&b).await;
        assert_eq!(b.spent(org).await, Some(500));
        b.give_back(unused).await;
        assert_eq!(b.spent(org).await, Some(400));
        drop(pre(&b).await);
        assert_eq!(b.spent(org).await, Some(500));
        b.settle(one, 100).await;
        b.settle(three, 300).await;
        b.flush_refunds().await;
        assert_eq!(b.spent(org).await, Some(400));
    }
}
