//! The public door of CodeGuardians: authentication, organisations, limits, usage and the unified guard endpoint.
//!
//! It uses PostgreSQL (or SQLite), Redis (or in-process) and S3 (or a local folder); see [`config`] for its settings and [`startup`] for how it is assembled.

pub mod config;
pub mod startup;

/// The service name in logs, metrics and `/health`.
pub const SERVICE: &str = "gateway";
/// The port it listens on unless `CG_PORT` says otherwise.
pub const DEFAULT_PORT: u16 = 8000;
