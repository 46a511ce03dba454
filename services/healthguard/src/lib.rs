//! HealthGuard (PoisonGuard): poisoning detection in samples, mitigation, reports and health metrics.
//!
//! It uses the database (`HEALTHGUARD_DATABASE_URL` when set); see [`config`] for its settings and [`startup`] for how it is assembled.

pub mod config;
pub mod startup;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "healthguard";
/// The port it listens on unless `CG_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8005;
