//! Traffic control shared across gateway replicas through Redis: rate limits per client and
//! endpoint class ([`rate_limit`]), with a per-replica fallback while Redis is away, and usage
//! metering with the monthly quota ([`usage`]).

pub mod budget;
pub mod config;
pub mod lease;
pub mod rate_limit;
pub mod usage;
pub mod worker_cache;

pub use budget::Budgets;
pub use config::DynamicConfig;
pub use rate_limit::{EndpointClass, FailMode, RateLimiter};
pub use usage::{Sample, UsageMeter};
pub use worker_cache::WorkerCaches;

/// Run `step(false)` every `every` until `shutdown` is cancelled, then `step(true)` once more on
/// the way out (the batched work of a replica: refunds, leased units, usage tallies).
pub async fn every_until<F, Fut>(
    every: std::time::Duration,
    shutdown: tokio_util::sync::CancellationToken,
    mut step: F,
) where
    F: FnMut(bool) -> Fut,
    Fut: Future<Output = ()>,
{
    loop {
        let stop = tokio::select! {
            () = shutdown.cancelled() => true,
            () = tokio::time::sleep(every) => false,
        };
        step(stop).await;
        if stop {
            return;
        }
    }
}
