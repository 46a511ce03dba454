//! TrustGuard: how far model output can be trusted. Grounding of content against supplied context
//! (claims, numbers, names the context does not support), overconfidence, hedging,
//! self-contradiction, duplication and stub code, combined into one risk with its evidence.
//!
//! Detection is pure and lives in [`analysis`]; [`routes`] is the HTTP layer (internal token
//! required), with a result cache and an audit record per validation; see [`config`].

pub mod analysis;
pub mod config;
pub mod routes;
pub mod startup;
pub mod state;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "trustguard";
/// The port it listens on unless `CG_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8002;
