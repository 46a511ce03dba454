//! TokenGuard: exact token counts (OpenAI's `cl100k_base` and `o200k_base`), cost estimates from a
//! model price table, and pruning that keeps meaning.
//!
//! Detection is pure and lives in [`analysis`]; [`routes`] is the HTTP layer (internal token
//! required); see [`config`] for its settings.

pub mod analysis;
pub mod config;
pub mod routes;
pub mod startup;
pub mod state;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "tokenguard";
/// The port it listens on unless `CG_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8001;
