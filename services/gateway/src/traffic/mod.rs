//! Traffic control shared across gateway replicas through Redis: rate limits per client and
//! endpoint class (this module), with a per-replica fallback while Redis is away.

pub mod rate_limit;

pub use rate_limit::{EndpointClass, FailMode, RateLimiter};
