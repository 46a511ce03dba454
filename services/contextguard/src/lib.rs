//! ContextGuard: conversational memory with TTL and context-drift detection.
//!
//! It uses the cache for memory (`CONTEXTGUARD_*` variables); see [`config`] for its settings and [`startup`] for how it is assembled.

pub mod analysis;
pub mod config;
pub mod retrieval;
pub mod routes;
pub mod startup;
pub mod state;
pub mod store;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "contextguard";
/// The port it listens on unless `CG_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8003;
