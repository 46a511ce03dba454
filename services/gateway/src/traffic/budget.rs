//! Monthly USD budgets per organisation (the tier's `monthly_budget_usd_micros`), shared by every
//! replica through one Redis counter per organisation and month.
//!
//! Before a guard call the gateway reserves `GATEWAY_BUDGET_RESERVE_USD_MICROS` (10,000 = one
//! cent) per guard with one atomic `INCRBY`; a reservation that takes the month past the budget is
//! returned at once and the request refused (402 `budget_exceeded`). After the call the
//! reservation is settled to the cost TokenGuard reported (other guards cost nothing). So the
//! reserved-plus-settled total never passes the budget by more than one call's excess over its
//! reservation (per call in flight), however many replicas serve the organisation at once: a call
//! that cost more than its reservation also ends its replica's lease (below), so the next call is
//! checked against the month's total again.
//!
//! Settlements that return money (the usual case: a call costs less than its reservation) are
//! batched per replica and applied every 200 ms ([`Budgets::refund_every`]), which saves a Redis
//! round trip per request; until then the month's total reads slightly high, which can only refuse
//! early, never overspend. A call that cost more than its reservation is settled at once.
//!
//! Reservations are taken in leases (see [`super::lease`]): a replica serving a busy organisation
//! reserves several calls' worth at once (never more than a sixteenth of what is left of the
//! budget as last seen, and only while 256 calls' worth or more are left) and hands them out
//! without a round trip; what a lease has not handed out after its lifetime goes back with the
//! refunds. A lease that would take the month past the budget is cut back to the one call at
//! once, so near the end of a budget every call is reserved and checked on its own as before.
//!
//! While Redis is away the same happens on a per-replica counter (`local` fail mode), nothing is
//! checked (`open`), or guard calls are refused (`closed`), as for rate limits.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use cg_storage::Cache;
use cg_storage::cache::MemoryCache;
use cg_storage::cache::rate_limit::{LEASE_MIN_ROOM, LEASE_SHARE};
use cg_storage::sql_types::Id;
use chrono::{Datelike, Utc};

use crate::error::{GatewayError, Result};
use crate::traffic::lease::{self, Leases, Taken};
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
    /// Calls reserved in Redis and not handed out yet, by organisation.
    leases: Leases<Id, Leased>,
}

/// What a lease of calls was reserved under.
#[derive(Debug, Clone)]
struct Leased {
    key: String,
    /// The month's total right after the lease was reserved.
    total: i64,
}

/// A lease of guard calls to reserve in Redis: add `amount` to `key` (a new counter lives
/// `ttl`), then hand the result to [`Budgets::accept`].
#[derive(Debug, Clone)]
pub struct LeaseRequest {
    pub key: String,
    pub amount: i64,
    pub ttl: Duration,
    calls: u64,
}

/// A reservation to settle after the call.
#[derive(Debug, Clone)]
#[must_use = "settle a reservation once the call's cost is known"]
pub struct Reservation {
    org: Id,
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
            leases: Leases::new(lease::LIFETIME, lease::MAX_UNITS),
        }
    }

    /// Reserve through a connection of the calling worker thread once it is open.
    pub fn with_worker_connections(mut self, workers: WorkerCaches) -> Self {
        self.workers = workers;
        self
    }

    /// `calls` guard calls of `org` from this replica's lease, without a round trip (the next
    /// lease is reserved in the background before this one runs out).
    pub fn take_leased(
        self: &Arc<Self>,
        org: Id,
        calls: u64,
        budget_micros: i64,
    ) -> Option<PreReserved> {
        let Taken { meta, refill, .. } = self.leases.take(&org, calls)?;
        if refill {
            let me = self.clone();
            tokio::spawn(async move { me.refill(org, budget_micros).await });
        }
        Some(PreReserved::new(
            self.clone(),
            meta.key,
            self.amount(calls),
            meta.total,
        ))
    }

    /// Reserve `org`'s next lease ahead of need; it replaces the current one, whose unused calls
    /// go back with the refunds. A lease that would pass the budget is returned at once (the
    /// next call then reserves and is checked on its own).
    async fn refill(self: Arc<Self>, org: Id, budget_micros: i64) {
        let lease = self.lease_request(org, 1, budget_micros);
        if lease.calls <= 1 {
            return;
        }
        let cache = self.workers.get().unwrap_or_else(|| self.shared.clone());
        if let Ok(total) = cache.incr_by(&lease.key, lease.amount, Some(KEEP)).await {
            self.keep(org, &lease, total, budget_micros, 0).await;
        }
    }

    fn amount(&self, calls: u64) -> i64 {
        self.reserve_micros
            .saturating_mul(i64::try_from(calls).unwrap_or(i64::MAX))
    }

    /// The lease to reserve for `org` when `calls` guard calls find none (in the same round trip
    /// as the rate-limit check when there is one): as many calls as the organisation used in the
    /// last lease's lifetime, at most a sixteenth of what was left of `budget_micros` then, and
    /// none beyond `calls` while fewer than 256 calls' worth were left (the same rule as for
    /// rate limits).
    pub fn lease_request(&self, org: Id, calls: u64, budget_micros: i64) -> LeaseRequest {
        let mut want = self.leases.want(&org, calls);
        if want > calls {
            let room = self
                .leases
                .last(&org)
                .map_or(0, |l| budget_micros.saturating_sub(l.total));
            let room_calls = u64::try_from(room / self.reserve_micros.max(1)).unwrap_or(0);
            let share = if room_calls < LEASE_MIN_ROOM {
                0
            } else {
                room_calls / LEASE_SHARE
            };
            want = want.min(share).max(calls);
        }
        LeaseRequest {
            key: key(org),
            amount: self.amount(want),
            ttl: KEEP,
            calls: want,
        }
    }

    /// The lease reserved (the month's `total` with it): `calls` of it for the request at hand,
    /// the rest kept for the next ones. A lease that took the month past the budget is cut back
    /// at once to those `calls`, which are then checked on their own.
    pub async fn accept(
        self: &Arc<Self>,
        org: Id,
        lease: LeaseRequest,
        total: i64,
        budget_micros: i64,
        calls: u64,
    ) -> PreReserved {
        let total = self.keep(org, &lease, total, budget_micros, calls).await;
        PreReserved::new(self.clone(), lease.key, self.amount(calls), total)
    }

    /// Keep a lease reserved with the month at `total`: within the budget, `calls` of it go to
    /// the request at hand (none for a refill) and the rest to this replica's lease; past it,
    /// all but those `calls` goes back at once. Returns the month's total as it then stands.
    async fn keep(
        &self,
        org: Id,
        lease: &LeaseRequest,
        total: i64,
        budget_micros: i64,
        calls: u64,
    ) -> i64 {
        if total <= budget_micros {
            let leased = Leased {
                key: lease.key.clone(),
                total,
            };
            self.leases.fill(org, lease.calls, calls, leased);
            return total;
        }
        let excess = lease.amount - self.amount(calls);
        if excess > 0 && !self.apply(&lease.key, false, -excess).await {
            self.give_back_later(lease.key.clone(), excess);
        }
        total - excess.max(0)
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
    /// counting `pre` (made with the rate-limit check, or taken from a lease) towards it.
    pub async fn reserve(
        self: &Arc<Self>,
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
        let calls = u64::try_from(calls).unwrap_or(1).max(1);
        let amount = self.amount(calls);
        let pre = match pre {
            Some(pre) => Some(pre),
            None => self.take_leased(org, calls, budget_micros),
        };
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
                        .check(
                            &self.shared,
                            org,
                            pre_key,
                            amount,
                            total,
                            budget_micros,
                            false,
                        )
                        .await;
                }
                Err(_) => self.give_back_later(pre_key, pre_amount),
            }
        }
        // No reservation yet: a lease, through the worker's own connection first and the shared
        // one if it fails (see `WorkerCaches`).
        let lease = self.lease_request(org, calls, budget_micros);
        let own = self.workers.get();
        let reserved = match &own {
            Some(c) => match c.incr_by(&lease.key, lease.amount, Some(KEEP)).await {
                Ok(total) => Ok((c, total)),
                Err(_) => self
                    .shared
                    .incr_by(&lease.key, lease.amount, Some(KEEP))
                    .await
                    .map(|t| (&self.shared, t)),
            },
            None => self
                .shared
                .incr_by(&lease.key, lease.amount, Some(KEEP))
                .await
                .map(|t| (&self.shared, t)),
        };
        let (cache, local) = match reserved {
            Ok((shared, total)) => {
                let (key, amount, total) = self
                    .accept(org, lease, total, budget_micros, calls)
                    .await
                    .take();
                return self
                    .check(shared, org, key, amount, total, budget_micros, false)
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
        let key = key(org);
        let total = cache.incr_by(&key, amount, Some(KEEP)).await?;
        self.check(cache, org, key, amount, total, budget_micros, local)
            .await
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "the reservation's parts, checked and kept together"
    )]
    async fn check(
        &self,
        cache: &Cache,
        org: Id,
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
            org,
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
            // Calls cost more than reserved: this replica's leased calls were checked against a
            // total that no longer holds, so the lease ends and the next call is checked afresh.
            // Its unused calls go back with the refunds.
            self.leases.end(&r.org);
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

    /// Apply the waiting refunds, with the unused calls of leases that ran out of time, were
    /// replaced or ended (of every lease when `all`); those Redis does not take wait for the next
    /// round.
    pub async fn flush_refunds(&self, all: bool) {
        for unused in self.leases.collect(all) {
            self.give_back_later(unused.meta.key, self.amount(unused.units));
        }
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
        super::every_until(every, shutdown, |last| self.flush_refunds(last)).await;
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

    fn budgets(reserve: i64) -> Arc<Budgets> {
        Arc::new(Budgets::new(
            Cache::Memory(MemoryCache::new(1 << 20, "t:")),
            FailMode::Local,
            reserve,
        ))
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
        b.flush_refunds(false).await;
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
        let b = budgets(100);
        let org = Id::new();
        let pre = |b: &Arc<Budgets>| {
            // A one-call lease (an organisation without a lease yet).
            let LeaseRequest { amount, ttl, .. } = b.lease_request(Id::new(), 1, 1000);
            let key = key(org);
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
        b.flush_refunds(false).await;
        assert_eq!(b.spent(org).await, Some(400));
    }

    #[tokio::test]
    async fn a_busy_organisation_reserves_in_leases_and_gets_the_unused_back() {
        let b = budgets(100);
        let org = Id::new();
        let budget = 1_000_000;
        // The first call reserves one; calls right after it find the rate high and lease more,
        // at most a sixteenth of what is left (999,900 / 16 / 100 = 624, capped at 64).
        let first = b.reserve(org, 1, budget, None).await.unwrap();
        assert_eq!(b.spent(org).await, Some(100));
        let second = b.reserve(org, 1, budget, None).await.unwrap();
        assert_eq!(
            b.spent(org).await,
            Some(100 + 64 * 100),
            "a lease of 64 calls"
        );
        let mut more = Vec::new();
        for _ in 0..63 {
            more.push(b.reserve(org, 1, budget, None).await.unwrap());
        }
        assert_eq!(b.spent(org).await, Some(6500), "63 calls from the lease");
        for r in [first, second].into_iter().chain(more) {
            b.settle(r, 10).await;
        }
        b.flush_refunds(false).await;
        assert_eq!(b.spent(org).await, Some(650), "settled to 10 each");
        // The next lease is cut to a sixteenth of the room: 1,000 - 650 = 350 → 0 → one call.
        let small = budgets(100);
        let tight = Id::new();
        let one = small.reserve(tight, 1, 1000, None).await.unwrap();
        let two = small.reserve(tight, 1, 1000, None).await.unwrap();
        assert_eq!(
            small.spent(tight).await,
            Some(200),
            "one call at a time near the budget"
        );
        // A lease not used up goes back with the refunds once it runs out of time (or at once
        // on the way out).
        let lease = b.reserve(org, 1, budget, None).await.unwrap();
        assert!(b.spent(org).await > Some(750), "{:?}", b.spent(org).await);
        b.settle(lease, 100).await;
        b.flush_refunds(true).await;
        assert_eq!(b.spent(org).await, Some(750));
        small.settle(one, 0).await;
        small.settle(two, 0).await;
        // A call that cost more than its reservation ends the lease: the excess is charged and
        // the lease's unused calls go back at the next batch, not at the end of its lifetime.
        let over = b.reserve(org, 1, budget, None).await.unwrap();
        assert!(b.spent(org).await > Some(850), "a lease of several calls");
        b.settle(over, 300).await;
        b.flush_refunds(false).await;
        assert_eq!(b.spent(org).await, Some(1050));
    }

    #[tokio::test]
    async fn the_next_budget_lease_is_reserved_before_this_one_runs_out() {
        let b = budgets(100);
        let org = Id::new();
        let budget = 1_000_000;
        let mut calls = vec![b.reserve(org, 1, budget, None).await.unwrap()];
        calls.push(b.reserve(org, 1, budget, None).await.unwrap());
        assert_eq!(b.spent(org).await, Some(6500), "a lease of 64 calls");
        // 55 calls later 8 are left: the next lease is reserved in the background.
        for _ in 0..55 {
            calls.push(b.reserve(org, 1, budget, None).await.unwrap());
        }
        tokio::task::yield_now().await;
        assert_eq!(b.spent(org).await, Some(6500 + 6400), "reserved ahead");
        // The old lease's 8 unused calls go back with the refunds; every call settles to 0.
        for r in calls {
            b.settle(r, 0).await;
        }
        b.flush_refunds(true).await;
        assert_eq!(b.spent(org).await, Some(0));
    }
}
