//! TokenGuard: exact token counts, cost estimates, budgets and pruning.
//!
//! It uses the cache (budgets, results); see [`config`] for its settings and [`startup`] for how it is assembled.

pub mod config;
pub mod startup;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "tokenguard";
/// The port it listens on unless `CG_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8001;
