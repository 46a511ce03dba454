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
//! While Redis is away the same happens on a per-replica counter (`local` fail mode), nothing is
//! checked (`open`), or guard calls are refused (`closed`), as for rate limits.

use std::time::Duration;

use cg_storage::Cache;
use cg_storage::cache::MemoryCache;
use cg_storage::sql_types::Id;
use chrono::{Datelike, Utc};

use crate::error::{GatewayError, Result};
use crate::traffic::FailMode;

const KEEP: Duration = Duration::from_secs(40 * 24 * 3600);

/// The budget keeper of one replica.
#[derive(Debug)]
pub struct Budgets {
    shared: Cache,
    local: Cache,
    fail_mode: FailMode,
    reserve_micros: i64,
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
        }
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
        let (cache, local) = match self.shared.incr_by(&key, amount, Some(KEEP)).await {
            Ok(total) => {
                return self
                    .check(&self.shared, key, amount, total, budget_micros, false)
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

    /// Replace the reservation by the cost actually incurred.
    pub async fn settle(&self, reservation: Option<Reservation>, cost_micros: i64) {
        let Some(r) = reservation else {
            return;
        };
        let cache = if r.local { &self.local } else { &self.shared };
        let delta = cost_micros.max(0) - r.reserved;
        if delta != 0
            && let Err(e) = cache.incr_by(&r.key, delta, Some(KEEP)).await
        {
            tracing::warn!(error = %e, delta, "a budget reservation could not be settled");
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
        assert_eq!(b.spent(org).await, Some(30));
        assert!(b.reserve(org, 2, 250).await.unwrap().is_some());
        assert!(
            b.reserve(org, 1, 0).await.unwrap().is_none(),
            "no budget, no reservation"
        );
    }
}
