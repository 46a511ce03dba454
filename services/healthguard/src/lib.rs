//! HealthGuard (PoisonGuard): poisoning in training samples and prompts: hidden characters,
//! homoglyphs, instructions hidden in data, backdoor triggers, relabelled near-duplicates and
//! outliers, each with its evidence; mitigation, reports, stored results and its own health
//! samples, kept in a local outbox while the database is away.
//!
//! Detection is pure and lives in [`analysis`]; [`routes`] is the HTTP layer (internal token
//! required); see [`config`] for its settings.

pub mod analysis;
pub mod config;
pub mod routes;
pub mod startup;
pub mod state;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "healthguard";
/// The port it listens on unless `CG_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8005;
