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
