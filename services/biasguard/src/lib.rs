//! BiasGuard: layered bias detection, policies, audit logs and violations.
//!
//! It uses the database (policies, audit, violations) and the cache; see [`config`] for its settings and [`startup`] for how it is assembled.

pub mod analysis;
pub mod config;
pub mod policy;
pub mod routes;
pub mod startup;
pub mod state;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "biasguard";
/// The port it listens on unless `CG_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8004;
